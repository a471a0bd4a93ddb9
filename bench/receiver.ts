import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { now, serveRpc } from './shared.js';

/**
 * The webhook receiver of the bench, in its own process so that it does not share an event loop with
 * hookrelay or with the ceiling loop. Answers 200 as soon as the body is in, counts, and (when asked)
 * records the arrival time of each webhook-id (of each path and webhook-id with `perPath`, for fan-out).
 */
let count = 0;
let firstAt = 0;
let lastAt = 0;
let record = false;
let perPath = false;
let arrivals = new Map<string, number>();
let duplicates = 0;
let waiters: { count: number; resolve: () => void }[] = [];

const server = createServer((req, res) => {
  const at = now();
  req.resume();
  req.on('end', () => {
    count++;
    if (count === 1) firstAt = at;
    lastAt = at;
    if (record) {
      const header = req.headers['webhook-id'];
      const id = typeof header === 'string' && perPath ? `${req.url} ${header}` : header;
      if (typeof id === 'string') {
        if (arrivals.has(id)) duplicates++;
        else arrivals.set(id, at);
      }
    }
    res.writeHead(200, { 'content-length': '2' });
    res.end('ok');
    if (waiters.length && waiters.some((w) => count >= w.count)) {
      const due = waiters.filter((w) => count >= w.count);
      waiters = waiters.filter((w) => count < w.count);
      for (const w of due) w.resolve();
    }
  });
});
server.keepAliveTimeout = 120_000;
server.headersTimeout = 130_000;

const stats = () => ({ count, firstAt, lastAt, duplicates });

serveRpc(async (call) => {
  switch (call.kind) {
    case 'reset':
      count = 0;
      firstAt = lastAt = 0;
      duplicates = 0;
      record = Boolean(call.record);
      perPath = Boolean(call.perPath);
      arrivals = new Map();
      return stats();
    case 'stats':
      return { ...stats(), arrivals: call.arrivals ? [...arrivals] : undefined };
    case 'waitFor': {
      const target = call.count as number;
      if (count < target) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          new Promise<void>((resolve) => waiters.push({ count: target, resolve })),
          new Promise<void>((resolve) => (timer = setTimeout(resolve, call.timeoutMs as number))),
        ]);
        clearTimeout(timer);
      }
      return { ...stats(), reached: count >= target };
    }
    default:
      throw new Error(`unknown call ${call.kind}`);
  }
});

server.listen(0, '127.0.0.1', () => {
  process.send!({ ready: true, port: (server.address() as AddressInfo).port });
});
