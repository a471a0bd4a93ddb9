import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** What an ordered receiver saw of one request: its key and sequence number, and whether it answered 2xx. */
export interface Arrival {
  key: string;
  seq: number;
  ok: boolean;
  /** Requests of the same key that had arrived and were not finished (answered or cut off) when this one arrived. */
  sameKeyOpen: number;
  /** Distinct keys with a request open when this one arrived, itself included. */
  keysOpen: number;
}

export interface OrderedReceiver {
  url: string;
  arrivals: Arrival[];
  /** The highest number of keys that had requests open at the same moment. */
  maxKeysOpen(): number;
  /** Keys whose every sequence number 0…count-1 has been answered 2xx. */
  complete(count: number): number;
  /** Holds every answer (requests still arrive and count as open) until the returned function is called. */
  pause(): () => void;
  close(): Promise<void>;
}

/**
 * A real HTTP server on loopback for ordering tests: bodies are `{"key", "seq"}`; `answer` decides each request's
 * status and delay. It keeps, per key, which requests are open — from arrival until the response is finished or the
 * connection is gone (a killed sender) — so overlapping deliveries of one key are seen whatever the timing.
 */
export async function startOrderedReceiver(answer: (key: string, seq: number, attempt: number) => { status: number; delayMs: number }): Promise<OrderedReceiver> {
  const arrivals: Arrival[] = [];
  const open = new Map<string, number>();
  const attempts = new Map<string, number>();
  const answered = new Map<string, Set<number>>();
  let maxKeysOpen = 0;
  let paused: Promise<void> | null = null;
  const sockets = new Set<import('node:net').Socket>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const { key, seq } = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { key: string; seq: number };
      const attempt = attempts.get(`${key}\0${seq}`) ?? 0;
      attempts.set(`${key}\0${seq}`, attempt + 1);
      const { status, delayMs } = answer(key, seq, attempt);
      const ok = status < 300;
      const sameKeyOpen = open.get(key) ?? 0;
      open.set(key, sameKeyOpen + 1);
      maxKeysOpen = Math.max(maxKeysOpen, open.size);
      arrivals.push({ key, seq, ok, sameKeyOpen, keysOpen: open.size });
      let finished = false;
      const finish = () => {
        if (finished) return;
        finished = true;
        const left = open.get(key)! - 1;
        if (left === 0) open.delete(key);
        else open.set(key, left);
      };
      // Finished once the answer is written, so the next delivery of the key (which needs the recorded outcome) can
      // only arrive after it; or when the sender's connection is gone.
      res.on('finish', () => {
        finish();
        if (ok) (answered.get(key) ?? answered.set(key, new Set()).get(key)!).add(seq);
      });
      res.on('close', finish);
      const reply = () =>
        setTimeout(() => {
          if (!res.destroyed) res.writeHead(status).end(ok ? 'ok' : 'try again');
        }, delayMs);
      if (paused) void paused.then(reply);
      else reply();
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/ordered`,
    arrivals,
    maxKeysOpen: () => maxKeysOpen,
    complete: (count) => [...answered.values()].filter((seqs) => seqs.size >= count).length,
    pause() {
      let release!: () => void;
      paused = new Promise<void>((resolve) => (release = resolve));
      return () => {
        paused = null;
        release();
      };
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * Checks each key's arrivals: sequence numbers start at 0 and never go back or skip; a number is sent again only
 * while it is the key's latest (a retry, or after a crash the repeat of the one that was in flight); the next one
 * arrives only after the latest was answered 2xx; and no request of a key arrived while another of it was open.
 */
export function assertKeyOrder(arrivals: Arrival[], keys: string[], count: number, options: { repeatsAfterSuccess?: boolean } = {}): void {
  const byKey = new Map<string, Arrival[]>();
  for (const a of arrivals) (byKey.get(a.key) ?? byKey.set(a.key, []).get(a.key)!).push(a);
  for (const key of keys) {
    const seen = byKey.get(key) ?? [];
    let latest = -1;
    let latestOk = false;
    for (const [i, a] of seen.entries()) {
      assert.equal(a.sameKeyOpen, 0, `key ${key}: #${a.seq} arrived while another request of the key was open`);
      if (a.seq === latest) {
        // A retry after a failure; after a success only a repeat (a crash before the outcome was recorded).
        assert.ok(!latestOk || options.repeatsAfterSuccess, `key ${key}: #${a.seq} arrived again after it succeeded`);
      } else {
        assert.equal(a.seq, latest + 1, `key ${key}: arrival ${i} is #${a.seq} after #${latest} (${seen.map((s) => s.seq).join(',')})`);
        assert.ok(latest === -1 || latestOk, `key ${key}: #${a.seq} arrived before #${latest} succeeded`);
        latestOk = false;
      }
      latest = a.seq;
      latestOk ||= a.ok;
    }
    assert.equal(latest, count - 1, `key ${key}: the last arrival is #${latest}, not #${count - 1}`);
    assert.ok(latestOk, `key ${key}: #${latest} never succeeded`);
  }
}
