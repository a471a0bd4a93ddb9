import { createHmac } from 'node:crypto';
import { Pool } from 'undici';
import { benchPayload, now, serveRpc, summarize, type LatencySummary } from './shared.js';

/**
 * The API client of the bench, in its own process: POSTs messages to hookrelay's real HTTP API, either
 * closed-loop (`concurrency` requests in flight until `count` are done) or open-loop at `rate` per second.
 */
export interface AcceptCall {
  kind: 'accept';
  url: string;
  /** Spread messages over this many event types, `bench.event.0` …; one type `bench.event` when absent. */
  eventTypes?: number;
  /** More hookrelay processes on the same store: requests go round-robin over `url` and these. */
  moreUrls?: string[];
  token: string;
  appId: string;
  count: number;
  concurrency: number;
  /**
   * Messages per second, open loop; closed loop when absent. An open loop opens its `concurrency` connections before
   * the clock starts, as a client that has been running keeps its pool: Node.js accepts one new connection per turn of
   * its event loop, so a client that opened one for each request sent while the answers were a few milliseconds late
   * would measure the queue of its own connections (hundreds of ms for dozens of them) rather than the answers.
   */
  rate?: number;
  /** Return [message id, send time] of every accepted message. */
  recordIds?: boolean;
  seqBase?: number;
  /** Give message `seq` the ordering key `key-<seq % orderingKeys>`; none when absent. */
  orderingKeys?: number;
  timeoutMs: number;
}

export interface AcceptResult {
  ok: number;
  failed: number;
  failures: string[];
  startedAt: number;
  finishedAt: number;
  latencyMs: LatencySummary;
  sends?: [string, number][];
}

async function accept(call: AcceptCall): Promise<AcceptResult> {
  const pools = [call.url, ...(call.moreUrls ?? [])].map((url) => new Pool(url, { connections: call.concurrency, pipelining: 1, keepAliveTimeout: 60_000 }));
  const headers = { authorization: `Bearer ${call.token}`, 'content-type': 'application/json' };
  const path = `/api/v1/app/${call.appId}/msg`;
  const latencies: number[] = [];
  const failures: string[] = [];
  const sends: [string, number][] = [];
  let ok = 0;
  let failed = 0;
  const deadline = now() + call.timeoutMs;

  const one = async (seq: number) => {
    const eventType = call.eventTypes ? `bench.event.${seq % call.eventTypes}` : 'bench.event';
    const body = JSON.stringify({ eventType, payload: benchPayload(seq), ...(call.orderingKeys ? { orderingKey: `key-${seq % call.orderingKeys}` } : {}) });
    const sentAt = now();
    try {
      const response = await pools[seq % pools.length].request({ path, method: 'POST', headers, body });
      const text = await response.body.text();
      latencies.push(now() - sentAt);
      if (response.statusCode !== 202) {
        failed++;
        if (failures.length < 5) failures.push(`${response.statusCode} ${text.slice(0, 200)}`);
        return;
      }
      ok++;
      if (call.recordIds) sends.push([(JSON.parse(text) as { id: string }).id, sentAt]);
    } catch (error) {
      failed++;
      if (failures.length < 5) failures.push((error as Error).message);
    }
  };

  const base = call.seqBase ?? 0;
  if (call.rate) await Promise.all(pools.map((pool) => openConnections(pool, call.concurrency)));
  const startedAt = now();
  if (call.rate) {
    const inFlight = new Set<Promise<void>>();
    const interval = 1000 / call.rate;
    for (let i = 0; i < call.count && now() < deadline; i++) {
      const due = startedAt + i * interval;
      const wait = due - now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      const p = one(base + i).finally(() => inFlight.delete(p));
      inFlight.add(p);
    }
    await Promise.all(inFlight);
  } else {
    let issued = 0;
    const worker = async () => {
      while (issued < call.count && now() < deadline) await one(base + issued++);
    };
    await Promise.all(Array.from({ length: call.concurrency }, worker));
  }
  const finishedAt = now();
  await Promise.all(pools.map((pool) => pool.close()));
  return { ok, failed, failures, startedAt, finishedAt, latencyMs: summarize(latencies), sends: call.recordIds ? sends : undefined };
}

/** `count` requests at once (one per connection, as the pool does not pipeline): the pool opens `count` connections. */
async function openConnections(pool: Pool, count: number): Promise<void> {
  await Promise.all(
    Array.from({ length: count }, async () => {
      const response = await pool.request({ path: '/healthz', method: 'GET' });
      await response.body.dump();
    }),
  );
}

/** A provider posting signed webhooks (GitHub's scheme) to `url`, `concurrency` at a time, each with its own delivery id. */
export interface IngestCall {
  kind: 'ingest';
  url: string;
  secret: string;
  count: number;
  concurrency: number;
  seqBase: number;
  timeoutMs: number;
}

async function ingest(call: IngestCall): Promise<AcceptResult> {
  const target = new URL(call.url);
  const pool = new Pool(target.origin, { connections: call.concurrency, pipelining: 1, keepAliveTimeout: 60_000 });
  // Built before the clock starts, so that the generator's JSON and HMAC work is not what limits either server.
  const requests = Array.from({ length: call.count }, (_, i) => {
    const seq = call.seqBase + i;
    const body = JSON.stringify({ action: 'opened', ...benchPayload(seq) });
    const headers = {
      'content-type': 'application/json',
      'x-github-event': 'issues',
      'x-github-delivery': `bench-${seq}`,
      'x-hub-signature-256': 'sha256=' + createHmac('sha256', call.secret).update(body).digest('hex'),
    };
    return { body: Buffer.from(body), headers };
  });
  const latencies: number[] = [];
  const failures: string[] = [];
  let ok = 0;
  let failed = 0;
  let issued = 0;
  const deadline = now() + call.timeoutMs;
  const one = async (index: number) => {
    const { body, headers } = requests[index];
    const sentAt = now();
    try {
      const response = await pool.request({ path: target.pathname, method: 'POST', headers, body });
      const text = await response.body.text();
      latencies.push(now() - sentAt);
      if (response.statusCode === 200) ok++;
      else {
        failed++;
        if (failures.length < 5) failures.push(`${response.statusCode} ${text.slice(0, 200)}`);
      }
    } catch (error) {
      failed++;
      if (failures.length < 5) failures.push((error as Error).message);
    }
  };
  const startedAt = now();
  const worker = async () => {
    while (issued < call.count && now() < deadline) await one(issued++);
  };
  await Promise.all(Array.from({ length: call.concurrency }, worker));
  const finishedAt = now();
  await pool.close();
  return { ok, failed, failures, startedAt, finishedAt, latencyMs: summarize(latencies) };
}

serveRpc(async (call) => {
  if (call.kind === 'accept') return accept(call as unknown as AcceptCall);
  if (call.kind === 'ingest') return ingest(call as unknown as IngestCall);
  throw new Error(`unknown call ${call.kind}`);
});
process.send!({ ready: true });
