import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freshDatabase, postgresMissing } from '../test/helpers/postgres.js';
import { startChild, type Child } from '../test/process/child.js';
import type { AcceptResult } from './loadgen.js';
import type { Row } from './run.js';
import type { Call } from './shared.js';
import { pacedLatency } from './latency.js';
import { postgresCpuMs, processCpuMs } from './process-cpu.js';

type Caller = <T>(call: Call) => Promise<T>;

export interface ProcessesOptions {
  receiverUrl: string;
  receiver: Caller;
  loadgen: Caller;
  messages: number;
  processCounts: number[];
  /** Messages per second offered to one PostgreSQL process fanning out to ten endpoints, for accept→first attempt; 0 skips. */
  latencyRate: number;
  latencySeconds: number;
  concurrency: number;
  timeoutMs: number;
}

interface Figures {
  accepted: AcceptResult;
  deliveries: number;
  drainSeconds: number;
  reached: boolean;
}

const fmt = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a');
const FLAGS = ['--max-in-flight', '512'];
/** Each message goes to one of these endpoints (by event type): the many-tenant shape that several processes share. */
const ENDPOINTS = 10;

/**
 * Real `hookrelay serve` processes on one store, the way they are deployed: first `processes` API-only processes
 * (`--dispatch off`) take the messages, round-robin, so the accept rate is the front door's alone; then as many
 * dispatching processes start on the backlog, and the drain rate is what the receiver sees, first to last receipt.
 * SQLite runs the same procedure with its one process, for the side-by-side figure.
 */
export async function processesPhase(options: ProcessesOptions): Promise<{ rows: Row[]; problems: string[] }> {
  const rows: Row[] = [];
  const problems: string[] = [];

  const dir = mkdtempSync(join(tmpdir(), 'hookrelay-bench-'));
  try {
    const sqlite = await measure(options, join(dir, 'bench.db'), 1);
    rows.push(...describe('SQLite', 1, sqlite, problems));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  const missing = postgresMissing();
  if (missing) {
    problems.push(`PostgreSQL figures skipped: ${missing} (scripts/ci/postgres.sh installs the binaries)`);
    return { rows, problems };
  }
  for (const processes of options.processCounts) {
    const database = await freshDatabase();
    try {
      rows.push(...describe('PostgreSQL', processes, await measure(options, database.url, processes), problems));
    } finally {
      await database.drop();
    }
  }
  if (options.latencyRate > 0 && options.latencySeconds > 0) {
    const database = await freshDatabase();
    try {
      rows.push(await latency(options, database.url, problems));
    } finally {
      await database.drop();
    }
  }
  return { rows, problems };
}

/** One dispatching PostgreSQL process, every message fanned out to ten endpoints, at a paced rate. */
async function latency(options: ProcessesOptions, db: string, problems: string[]): Promise<Row> {
  const [child] = await startMany(db, 1, []);
  try {
    const app = await child.svix.application.create({ name: 'bench latency' });
    for (let k = 0; k < ENDPOINTS; k++) {
      const endpoint = await child.api('POST', `/api/v1/app/${app.id}/endpoint`, { url: `${options.receiverUrl}/pg-latency/${k}`, maxInFlight: 64 });
      if (endpoint.status !== 201) throw new Error(`endpoint create answered ${endpoint.status}: ${endpoint.text}`);
    }
    const paced = (seconds: number, seqBase: number) =>
      pacedLatency({
        loadgen: options.loadgen,
        receiver: options.receiver,
        url: child.url,
        token: child.adminToken,
        appId: app.id,
        rate: options.latencyRate,
        seconds,
        endpoints: ENDPOINTS,
        seqBase,
        timeoutMs: options.timeoutMs,
      });
    // The SQLite latency rows run on a relay that has just drained a backlog; this process is fresh. One second at the
    // same rate first (reported, not counted) lets its code be compiled before the measured run, as theirs was.
    const cold = await paced(1, 4e7);
    const cpu0 = { hookrelay: processCpuMs(child.proc.pid!), postgres: postgresCpuMs() };
    const run = await paced(options.latencySeconds, 5e7);
    const { delay, accepted } = run;
    const perDelivery = (ms: number) => ((ms * 1000) / Math.max(1, delay.count)).toFixed(0);
    const cpu = `CPU per delivery: hookrelay ${perDelivery(processCpuMs(child.proc.pid!) - cpu0.hookrelay)} µs, PostgreSQL ${perDelivery(postgresCpuMs() - cpu0.postgres)} µs`;
    console.log(`PostgreSQL latency, first second of a fresh process: POST→receipt p50 ${cold.delay.p50.toFixed(1)} ms, p99 ${cold.delay.p99.toFixed(1)} ms`);
    console.log(`PostgreSQL latency at ${fmt(run.offered)} msgs/s to ${ENDPOINTS} endpoints: POST→receipt p50 ${delay.p50.toFixed(1)} ms, p99 ${delay.p99.toFixed(1)} ms, max ${delay.max.toFixed(1)} ms; POST→202 p50 ${accepted.latencyMs.p50.toFixed(1)} ms, p99 ${accepted.latencyMs.p99.toFixed(1)} ms; ${run.missing} missing, ${run.duplicates} duplicates; ${cpu}`);
    if (run.missing) problems.push(`PostgreSQL latency: ${run.missing} of ${accepted.ok * ENDPOINTS} deliveries never reached the receiver`);
    if (accepted.failed) problems.push(`PostgreSQL latency: ${accepted.failed} accepts failed: ${accepted.failures.join(' | ')}`);
    return {
      metric: `PostgreSQL, 1 process: accept→first attempt p50 / p99, ${fmt(options.latencyRate)} msgs/s to ${ENDPOINTS} endpoints`,
      hookrelay: `${delay.p50.toFixed(1)} ms / ${delay.p99.toFixed(1)} ms`,
      ceiling: '',
      ratio: '',
      target: `p99 ≤ 100 ms ${delay.p99 <= 100 ? 'MET' : 'MISSED'}`,
      notes: `max ${delay.max.toFixed(1)} ms over ${delay.count} deliveries (${fmt(run.offered * ENDPOINTS)}/s); ${cpu}; POST→202 p99 ${accepted.latencyMs.p99.toFixed(1)} ms; the fresh process's first second before it: p50 ${cold.delay.p50.toFixed(1)} ms, p99 ${cold.delay.p99.toFixed(1)} ms`,
    };
  } finally {
    await child.stop();
  }
}

async function startMany(db: string, processes: number, flags: string[]): Promise<Child[]> {
  // One at a time: PostgreSQL migrations take an advisory lock, and the first start creates the schema.
  const children: Child[] = [];
  for (let i = 0; i < processes; i++) children.push(await startChild({ db, flags: [...FLAGS, ...flags], timeoutMs: 60_000 }));
  return children;
}

async function measure(options: ProcessesOptions, db: string, processes: number): Promise<Figures> {
  let children = await startMany(db, processes, ['--dispatch', 'off']);
  try {
    const [first, ...rest] = children;
    const app = await first.svix.application.create({ name: `bench ${processes} processes` });
    for (let k = 0; k < ENDPOINTS; k++) {
      const endpoint = await first.api('POST', `/api/v1/app/${app.id}/endpoint`, { url: `${options.receiverUrl}/processes/${k}`, filterTypes: [`bench.event.${k}`], maxInFlight: 64 });
      if (endpoint.status !== 201) throw new Error(`endpoint create answered ${endpoint.status}: ${endpoint.text}`);
    }
    await options.receiver({ kind: 'reset' });
    const accepted = await options.loadgen<AcceptResult>({
      kind: 'accept',
      url: first.url,
      moreUrls: rest.map((c) => c.url),
      token: first.adminToken,
      appId: app.id,
      count: options.messages,
      eventTypes: ENDPOINTS,
      concurrency: options.concurrency,
      timeoutMs: options.timeoutMs,
    } as unknown as Call);
    await Promise.all(children.map((c) => c.stop()));

    children = await startMany(db, processes, []);
    const seen = await options.receiver<{ count: number; firstAt: number; lastAt: number; reached: boolean }>({ kind: 'waitFor', count: accepted.ok, timeoutMs: options.timeoutMs });
    return { accepted, deliveries: seen.count, drainSeconds: (seen.lastAt - seen.firstAt) / 1000, reached: seen.reached };
  } finally {
    await Promise.all(children.map((c) => c.stop()));
  }
}

function describe(store: string, processes: number, figures: Figures, problems: string[]): Row[] {
  const { accepted } = figures;
  const acceptSeconds = (accepted.finishedAt - accepted.startedAt) / 1000;
  const label = `${store}, ${processes} process${processes > 1 ? 'es' : ''}`;
  console.log(
    `${label}: accept ${accepted.ok} in ${acceptSeconds.toFixed(2)} s = ${fmt(accepted.ok / acceptSeconds)} msgs/s (p99 ${accepted.latencyMs.p99.toFixed(1)} ms, ${accepted.failed} failed); ` +
      `drain ${figures.deliveries} in ${figures.drainSeconds.toFixed(2)} s = ${fmt(figures.deliveries / figures.drainSeconds)}/s`,
  );
  if (accepted.failed) problems.push(`${label}: ${accepted.failed} accepts failed: ${accepted.failures.join(' | ')}`);
  if (!figures.reached) problems.push(`${label}: drain timed out with ${figures.deliveries}/${accepted.ok} received`);
  const common = { ceiling: '', ratio: '', target: '' };
  return [
    {
      metric: `${label}: accept (msgs/s)`,
      hookrelay: `${fmt(accepted.ok / acceptSeconds)}/s`,
      ...common,
      notes: `${accepted.ok} msgs round-robin over ${processes} API-only process${processes > 1 ? 'es' : ''}; p50 ${accepted.latencyMs.p50.toFixed(1)} ms, p99 ${accepted.latencyMs.p99.toFixed(1)} ms`,
    },
    {
      metric: `${label}: drain (deliveries/s)`,
      hookrelay: `${fmt(figures.deliveries / figures.drainSeconds)}/s`,
      ...common,
      notes: `${figures.deliveries} deliveries to ${ENDPOINTS} endpoints by ${processes} dispatching process${processes > 1 ? 'es' : ''}, first to last receipt`,
    },
  ];
}
