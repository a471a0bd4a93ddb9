import { startBenchRelay, unfinished, type BenchRelay } from './relay.js';
import type { Call } from './shared.js';
import { now } from './shared.js';

export interface TransformRow {
  label: 'plain' | 'transformed';
  deliveries: number;
  perSecond: number;
}

/** A handler of the usual kind: reshapes the payload into a chat message and adds a header. */
export const BENCH_TRANSFORMATION = `function handler(webhook) {
  const p = webhook.payload;
  webhook.headers['x-event-type'] = webhook.eventType;
  webhook.payload = { text: 'Event ' + webhook.eventType + ' #' + p.seq, fields: Object.keys(p.data || {}).map((k) => ({ name: k })) };
  return webhook;
}`;

/**
 * Deliveries per second to one endpoint without, then with, a transformation: a backlog accepted with the dispatcher
 * held, then drained and timed as the receiver sees it. Every transformed delivery runs the handler in a fresh
 * QuickJS runtime on a sandbox thread.
 */
export async function transformPhase(opts: {
  messages: number;
  receiverUrl: string;
  receiver: <T>(call: Call) => Promise<T>;
  loadgen: <T>(call: Call) => Promise<T>;
  acceptCall: (br: BenchRelay, appId: string, extra: { count: number }) => Call;
  flags: Record<string, string>;
  timeoutMs: number;
}): Promise<{ rows: TransformRow[]; problems: string[] }> {
  const rows: TransformRow[] = [];
  const problems: string[] = [];
  for (const label of ['plain', 'transformed'] as const) {
    const br = await startBenchRelay(opts.flags);
    try {
      const app = await br.api('POST', '/api/v1/app', { name: `bench transform ${label}` });
      const ep = await br.api('POST', `/api/v1/app/${app.id}/endpoint`, { url: `${opts.receiverUrl}/t`, maxInFlight: 256 });
      if (label === 'transformed') await br.api('PATCH', `/api/v1/app/${app.id}/endpoint/${ep.id}/transformation`, { code: BENCH_TRANSFORMATION, enabled: true });
      await br.relay.dispatcher.stop(0);
      const accepted = await opts.loadgen<{ ok: number }>(opts.acceptCall(br, app.id, { count: opts.messages }));
      await opts.receiver({ kind: 'reset' });
      const t0 = now();
      br.relay.dispatcher.start();
      const seen = await opts.receiver<{ count: number; lastAt: number; reached: boolean }>({ kind: 'waitFor', count: accepted.ok, timeoutMs: opts.timeoutMs });
      if (!seen.reached) problems.push(`transformations (${label}): ${seen.count}/${accepted.ok} received`);
      rows.push({ label, deliveries: seen.count, perSecond: seen.count / ((seen.lastAt - t0) / 1000) });
      const deadline = Date.now() + opts.timeoutMs;
      while (unfinished(br.db) > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    } finally {
      await br.close();
    }
  }
  return { rows, problems };
}
