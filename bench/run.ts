import { fork, type ChildProcess } from 'node:child_process';
import { cpus, loadavg, totalmem, tmpdir, platform, release } from 'node:os';
import { fileURLToPath } from 'node:url';
import { ceiling, type CeilingResult } from './ceiling.js';
import type { AcceptCall, AcceptResult } from './loadgen.js';
import { PhaseProfiler } from './profile.js';
import { countStoreCalls, startBenchRelay, statusCounts, unfinished, type BenchRelay, type StoreCounters } from './relay.js';
import { now, rpcClient, summarize, type Call, type LatencySummary } from './shared.js';
import { faultPhase } from './faults.js';
import { filterFanOut } from './filters.js';
import { transformPhase } from './transforms.js';
import { orderingPhase } from './ordering.js';
import { ingestPhase } from './ingest.js';
import { processesPhase } from './processes.js';
import { brokersInPhase } from './brokers-in.js';
import { storeOnly } from './store-only.js';
import { pacedLatency } from './latency.js';
import { brokerPhase } from './brokers.js';
import { memoryPhase } from './memory.js';

/**
 * `npm run bench`: what hookrelay delivers per second against what this machine can POST at all, in one run.
 * Receiver and API client run in their own processes; hookrelay runs in this one, as `hookrelay serve` would.
 *
 * Knobs (environment): BENCH_MESSAGES (backlog drained, default 50000; 0 skips the relay phases),
 * BENCH_ENDPOINTS (fan-out variant, default 10; 1 skips it), BENCH_ACCEPT_CONCURRENCY, BENCH_CONTINUOUS_MESSAGES,
 * BENCH_LATENCY_RATES (msgs/s to one endpoint, comma separated), BENCH_FANOUT_LATENCY_RATES (msgs/s to the fan-out
 * endpoints, default 1000), BENCH_LATENCY_SECONDS, BENCH_STORE_ONLY (backlog of the no-HTTP
 * store phase), BENCH_CEILING_SECONDS, BENCH_CEILING_IN_FLIGHT, BENCH_MAX_IN_FLIGHT, BENCH_ENDPOINT_MAX_IN_FLIGHT,
 * BENCH_ENDPOINT_CONCURRENCY, BENCH_DELIVERY_THREAD (on|off, default on), BENCH_SYNCHRONOUS (FULL|NORMAL), BENCH_PHASE_TIMEOUT_S, BENCH_MAX_SECONDS,
 * BENCH_INGEST_REQUESTS (signed provider requests per server and round of the ingest phase, default 20000; 0 skips it),
 * BENCH_INGEST_ROUNDS (alternating bare/hookrelay rounds of the ingest phase, default 3),
 * BENCH_PROCESS_MESSAGES (messages per run of the processes phase: SQLite and PostgreSQL as real `hookrelay serve`
 * processes, default 10000; 0 skips it), BENCH_PROCESSES (PostgreSQL process counts, default 1,2,3), BENCH_PG_LATENCY_RATE (msgs/s offered to one PostgreSQL process fanning out to ten endpoints, default 500; 0 skips), BENCH_PROFILE_DIR (write a .cpuprofile of this process per phase; summarize with dist/bench/profile-summary.js),
 * BENCH_FAULT_SECONDS (each run of the fault-isolation phase, default 8; 0 skips it), BENCH_FAULT_RATE (msgs/s to the
 * healthy app and to the faulty app, each fanning out to 25 endpoints; default 20), BENCH_FILTER_MESSAGES (messages
 * of the content-filter fan-out phase, each to 100 endpoints with and without filters; default 4000; 0 skips it),
 * BENCH_TRANSFORM_MESSAGES (deliveries to one endpoint without and with a transformation; default 3000; 0 skips it),
 * BENCH_ORDERING_MESSAGES (deliveries to one endpoint ordered by 1,000 keys against the same load unordered, two runs
 * of each; default 20000; 0 skips it), BENCH_ORDERING_KEYS (default 1000),
 * BENCH_BROKER_MESSAGES (deliveries to each broker destination, beside the client library's own publish loop; default
 * 10000; 0 skips the broker phase), BENCH_BROKERS (which ones, default redis,nats,kafka,rabbitmq),
 * BENCH_BROKER_CONCURRENCY (publishes in flight, the endpoint's maxInFlight and the bare loop's workers; default 64),
 * BENCH_BROKER_SOURCE_RECORDS (records each broker source consumes: Redis, NATS, Kafka, RabbitMQ as installed; default 10000; 0 skips it),
 * BENCH_MEMORY_MESSAGES (pending messages at the last RSS sample of the memory phase, default 1000000; 0 skips it),
 * BENCH_WARMUP_MESSAGES (messages drained, and requests served by each ingest server, unmeasured before the drain and ingest
 * runs, as a relay that has been running would have its code compiled and its sockets open; default 5000; 0 measures cold).
 */

const int = (name: string, fallback: number) => {
  const raw = process.env[name];
  const value = raw === undefined || raw === '' ? fallback : Number(raw);
  if (!Number.isFinite(value) || value < 0) throw new Error(`${name} must be a non-negative number`);
  return value;
};

const cfg = {
  messages: int('BENCH_MESSAGES', 50_000),
  fanout: int('BENCH_ENDPOINTS', 10),
  acceptConcurrency: int('BENCH_ACCEPT_CONCURRENCY', 64),
  continuousMessages: int('BENCH_CONTINUOUS_MESSAGES', 10_000),
  latencyRates: (process.env.BENCH_LATENCY_RATES ?? '200,500,1000').split(',').map(Number),
  latencySeconds: int('BENCH_LATENCY_SECONDS', 5),
  fanoutLatencyRates: (process.env.BENCH_FANOUT_LATENCY_RATES ?? '1000').split(',').map(Number),
  storeOnly: int('BENCH_STORE_ONLY', 20_000),
  filterMessages: int('BENCH_FILTER_MESSAGES', 4_000),
  transformMessages: int('BENCH_TRANSFORM_MESSAGES', 3_000),
  orderingMessages: int('BENCH_ORDERING_MESSAGES', 20_000),
  orderingKeys: int('BENCH_ORDERING_KEYS', 1_000),
  brokerMessages: int('BENCH_BROKER_MESSAGES', 10_000),
  brokers: (process.env.BENCH_BROKERS ?? 'redis,nats,kafka,rabbitmq').split(',').map((b) => b.trim()).filter(Boolean),
  brokerConcurrency: int('BENCH_BROKER_CONCURRENCY', 64),
  ingestRequests: int('BENCH_INGEST_REQUESTS', 20_000),
  ingestRounds: int('BENCH_INGEST_ROUNDS', 3),
  processMessages: int('BENCH_PROCESS_MESSAGES', 10_000),
  memoryMessages: int('BENCH_MEMORY_MESSAGES', 1_000_000),
  warmupMessages: int('BENCH_WARMUP_MESSAGES', 5_000),
  brokerSourceRecords: int('BENCH_BROKER_SOURCE_RECORDS', 10_000),
  processCounts: (process.env.BENCH_PROCESSES ?? '1,2,3').split(',').map(Number).filter((n) => n > 0),
  pgLatencyRate: int('BENCH_PG_LATENCY_RATE', 500),
  faultSeconds: int('BENCH_FAULT_SECONDS', 8),
  faultRate: int('BENCH_FAULT_RATE', 20),
  ceilingSeconds: int('BENCH_CEILING_SECONDS', 4),
  ceilingInFlight: (process.env.BENCH_CEILING_IN_FLIGHT ?? '64,256').split(',').map(Number),
  relayMaxInFlight: int('BENCH_MAX_IN_FLIGHT', 512),
  endpointMaxInFlight: int('BENCH_ENDPOINT_MAX_IN_FLIGHT', 256),
  synchronous: (process.env.BENCH_SYNCHRONOUS ?? 'FULL').toUpperCase(),
  phaseTimeoutMs: int('BENCH_PHASE_TIMEOUT_S', 60) * 1000,
  maxSeconds: int('BENCH_MAX_SECONDS', 480),
  profileDir: process.env.BENCH_PROFILE_DIR || undefined,
  target: 10_000,
};

/** Keep-alive sockets hookrelay opens to one origin (the HTTP destination's pool). */
const HOOKRELAY_SOCKETS = Math.max(Number(process.env.BENCH_ENDPOINT_CONCURRENCY || 32), 64);

const relayFlags = {
  maxInFlight: String(cfg.relayMaxInFlight),
  sqliteSynchronous: cfg.synchronous,
  ...(process.env.BENCH_ENDPOINT_CONCURRENCY ? { endpointConcurrency: process.env.BENCH_ENDPOINT_CONCURRENCY } : {}),
  ...(process.env.BENCH_DELIVERY_THREAD ? { deliveryThread: process.env.BENCH_DELIVERY_THREAD } : {}),
};

// ---- children ---------------------------------------------------------------------------------

interface Child {
  process: ChildProcess;
  call: <T>(call: Call) => Promise<T>;
  ready: any;
}

async function forkChild(script: string): Promise<Child> {
  const child = fork(fileURLToPath(new URL(script, import.meta.url)), [], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const ready = await new Promise<any>((resolve, reject) => {
    child.once('message', resolve);
    child.once('exit', (code) => reject(new Error(`${script} exited (${code}) before it was ready`)));
  });
  return { process: child, call: rpcClient(child), ready };
}

// ---- results ----------------------------------------------------------------------------------

export interface Row {
  metric: string;
  hookrelay: string;
  ceiling: string;
  ratio: string;
  target: string;
  notes: string;
}

const rows: Row[] = [];
const problems: string[] = [];
let bestCeiling = 0;

const rate = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a');
const ms = (n: number) => (Number.isFinite(n) ? `${n < 10 ? n.toFixed(2) : n.toFixed(1)} ms` : 'n/a');
const lat = (l: LatencySummary) => `p50 ${ms(l.p50)}, p99 ${ms(l.p99)}, max ${ms(l.max)}`;

/** `target`: deliveries/s the issue asks for; `share`: the part of the ceiling it asks for (0 = none). */
function deliveryRow(metric: string, perSecond: number, notes: string, target = cfg.target, share = 0): void {
  const ratio = bestCeiling ? perSecond / bestCeiling : NaN;
  const targets = [`≥ ${rate(target)}/s ${perSecond >= target ? 'MET' : 'MISSED'}`];
  if (share > 0 && bestCeiling) targets.push(`≥ ${share * 100}% ${ratio >= share ? 'MET' : 'MISSED'}`);
  rows.push({
    metric,
    hookrelay: `${rate(perSecond)}/s`,
    ceiling: bestCeiling ? `${rate(bestCeiling)}/s` : '',
    ratio: bestCeiling ? `${(ratio * 100).toFixed(1)}%` : '',
    target: targets.join(', '),
    notes,
  });
}

function printTable(): void {
  const columns: (keyof Row)[] = ['metric', 'hookrelay', 'ceiling', 'ratio', 'target', 'notes'];
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => r[c].length)));
  const line = (cells: string[]) => cells.map((cell, i) => cell.padEnd(widths[i])).join('  ').trimEnd();
  console.log('');
  console.log(line(columns));
  console.log(line(widths.map((w) => '-'.repeat(w))));
  for (const row of rows) console.log(line(columns.map((c) => row[c])));
  if (problems.length) {
    console.log('\nproblems:');
    for (const p of problems) console.log(`  - ${p}`);
  }
}

function machineFacts(): void {
  const cpu = cpus();
  console.log(`hookrelay bench — node ${process.version}, ${platform()} ${release()}, ${cpu.length} cpus (${cpu[0]?.model ?? '?'}), ${(totalmem() / 2 ** 30).toFixed(1)} GiB RAM`);
  const load = loadavg()[0];
  console.log(`load average (1 min) at start: ${load.toFixed(2)}${load > cpu.length * 0.5 ? ' — the machine is busy; numbers will be low and noisy' : ''}`);
  console.log(
    `SQLite synchronous=${cfg.synchronous} in ${tmpdir()}; --max-in-flight ${cfg.relayMaxInFlight}; endpoint maxInFlight ${cfg.endpointMaxInFlight}; ` +
      `backlog ${cfg.messages.toLocaleString('en-US')} msgs; accept concurrency ${cfg.acceptConcurrency}; payload ~1 KiB JSON; ` +
      `hookrelay's sockets per origin: ${HOOKRELAY_SOCKETS} (the ratios use the ceiling measured with as many)`,
  );
}

function describeCounters(c: StoreCounters, seconds: number): string {
  const avg = (a: number, b: number) => (b ? (a / b).toFixed(1) : '0');
  return (
    `${c.claims} claims (${rate(c.claims / seconds)}/s, avg ${avg(c.claimed, c.claims)} deliveries, avg ${avg(c.claimMs, c.claims)} ms), ` +
    `${c.completes} completion batches (avg ${avg(c.completed, c.completes)}), ` +
    `${c.nextDueAt} nextDueAt queries (avg ${avg(c.nextDueMs, c.nextDueAt)} ms, ${(c.nextDueMs / 1000).toFixed(1)} s total), ` +
    `${c.groupCommits} group commits (${rate(c.groupCommits / seconds)}/s, avg ${avg(c.groupWrites, c.groupCommits)} writes)`
  );
}

async function waitUntil(check: () => boolean, timeoutMs: number, pollMs = 20): Promise<number | null> {
  const deadline = now() + timeoutMs;
  while (now() < deadline) {
    if (check()) return now();
    await new Promise((r) => setTimeout(r, pollMs));
  }
  return null;
}

// ---- phases -----------------------------------------------------------------------------------

async function main(): Promise<void> {
  machineFacts();
  const watchdog = setTimeout(() => {
    problems.push(`the whole bench exceeded BENCH_MAX_SECONDS=${cfg.maxSeconds}; stopped early`);
    printTable();
    process.exit(2);
  }, cfg.maxSeconds * 1000);
  watchdog.unref();

  const receiver = await forkChild('./receiver.js');
  const loadgen = await forkChild('./loadgen.js');
  const receiverUrl = `http://127.0.0.1:${receiver.ready.port}`;
  const profiler = new PhaseProfiler(cfg.profileDir);
  const started = now();

  try {
    // 1. Ceiling: this process, bare undici, same receiver.
    const ceilings: CeilingResult[] = [];
    for (const inFlight of cfg.ceilingSeconds > 0 ? cfg.ceilingInFlight : []) {
      await receiver.call({ kind: 'reset' });
      const result = await ceiling(`${receiverUrl}/ceiling`, inFlight, cfg.ceilingSeconds);
      const seen = await receiver.call<{ count: number }>({ kind: 'stats' });
      ceilings.push(result);
      console.log(`ceiling ${inFlight} in flight: ${rate(result.perSecond)} req/s (${result.requests} ok, ${result.failed} failed, receiver saw ${seen.count})`);
      const note = inFlight === HOOKRELAY_SOCKETS ? '; the ceiling of the ratios below (as many sockets as hookrelay)' : '';
      rows.push({ metric: `ceiling: bare undici POST, ${inFlight} in flight`, hookrelay: '', ceiling: `${rate(result.perSecond)}/s`, ratio: '', target: '', notes: `${result.seconds.toFixed(1)} s, ${result.failed} failed${note}` });
    }
    // The ratio compares like with like: the bare loop with as many sockets as hookrelay opens to one origin.
    bestCeiling = ceilings.find((c) => c.inFlight === HOOKRELAY_SOCKETS)?.perSecond ?? Math.max(0, ...ceilings.map((c) => c.perSecond));

    // 2. The store alone, no HTTP: what the dispatcher's claim/complete cycle costs, and the nextDueAt query.
    if (cfg.storeOnly > 0) {
      const result = await storeOnly(cfg.storeOnly, cfg.synchronous as 'FULL' | 'NORMAL', [25, 256]);
      console.log(`store only: accept ${rate(result.acceptPerSecond)} msgs/s; nextDueAt ${ms(result.nextDueAtMs)} at a backlog of ${result.backlog}`);
      rows.push({ metric: 'store only: accept, no HTTP (msgs/s)', hookrelay: `${rate(result.acceptPerSecond)}/s`, ceiling: '', ratio: '', target: '', notes: `${result.backlog} msgs, 64 accepts per group commit` });
      for (const c of result.cycles) {
        console.log(`store only: claim+complete in batches of ${c.batch}: ${rate(c.perSecond)} deliveries/s, ${rate(c.cyclesPerSecond)} cycles/s, claim ${ms(c.claimMs)}, complete ${ms(c.completeMs)}`);
        rows.push({
          metric: `store only: claim+complete, batches of ${c.batch} (deliveries/s)`,
          hookrelay: `${rate(c.perSecond)}/s`,
          ceiling: '',
          ratio: '',
          target: `≥ ${rate(cfg.target)}/s ${c.perSecond >= cfg.target ? 'MET' : 'MISSED'}`,
          notes: `no HTTP; ${rate(c.cyclesPerSecond)} cycles/s, claim ${ms(c.claimMs)}, complete ${ms(c.completeMs)} per cycle`,
        });
      }
      rows.push({ metric: `store only: nextDueAt at a backlog of ${result.backlog}`, hookrelay: ms(result.nextDueAtMs), ceiling: '', ratio: '', target: '', notes: 'per call; the dispatcher calls it after every short claim' });
    }

    // 2a. Content filters at fan-out: 100 endpoints with a filter each against 100 without, in the store alone.
    if (cfg.filterMessages > 0) {
      const result = await filterFanOut(100, cfg.filterMessages, cfg.synchronous as 'FULL' | 'NORMAL');
      for (const r of result.rows) {
        const cost = r.plain / r.filtered;
        console.log(`content filters (${r.store}): ${rate(r.plain)} msgs/s to ${r.endpoints} plain endpoints, ${rate(r.filtered)} msgs/s to ${r.endpoints} filtered ones (${cost.toFixed(2)}× the cost)`);
        rows.push({
          metric: `content filters (${r.store}): accept fanning out to ${r.endpoints} filtered endpoints (msgs/s)`,
          hookrelay: `${rate(r.filtered)}/s`,
          ceiling: `${rate(r.plain)}/s`,
          ratio: `${cost.toFixed(2)}× cost`,
          target: `≤ 2× ${cost <= 2 ? 'MET' : 'MISSED'}`,
          notes: `ceiling column: the same ${r.endpoints} endpoints without filters; every filter matches (same deliveries written)`,
        });
      }
      problems.push(...result.problems);
    }

    const acceptCall = (br: BenchRelay, appId: string, extra: Partial<AcceptCall>): Call =>
      ({ kind: 'accept', url: br.url, token: br.token, appId, concurrency: cfg.acceptConcurrency, timeoutMs: cfg.phaseTimeoutMs, ...extra }) as unknown as Call;

    // 2d. Transformations: deliveries/s to one endpoint without, then with, a JavaScript transformation.
    if (cfg.transformMessages > 0) {
      const result = await transformPhase({
        messages: cfg.transformMessages,
        receiverUrl,
        receiver: receiver.call,
        loadgen: loadgen.call,
        acceptCall: (br, appId, extra) => acceptCall(br, appId, extra),
        flags: relayFlags,
        timeoutMs: cfg.phaseTimeoutMs,
      });
      const plain = result.rows.find((r) => r.label === 'plain');
      const transformed = result.rows.find((r) => r.label === 'transformed');
      for (const r of result.rows) console.log(`transformations (${r.label}): ${r.deliveries} deliveries at ${rate(r.perSecond)}/s`);
      if (plain && transformed) {
        rows.push({
          metric: 'transformed deliveries, 1 endpoint (deliveries/s)',
          hookrelay: `${rate(transformed.perSecond)}/s`,
          ceiling: `${rate(plain.perSecond)}/s`,
          ratio: `${(transformed.perSecond / plain.perSecond).toFixed(2)}×`,
          target: '',
          notes: 'ceiling column: the same endpoint without a transformation; a fresh QuickJS runtime per delivery, 2 sandbox threads',
        });
      }
      problems.push(...result.problems);
    }

    // 2e. Ordering keys: deliveries/s to one endpoint ordered by key against the same messages unordered.
    if (cfg.orderingMessages > 0) {
      const result = await orderingPhase({
        messages: cfg.orderingMessages,
        keys: cfg.orderingKeys,
        receiverUrl,
        receiver: receiver.call,
        loadgen: loadgen.call,
        acceptCall: (br, appId, extra) => acceptCall(br, appId, extra),
        flags: relayFlags,
        maxInFlight: cfg.endpointMaxInFlight,
        timeoutMs: cfg.phaseTimeoutMs,
      });
      const [unordered, ordered] = result.rows;
      const ratio = ordered.perSecond / unordered.perSecond;
      console.log(
        `ordering keys: unordered ${rate(unordered.perSecond)} deliveries/s, ordered by ${cfg.orderingKeys} keys ${rate(ordered.perSecond)} deliveries/s ` +
          `(${(ratio * 100).toFixed(1)}% of unordered; mean of two runs each, ${cfg.orderingMessages} messages per run)`,
      );
      rows.push({
        metric: `ordered by ${cfg.orderingKeys.toLocaleString('en-US')} keys, 1 endpoint (deliveries/s)`,
        hookrelay: `${rate(ordered.perSecond)}/s`,
        ceiling: `${rate(unordered.perSecond)}/s`,
        ratio: `${(ratio * 100).toFixed(1)}%`,
        target: `≥ 80% ${ratio >= 0.8 ? 'MET' : 'MISSED'}`,
        notes: `ceiling column: the same messages to an unordered endpoint; endpoint maxInFlight ${cfg.endpointMaxInFlight}`,
      });
      problems.push(...result.problems);
    }

    /** Accepts a backlog with the dispatcher held, then starts it and times the drain as the receiver sees it. */
    const drain = async (label: string, endpoints: number, messages: number, then?: (br: BenchRelay, appId: string, counters: ReturnType<typeof countStoreCalls>) => Promise<void>) => {
      const br = await startBenchRelay(relayFlags);
      const counters = countStoreCalls(br.relay.store);
      try {
        const app = await br.api('POST', '/api/v1/app', { name: `bench ${label}`, uid: `bench-${endpoints}` });
        for (let i = 0; i < endpoints; i++) {
          await br.api('POST', `/api/v1/app/${app.id}/endpoint`, { url: `${receiverUrl}/e${i}`, maxInFlight: cfg.endpointMaxInFlight });
        }
        if (cfg.warmupMessages > 0) {
          // The same path once, unmeasured, as a relay that has been running would have it: compiled code (in both threads) and warm pools.
          await receiver.call({ kind: 'reset' });
          const warm = await loadgen.call<AcceptResult>(acceptCall(br, app.id, { count: cfg.warmupMessages, seqBase: 9e7 }));
          await receiver.call({ kind: 'waitFor', count: warm.ok * endpoints, timeoutMs: cfg.phaseTimeoutMs });
          await waitUntil(() => unfinished(br.db) === 0, cfg.phaseTimeoutMs);
        }
        const warmedUp = statusCounts(br.db).succeeded ?? 0;
        // Nothing is in flight now, so stopping loses nothing and start() resumes the same dispatcher.
        await br.relay.dispatcher.stop(0);
        await receiver.call({ kind: 'reset' });

        counters.reset();
        await profiler.start();
        const acceptCpu0 = process.cpuUsage();
        const accepted = await loadgen.call<AcceptResult>(acceptCall(br, app.id, { count: messages }));
        const acceptCpu = process.cpuUsage(acceptCpu0);
        await profiler.stop(`accept-${label}`);
        const cpuPerAccept = (acceptCpu.user + acceptCpu.system) / Math.max(1, accepted.ok);
        const acceptSeconds = (accepted.finishedAt - accepted.startedAt) / 1000;
        const acceptCounters = counters.read();
        const acceptRate = accepted.ok / acceptSeconds;
        console.log(`accept ${label}: ${accepted.ok} in ${acceptSeconds.toFixed(2)} s = ${rate(acceptRate)} msgs/s, ${lat(accepted.latencyMs)}, ${accepted.failed} failed ${accepted.failures.join(' | ')}`);
        console.log(`  store during the accept: ${acceptCounters.groupCommits} group commits (${rate(acceptCounters.groupCommits / acceptSeconds)}/s, avg ${(acceptCounters.groupWrites / Math.max(1, acceptCounters.groupCommits)).toFixed(1)} writes)`);
        rows.push({
          metric: `accept backlog, ${endpoints} endpoint${endpoints > 1 ? 's' : ''} (msgs/s)`,
          hookrelay: `${rate(acceptRate)}/s`,
          ceiling: '',
          ratio: '',
          target: '',
          notes: `${accepted.ok} msgs, ${cfg.acceptConcurrency} in flight, ${lat(accepted.latencyMs)}${accepted.failed ? `, ${accepted.failed} FAILED` : ''}`,
        });
        rows.push({
          metric: `hookrelay CPU per accepted message, ${endpoints} endpoint${endpoints > 1 ? 's' : ''}`,
          hookrelay: `${cpuPerAccept.toFixed(1)} µs`,
          ceiling: '',
          ratio: '',
          target: '',
          notes: `user ${(acceptCpu.user / 1000).toFixed(0)} ms + system ${(acceptCpu.system / 1000).toFixed(0)} ms of this process (HTTP, validation, group commit; the clients run in another)`,
        });
        const early = await receiver.call<{ count: number }>({ kind: 'stats' });
        if (early.count > 0) problems.push(`${label}: ${early.count} deliveries arrived while the dispatcher was held`);

        const deliveries = accepted.ok * endpoints;
        await receiver.call({ kind: 'reset' });
        counters.reset();
        await profiler.start();
        const t0 = now();
        const cpu0 = process.cpuUsage();
        br.relay.dispatcher.start();
        const seen = await receiver.call<{ count: number; firstAt: number; lastAt: number; reached: boolean }>({ kind: 'waitFor', count: deliveries, timeoutMs: cfg.phaseTimeoutMs });
        const recordedAt = await waitUntil(() => unfinished(br.db) === 0, cfg.phaseTimeoutMs);
        const cpu = process.cpuUsage(cpu0);
        await profiler.stop(`drain-${label}`);
        // This process runs hookrelay alone (receiver and load generator are children): its CPU is hookrelay's.
        const cpuPerDelivery = (cpu.user + cpu.system) / Math.max(1, seen.count);
        const drainSeconds = (seen.lastAt - t0) / 1000;
        const perSecond = seen.count / drainSeconds;
        const counts = statusCounts(br.db);
        const recordedSeconds = recordedAt === null ? NaN : (recordedAt - t0) / 1000;
        console.log(
          `drain ${label}: receiver saw ${seen.count}/${deliveries} in ${drainSeconds.toFixed(2)} s = ${rate(perSecond)} deliveries/s; ` +
            `first receipt after ${ms(seen.firstAt - t0)}; all outcomes recorded after ${recordedSeconds.toFixed(2)} s; statuses ${JSON.stringify(counts)}${warmedUp ? ` (${warmedUp} succeeded in the warm-up)` : ''}`,
        );
        console.log(`  dispatcher store calls during the drain: ${describeCounters(counters.read(), recordedSeconds)}`);
        if (!seen.reached) problems.push(`${label}: drain timed out with ${seen.count}/${deliveries} received`);
        const succeeded = (counts.succeeded ?? 0) - warmedUp;
        if (succeeded !== deliveries) problems.push(`${label}: ${succeeded}/${deliveries} deliveries recorded as succeeded`);
        deliveryRow(
          `drain, ${endpoints} endpoint${endpoints > 1 ? 's' : ''} (deliveries/s)`,
          perSecond,
          `${seen.count} deliveries in ${drainSeconds.toFixed(2)} s; all recorded after ${recordedSeconds.toFixed(2)} s (${rate(seen.count / recordedSeconds)}/s)`,
          endpoints > 1 ? 15_000 : 10_000,
          endpoints > 1 ? 0 : 0.3,
        );
        rows.push({
          metric: `hookrelay CPU per delivery, drain to ${endpoints} endpoint${endpoints > 1 ? 's' : ''}`,
          hookrelay: `${cpuPerDelivery.toFixed(1)} µs`,
          ceiling: '',
          ratio: '',
          target: `≤ 80 µs ${cpuPerDelivery <= 80 ? 'MET' : 'MISSED'}`,
          notes: `user ${(cpu.user / 1000).toFixed(0)} ms + system ${(cpu.system / 1000).toFixed(0)} ms of this process (hookrelay; receiver and load generator run in others)`,
        });
        if (then) await then(br, app.id, counters);
      } finally {
        await br.close();
      }
    };

    /** A paced run against a relay that has drained: the accept→first attempt row (with the issue's target at 10 endpoints). */
    const latencyRow = async (br: BenchRelay, appId: string, counters: ReturnType<typeof countStoreCalls>, paced: number, endpoints: number, seqBase: number) => {
      counters.reset();
      await profiler.start();
      const run = await pacedLatency({ loadgen: loadgen.call, receiver: receiver.call, url: br.url, token: br.token, appId, rate: paced, seconds: cfg.latencySeconds, endpoints, seqBase, timeoutMs: cfg.phaseTimeoutMs });
      await profiler.stop(`latency-${paced}-${endpoints}ep`);
      const { accepted, delay } = run;
      const label = `${endpoints}ep`;
      console.log(`latency ${label} at ${rate(run.offered)} msgs/s: POST→receipt ${lat(delay)}; POST→202 ${lat(accepted.latencyMs)}; ${run.missing} missing, ${run.duplicates} duplicates`);
      console.log(`  store calls: ${describeCounters(counters.read(), (accepted.finishedAt - accepted.startedAt) / 1000)}`);
      if (run.missing) problems.push(`latency ${label} at ${paced}/s: ${run.missing} of ${accepted.ok * endpoints} deliveries never reached the receiver`);
      if (accepted.failed) problems.push(`latency ${label} at ${paced}/s: ${accepted.failed} accepts failed: ${accepted.failures.join(' | ')}`);
      const target = endpoints >= 10 && paced >= 1000 ? `p99 ≤ 50 ms ${delay.p99 <= 50 ? 'MET' : 'MISSED'}` : '';
      rows.push({
        metric: `accept→first attempt p50 / p99, ${rate(paced)} msgs/s paced, ${endpoints} endpoint${endpoints > 1 ? 's' : ''}`,
        hookrelay: `${ms(delay.p50)} / ${ms(delay.p99)}`,
        ceiling: '',
        ratio: '',
        target,
        notes: `max ${ms(delay.max)} (POST sent → receiver got it, ${delay.count} deliveries, ${rate(run.offered * endpoints)}/s); POST→202 p50 ${ms(accepted.latencyMs.p50)}, p99 ${ms(accepted.latencyMs.p99)}`,
      });
      await waitUntil(() => unfinished(br.db) === 0, cfg.phaseTimeoutMs);
    };

    // 2a. One endpoint: drain, then continuous accept+deliver, then latency at a moderate paced rate.
    if (cfg.messages > 0) await drain('1ep', 1, cfg.messages, async (br, appId, counters) => {
      if (cfg.continuousMessages > 0) {
        await receiver.call({ kind: 'reset' });
        counters.reset();
        await profiler.start();
        const [accepted, seen] = await Promise.all([
          loadgen.call<AcceptResult>(acceptCall(br, appId, { count: cfg.continuousMessages, seqBase: 1e7 })),
          receiver.call<{ count: number; firstAt: number; lastAt: number; reached: boolean }>({ kind: 'waitFor', count: cfg.continuousMessages, timeoutMs: cfg.phaseTimeoutMs }),
        ]);
        await profiler.stop('mixed-1ep');
        const acceptRate = accepted.ok / ((accepted.finishedAt - accepted.startedAt) / 1000);
        const deliverRate = seen.count / ((seen.lastAt - seen.firstAt) / 1000);
        const endToEnd = seen.count / ((seen.lastAt - accepted.startedAt) / 1000);
        console.log(
          `continuous 1ep: accepted ${accepted.ok} at ${rate(acceptRate)} msgs/s (${lat(accepted.latencyMs)}); receiver saw ${seen.count} at ${rate(deliverRate)}/s first→last; ` +
            `${rate(endToEnd)}/s first send→last receipt`,
        );
        console.log(`  store calls: ${describeCounters(counters.read(), (seen.lastAt - accepted.startedAt) / 1000)}`);
        if (!seen.reached) problems.push(`continuous: ${seen.count}/${cfg.continuousMessages} received before the timeout`);
        deliveryRow('accept+deliver at once, 1 endpoint (deliveries/s)', deliverRate, `accepting ${rate(acceptRate)} msgs/s meanwhile (${lat(accepted.latencyMs)}); first send→last receipt ${rate(endToEnd)}/s`);
        await waitUntil(() => unfinished(br.db) === 0, cfg.phaseTimeoutMs);
      }

      for (const paced of cfg.latencyRates) {
        if (cfg.latencySeconds <= 0 || paced <= 0) break;
        await latencyRow(br, appId, counters, paced, 1, 2e7 + paced * 1e4);
      }
    });

    // 2b. Fan-out: the same number of deliveries spread over several endpoints,
    // then the issue's latency figure: 1,000 msgs/s offered to ten endpoints.
    if (cfg.messages > 0 && cfg.fanout > 1) {
      await drain(`${cfg.fanout}ep`, cfg.fanout, Math.ceil(cfg.messages / cfg.fanout), async (br, appId, counters) => {
        for (const paced of cfg.fanoutLatencyRates) {
          if (cfg.latencySeconds <= 0 || paced <= 0) break;
          await latencyRow(br, appId, counters, paced, cfg.fanout, 3e7 + paced * 1e4);
        }
      });
    }

    // 2c. Fault isolation: healthy endpoints' latency alone, then beside as many hanging/timing-out/resetting/failing ones.
    if (cfg.faultSeconds > 0) {
      const result = await faultPhase({
        loadgen: loadgen.call,
        receiver: receiver.call,
        receiverUrl,
        flags: relayFlags,
        half: 25,
        rate: cfg.faultRate,
        seconds: cfg.faultSeconds,
        acceptConcurrency: cfg.acceptConcurrency,
        timeoutMs: cfg.phaseTimeoutMs,
      });
      rows.push(...result.rows);
      problems.push(...result.problems);
    }

    // 3. Ingest: verified provider requests with a durable ack, beside a bare node:http server answering 200.
    if (cfg.ingestRequests > 0) rows.push(...(await ingestPhase(loadgen.call, cfg.ingestRequests, cfg.acceptConcurrency, cfg.phaseTimeoutMs, cfg.warmupMessages, profiler, cfg.ingestRounds)));

    // 3b. Broker sources: records/s a source consumes from each installed broker into the store.
    if (cfg.brokerSourceRecords > 0) {
      const result = await brokersInPhase({ records: cfg.brokerSourceRecords, flags: relayFlags, timeoutMs: cfg.phaseTimeoutMs });
      rows.push(...result.rows);
      problems.push(...result.problems);
    }

    // 4. Real processes: SQLite's one, then 1, 2 and 3 on one PostgreSQL database (accept, then drain).
    if (cfg.processMessages > 0) {
      const result = await processesPhase({
        receiverUrl,
        receiver: receiver.call,
        loadgen: loadgen.call,
        messages: cfg.processMessages,
        processCounts: cfg.processCounts,
        latencyRate: cfg.pgLatencyRate,
        latencySeconds: cfg.latencySeconds,
        concurrency: cfg.acceptConcurrency,
        timeoutMs: cfg.phaseTimeoutMs,
      });
      rows.push(...result.rows);
      problems.push(...result.problems);
    }

    // 5. Broker destinations: deliveries/s to Redis, NATS, Kafka and RabbitMQ beside each client library's own loop.
    if (cfg.brokerMessages > 0) {
      const result = await brokerPhase({
        messages: cfg.brokerMessages,
        concurrency: Math.max(1, cfg.brokerConcurrency),
        brokers: cfg.brokers,
        loadgen: loadgen.call,
        acceptCall: (br, appId, extra) => acceptCall(br, appId, extra),
        flags: relayFlags,
        timeoutMs: cfg.phaseTimeoutMs,
      });
      rows.push(...result.rows);
      problems.push(...result.problems);
    }

    // 6. Memory as the backlog grows (last: it writes a database of more than a gigabyte).
    if (cfg.memoryMessages > 0) {
      const result = await memoryPhase({ receiver: receiver.call, receiverUrl, flags: relayFlags, messages: cfg.memoryMessages, deliverSeconds: 3 });
      rows.push(...result.rows);
      problems.push(...result.problems);
    }
  } finally {
    receiver.process.kill();
    loadgen.process.kill();
  }
  printTable();
  console.log(`\nbench took ${((now() - started) / 1000).toFixed(1)} s; load average (1 min) at the end: ${loadavg()[0].toFixed(2)}`);
  if (cfg.profileDir) console.log(`CPU profiles in ${cfg.profileDir} (summarize: node dist/bench/profile-summary.js <file>)`);
}

main().catch((error) => {
  console.error(error);
  printTable();
  process.exit(1);
});
