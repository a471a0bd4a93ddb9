import { createSocket } from 'node:dgram';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ipv6Groups } from '../../src/egress/addresses.js';

export interface DnsQuery {
  name: string;
  type: 'A' | 'AAAA';
}

export interface DnsServer {
  /** `127.0.0.1:port`, for --dns-servers. */
  address: string;
  queries: DnsQuery[];
  close(): Promise<void>;
}

/**
 * The addresses of `name`'s `n`-th query of `type` (0-based), which may change between queries (DNS rebinding);
 * `[]` for a name without records of that type, null for a name that does not exist (NXDOMAIN).
 */
export type Zone = (name: string, type: 'A' | 'AAAA', n: number) => string[] | null;

const TYPES: Record<number, 'A' | 'AAAA'> = { 1: 'A', 28: 'AAAA' };

/** A real DNS server over UDP on loopback, enough for A and AAAA look-ups. Every answer has TTL 0: nothing may cache it. */
export async function startDnsServer(zone: Zone): Promise<DnsServer> {
  const socket = createSocket('udp4');
  const queries: DnsQuery[] = [];
  const counts = new Map<string, number>();
  socket.on('message', (packet, peer) => {
    if (packet.length < 12) return;
    const id = packet.readUInt16BE(0);
    let offset = 12;
    const labels: string[] = [];
    while (packet[offset] !== 0) {
      labels.push(packet.subarray(offset + 1, offset + 1 + packet[offset]).toString('ascii'));
      offset += packet[offset] + 1;
    }
    const questionEnd = offset + 5;
    const qtype = packet.readUInt16BE(offset + 1);
    const name = labels.join('.').toLowerCase();
    const type = TYPES[qtype];
    let addresses: string[] | null = null;
    if (type) {
      queries.push({ name, type });
      const key = `${name} ${type}`;
      const n = counts.get(key) ?? 0;
      counts.set(key, n + 1);
      addresses = zone(name, type, n);
    }
    const known = addresses !== null;
    const answers = (addresses ?? []).filter((a) => (type === 'A' ? !a.includes(':') : a.includes(':')));
    const header = Buffer.alloc(12);
    header.writeUInt16BE(id, 0);
    header.writeUInt16BE(0x8400 | (packet.readUInt16BE(2) & 0x0100) | (known ? 0 : 3), 2); // QR, AA, RD echoed, NXDOMAIN if unknown
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(answers.length, 6);
    const records = answers.map((address) => {
      const data = type === 'A' ? Buffer.from(address.split('.').map(Number)) : Buffer.from(ipv6Groups(address)!.flatMap((g) => [g >> 8, g & 255]));
      const record = Buffer.alloc(12);
      record.writeUInt16BE(0xc00c, 0); // the name: a pointer to the question's
      record.writeUInt16BE(qtype, 2);
      record.writeUInt16BE(1, 4); // IN
      record.writeUInt32BE(0, 6); // TTL 0
      record.writeUInt16BE(data.length, 10);
      return Buffer.concat([record, data]);
    });
    socket.send(Buffer.concat([header, packet.subarray(12, questionEnd), ...records]), peer.port, peer.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  return {
    address: `127.0.0.1:${(socket.address() as AddressInfo).port}`,
    queries,
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}

export interface Listener {
  url: string;
  port: number;
  received: { path: string; headers: IncomingHttpHeaders }[];
  close(): Promise<void>;
}

/** An HTTP server on `host:port` (0: any free port) that records requests and answers as `answer` says, closing each connection. */
export async function listenOn(host: string, port: number, answer: (n: number) => { status: number; headers?: Record<string, string> } = () => ({ status: 200 })): Promise<Listener> {
  const received: Listener['received'] = [];
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const n = received.push({ path: req.url!, headers: req.headers }) - 1;
      const { status, headers } = answer(n);
      // A fresh connection per delivery: the next attempt resolves the name again.
      res.writeHead(status, { connection: 'close', ...headers });
      res.end('answered by ' + host);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const bound = (server.address() as AddressInfo).port;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${bound}/webhook`,
    port: bound,
    received,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
