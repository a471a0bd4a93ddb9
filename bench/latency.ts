import type { AcceptResult } from './loadgen.js';
import { summarize, type Call, type LatencySummary } from './shared.js';

type Caller = <T>(call: Call) => Promise<T>;

export interface PacedLatencyOptions {
  loadgen: Caller;
  receiver: Caller;
  /** hookrelay's API (and more processes' APIs, round-robin). */
  url: string;
  moreUrls?: string[];
  token: string;
  appId: string;
  /** Messages per second offered, open loop. */
  rate: number;
  seconds: number;
  /** Endpoints each message fans out to: every one of them must receive every message. */
  endpoints: number;
  seqBase: number;
  timeoutMs: number;
}

export interface PacedLatency {
  offered: number;
  accepted: AcceptResult;
  /** POST sent → the receiver got the first attempt, per delivery (message × endpoint). */
  delay: LatencySummary;
  missing: number;
  duplicates: number;
}

/**
 * Accept→first attempt latency at a paced rate: the load generator POSTs `rate` messages per second and records when
 * it sent each; the receiver records when each (endpoint path, webhook-id) first arrived. Both clocks are the
 * machine's wall clock with sub-millisecond resolution.
 */
export async function pacedLatency(o: PacedLatencyOptions): Promise<PacedLatency> {
  const count = Math.round(o.rate * o.seconds);
  await o.receiver({ kind: 'reset', record: true, perPath: true });
  const accepted = await o.loadgen<AcceptResult>({
    kind: 'accept',
    url: o.url,
    moreUrls: o.moreUrls,
    token: o.token,
    appId: o.appId,
    count,
    concurrency: 256,
    rate: o.rate,
    recordIds: true,
    seqBase: o.seqBase,
    timeoutMs: o.timeoutMs,
  } as unknown as Call);
  const expected = accepted.ok * o.endpoints;
  await o.receiver<{ reached: boolean; count: number }>({ kind: 'waitFor', count: expected, timeoutMs: 20_000 });
  const { arrivals, duplicates } = await o.receiver<{ arrivals: [string, number][]; duplicates: number }>({ kind: 'stats', arrivals: true });
  const sentAt = new Map(accepted.sends ?? []);
  const delays: number[] = [];
  for (const [key, at] of arrivals) {
    const sent = sentAt.get(key.slice(key.indexOf(' ') + 1));
    if (sent !== undefined) delays.push(at - sent);
  }
  return {
    offered: accepted.ok / ((accepted.finishedAt - accepted.startedAt) / 1000),
    accepted,
    delay: summarize(delays),
    missing: expected - delays.length,
    duplicates,
  };
}
