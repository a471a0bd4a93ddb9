import { startBenchRelay, unfinished, type BenchRelay } from './relay.js';
import type { Call } from './shared.js';
import { now } from './shared.js';

export interface OrderingRow {
  label: 'unordered' | 'ordered';
  deliveries: number;
  perSecond: number;
}

/**
 * Deliveries per second to one endpoint ordered by key (`ordering: 'key'`, `keys` keys) against the same load to an
 * unordered one: the same messages, ordering keys included, accepted with the dispatcher held, then drained and timed
 * as the receiver sees it. Unordered and ordered runs alternate, twice each, so drift on a shared machine hits both.
 */
export async function orderingPhase(opts: {
  messages: number;
  keys: number;
  receiverUrl: string;
  receiver: <T>(call: Call) => Promise<T>;
  loadgen: <T>(call: Call) => Promise<T>;
  acceptCall: (br: BenchRelay, appId: string, extra: { count: number; orderingKeys: number }) => Call;
  flags: Record<string, string>;
  maxInFlight: number;
  timeoutMs: number;
}): Promise<{ rows: OrderingRow[]; problems: string[] }> {
  const runs: OrderingRow[] = [];
  const problems: string[] = [];
  for (const label of ['unordered', 'ordered', 'unordered', 'ordered'] as const) {
    const br = await startBenchRelay(opts.flags);
    try {
      const app = await br.api('POST', '/api/v1/app', { name: `bench ordering ${label}` });
      await br.api('POST', `/api/v1/app/${app.id}/endpoint`, {
        url: `${opts.receiverUrl}/o`,
        maxInFlight: opts.maxInFlight,
        ...(label === 'ordered' ? { ordering: 'key' } : {}),
      });
      await br.relay.dispatcher.stop(0);
      const accepted = await opts.loadgen<{ ok: number }>(opts.acceptCall(br, app.id, { count: opts.messages, orderingKeys: opts.keys }));
      await opts.receiver({ kind: 'reset' });
      const t0 = now();
      br.relay.dispatcher.start();
      const seen = await opts.receiver<{ count: number; lastAt: number; reached: boolean }>({ kind: 'waitFor', count: accepted.ok, timeoutMs: opts.timeoutMs });
      if (!seen.reached) problems.push(`ordering (${label}): ${seen.count}/${accepted.ok} received`);
      runs.push({ label, deliveries: seen.count, perSecond: seen.count / ((seen.lastAt - t0) / 1000) });
      const deadline = Date.now() + opts.timeoutMs;
      while (unfinished(br.db) > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    } finally {
      await br.close();
    }
  }
  const mean = (label: OrderingRow['label']): OrderingRow => {
    const of = runs.filter((r) => r.label === label);
    return { label, deliveries: of.reduce((n, r) => n + r.deliveries, 0), perSecond: of.reduce((n, r) => n + r.perSecond, 0) / of.length };
  };
  return { rows: [mean('unordered'), mean('ordered')], problems };
}
