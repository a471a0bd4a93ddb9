import { startBenchRelay } from './relay.js';
import type { Row } from './run.js';
import { benchPayload, now, type Call } from './shared.js';

type Caller = <T>(call: Call) => Promise<T>;

export interface MemoryOptions {
  receiver: Caller;
  receiverUrl: string;
  flags: Record<string, string>;
  /** Pending messages at the last sample. */
  messages: number;
  /** Seconds the dispatcher delivers from the full backlog before the last sample. */
  deliverSeconds: number;
}

const MiB = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MiB`;

/**
 * Resident memory as the backlog grows: a real relay (as `hookrelay serve` composes it) with its dispatcher held takes
 * `messages` messages to one endpoint straight into its store (the API's accept path minus HTTP, so that a million
 * take seconds, not minutes), and the RSS of this process is read at 100,000 pending and at the end; then the
 * dispatcher delivers from the full backlog for a few seconds and it is read again. Nothing in memory should grow with
 * the number of pending deliveries: the claim reads one index seek per endpoint, whatever the backlog.
 */
export async function memoryPhase(o: MemoryOptions): Promise<{ rows: Row[]; problems: string[] }> {
  const problems: string[] = [];
  const br = await startBenchRelay(o.flags);
  try {
    const app = await br.api('POST', '/api/v1/app', { name: 'bench memory' });
    await br.api('POST', `/api/v1/app/${app.id}/endpoint`, { url: `${o.receiverUrl}/memory`, maxInFlight: 256 });
    await br.relay.dispatcher.stop(0);
    await o.receiver({ kind: 'reset' });
    const payload = Buffer.from(JSON.stringify(benchPayload(0)));
    const samples: { pending: number; rss: number; heap: number }[] = [];
    const marks = [10_000, 100_000, o.messages].filter((n, i, all) => n <= o.messages && all.indexOf(n) === i);
    const t0 = now();
    for (let done = 0; done < o.messages; ) {
      // Chunks end on every mark, so each sample is taken at exactly its number of pending messages.
      const chunk = Math.min(256, o.messages - done, marks[samples.length] - done);
      const at = Date.now();
      await Promise.all(
        Array.from({ length: chunk }, () =>
          br.relay.store.accept({ appId: app.id, eventType: 'bench.event', eventId: null, payload, contentType: 'application/json', channels: null, tags: null, idempotencyKey: null, idempotencyTtlMs: 0, now: at, dueAt: at }),
        ),
      );
      done += chunk;
      if (done >= marks[samples.length]) {
        const { rss, heapUsed } = process.memoryUsage();
        samples.push({ pending: marks[samples.length], rss, heap: heapUsed });
      }
    }
    const acceptSeconds = (now() - t0) / 1000;
    br.relay.dispatcher.start();
    const started = now();
    await new Promise((resolve) => setTimeout(resolve, o.deliverSeconds * 1000));
    const { count } = await o.receiver<{ count: number }>({ kind: 'stats' });
    const delivering = process.memoryUsage();
    const rate = count / ((now() - started) / 1000);
    await br.relay.dispatcher.stop(2_000);
    const at100k = samples.find((s) => s.pending === 100_000) ?? samples[0];
    const last = samples[samples.length - 1];
    console.log(
      `memory: ${samples.map((s) => `${s.pending.toLocaleString('en-US')} pending: RSS ${MiB(s.rss)} (heap ${MiB(s.heap)})`).join('; ')}; ` +
        `delivering from the backlog: RSS ${MiB(delivering.rss)} (heap ${MiB(delivering.heapUsed)}), ${Math.round(rate).toLocaleString('en-US')} deliveries/s; accepted in ${acceptSeconds.toFixed(1)} s`,
    );
    if (count === 0) problems.push('memory: nothing was delivered from the backlog');
    return {
      problems,
      rows: [
        {
          metric: `RSS with ${at100k.pending.toLocaleString('en-US')} → ${last.pending.toLocaleString('en-US')} messages pending, 1 endpoint`,
          hookrelay: `${MiB(at100k.rss)} → ${MiB(last.rss)}`,
          ceiling: '',
          ratio: '',
          target: 'flat',
          notes: `then ${MiB(delivering.rss)} while delivering ${Math.round(rate).toLocaleString('en-US')}/s from the full backlog for ${o.deliverSeconds} s; heap ${MiB(at100k.heap)} → ${MiB(last.heap)} → ${MiB(delivering.heapUsed)}; accepted straight into the store (no HTTP)`,
        },
      ],
    };
  } finally {
    await br.close();
  }
}
