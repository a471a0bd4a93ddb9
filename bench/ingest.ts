import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AcceptResult, IngestCall } from './loadgen.js';
import { startBenchRelay } from './relay.js';
import type { Row } from './run.js';
import type { Call } from './shared.js';
import type { PhaseProfiler } from './profile.js';

type Caller = <T>(call: Call) => Promise<T>;

const perSecond = (r: AcceptResult) => r.ok / ((r.finishedAt - r.startedAt) / 1000);
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const cpuPerRequest = (cpu: NodeJS.CpuUsage, requests: number) => (cpu.user + cpu.system) / Math.max(1, requests);

/** One measured round: the rate, the latency tail and the serving process's CPU per answered request. */
interface Round {
  bare: { rate: number; p99: number; cpu: number };
  relay: { rate: number; p50: number; p99: number; cpu: number; failed: number; failures: string[] };
  ratio: number;
}

const median = <T>(items: T[], by: (item: T) => number): T => [...items].sort((a, b) => by(a) - by(b))[Math.floor((items.length - 1) / 2)];

/**
 * Ingest throughput: the same signed GitHub-style load against (1) a bare node:http server in this process that reads
 * the body and answers 200, and (2) a hookrelay source that verifies, dedupes, commits (synchronous=FULL) and answers
 * 200 with the message id. No endpoint is attached, so the figure is the front door alone. Both are measured warm, in
 * `rounds` alternating rounds (bare then hookrelay, then hookrelay then bare, …): this host's speed drifts by ±10 %
 * within seconds, and a ceiling measured once, before or after, moves the ratio with it. The row gives the round of
 * median ratio, and every round's ratio beside it. The relay is up during the bare rounds too (idle, with nothing to
 * deliver), so both are measured in the same process state.
 */
export async function ingestPhase(call: Caller, requests: number, concurrency: number, timeoutMs: number, warmup: number, profiler?: PhaseProfiler, rounds = 3): Promise<Row[]> {
  const bare = createServer((req, res) => {
    req.on('data', () => {});
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"ok":true}');
    });
  });
  await new Promise<void>((resolve) => bare.listen(0, '127.0.0.1', resolve));
  const bareUrl = `http://127.0.0.1:${(bare.address() as AddressInfo).port}/ingest/bare`;
  const load = (url: string, secret: string, seqBase: number, count = requests): IngestCall => ({ kind: 'ingest', url, secret, count, concurrency, seqBase, timeoutMs });
  // Each server, and the generator, first serves `warmup` requests unmeasured: both sides compiled, sockets open.
  const warm = async (url: string, secret: string, seqBase: number) => {
    if (warmup > 0) await call({ ...load(url, secret, seqBase, warmup) } as unknown as Call);
  };
  const br = await startBenchRelay({});
  try {
    const source = await br.api('POST', '/ingest/api/v1/source', { name: 'bench', type: 'github', config: { secret: 'bench-secret' } });
    await warm(bareUrl, 'bench-secret', 5e8);
    await warm(source.ingestUrl, 'bench-secret', 6e8);
    const measure = async (url: string, seqBase: number) => {
      const cpu0 = process.cpuUsage();
      const result = await call<AcceptResult>({ ...load(url, 'bench-secret', seqBase) } as unknown as Call);
      return { result, cpu: cpuPerRequest(process.cpuUsage(cpu0), result.ok) };
    };
    const measured: Round[] = [];
    for (let round = 0; round < Math.max(1, rounds); round++) {
      // Every hookrelay round posts delivery ids of its own: none is a redelivery of an earlier round's.
      const relayRound = async () => {
        if (round === 0) await profiler?.start();
        const relay = await measure(source.ingestUrl, 1e8 + round * 1e7);
        if (round === 0) await profiler?.stop('ingest');
        return relay;
      };
      const bareRound = () => measure(bareUrl, round * 1e7);
      const [b, r] = round % 2 === 0 ? [await bareRound(), await relayRound()] : await relayRound().then(async (r) => [await bareRound(), r] as const);
      const one: Round = {
        bare: { rate: perSecond(b.result), p99: b.result.latencyMs.p99, cpu: b.cpu },
        relay: { rate: perSecond(r.result), p50: r.result.latencyMs.p50, p99: r.result.latencyMs.p99, cpu: r.cpu, failed: r.result.failed, failures: r.result.failures },
        ratio: perSecond(r.result) / perSecond(b.result),
      };
      measured.push(one);
      console.log(
        `ingest round ${round + 1}: bare ${fmt(one.bare.rate)} req/s (p99 ${one.bare.p99.toFixed(1)} ms, ${one.bare.cpu.toFixed(1)} µs CPU each), ` +
          `hookrelay ${fmt(one.relay.rate)} req/s (p99 ${one.relay.p99.toFixed(1)} ms, ${one.relay.cpu.toFixed(1)} µs CPU each), ${(one.ratio * 100).toFixed(1)} %, ${one.relay.failed} failed`,
      );
      if (one.relay.failures.length) console.log(`  failures: ${one.relay.failures.join('; ')}`);
    }
    const mid = median(measured, (m) => m.ratio);
    const byCpu = median(measured, (m) => m.bare.cpu / m.relay.cpu);
    const each = measured.map((m) => `${(m.ratio * 100).toFixed(1)}%`).join(', ');
    return [
      {
        metric: 'ingest: verified GitHub requests, durable 200',
        hookrelay: `${fmt(mid.relay.rate)}/s`,
        ceiling: `${fmt(mid.bare.rate)}/s`,
        ratio: `${(mid.ratio * 100).toFixed(1)}%`,
        target: `≥ 10,000/s ${mid.relay.rate >= 10_000 ? 'MET' : 'MISSED'}, ≥ 50% ${mid.ratio >= 0.5 ? 'MET' : 'MISSED'}`,
        notes:
          `round of median ratio of ${measured.length} alternating rounds (${each}); ${requests} requests per server and round after ${warmup} unmeasured, ${concurrency} in flight; ` +
          `p50 ${mid.relay.p50.toFixed(1)} ms, p99 ${mid.relay.p99.toFixed(1)} ms (bare p99 ${mid.bare.p99.toFixed(1)} ms); ceiling = bare node:http answering 200`,
      },
      {
        metric: 'ingest: server CPU per request',
        hookrelay: `${byCpu.relay.cpu.toFixed(1)} µs`,
        ceiling: `${byCpu.bare.cpu.toFixed(1)} µs`,
        ratio: `${((byCpu.bare.cpu / byCpu.relay.cpu) * 100).toFixed(1)}%`,
        target: '',
        notes: 'CPU of the process serving (hookrelay, or the bare server), per answered request, round of median CPU ratio; the load-independent view of the ratio above',
      },
    ];
  } finally {
    await br.close();
    await new Promise<void>((resolve) => bare.close(() => resolve()));
  }
}
