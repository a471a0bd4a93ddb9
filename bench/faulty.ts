import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serveRpc } from './shared.js';

/**
 * The receivers of the fault phase's other half, in their own process: one server (one origin, like distinct
 * customers' hosts) per endpoint, each failing in one way — `hang` never answers, `slow` answers long after any
 * delivery timeout, `reset` destroys the connection, `error` answers 500 — or, for the comparison run, `ok`.
 */
export type FaultKind = 'hang' | 'slow' | 'reset' | 'error' | 'ok';

const servers: { server: Server; count: number }[] = [];
const held = new Set<ServerResponse>();

function misbehave(kind: FaultKind, entry: { count: number }) {
  return createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      entry.count++;
      switch (kind) {
        case 'hang':
          held.add(res);
          return;
        case 'slow':
          held.add(res);
          setTimeout(() => res.end('late'), 120_000).unref();
          return;
        case 'reset':
          req.socket.destroy();
          return;
        case 'error':
          res.writeHead(500, { 'content-length': '4' });
          res.end('boom');
          return;
        case 'ok':
          res.writeHead(200, { 'content-length': '2' });
          res.end('ok');
      }
    });
  });
}

serveRpc(async (call) => {
  switch (call.kind) {
    case 'listen': {
      const ports: number[] = [];
      for (const kind of call.kinds as FaultKind[]) {
        const entry = { server: null as unknown as Server, count: 0 };
        entry.server = misbehave(kind, entry);
        await new Promise<void>((resolve) => entry.server.listen(0, '127.0.0.1', resolve));
        servers.push(entry);
        ports.push((entry.server.address() as AddressInfo).port);
      }
      return { ports };
    }
    case 'stats':
      return { requests: servers.map((s) => s.count) };
    default:
      throw new Error(`unknown call ${call.kind}`);
  }
});
process.send!({ ready: true });
