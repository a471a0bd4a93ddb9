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

/**
 * Ingest throughput: the same signed GitHub-style load against (1) a bare node:http server in this process that reads
 * the body and answers 200, and (2) a hookrelay source that verifies, dedupes, commits (synchronous=FULL) and answers
 * 200 with the message id. No endpoint is attached, so the figure is the front door alone. Both are measured warm.
 */
export async function ingestPhase(call: Caller, requests: number, concurrency: number, timeoutMs: number, warmup: number, profiler?: PhaseProfiler): Promise<Row[]> {
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
  await warm(bareUrl, 'bench-secret', 5e8);
  const bareCpu0 = process.cpuUsage();
  const baseline = await call<AcceptResult>({ ...load(bareUrl, 'bench-secret', 0) } as unknown as Call);
  const bareCpu = cpuPerRequest(process.cpuUsage(bareCpu0), baseline.ok);
  await new Promise<void>((resolve) => bare.close(() => resolve()));

  const br = await startBenchRelay({});
  try {
    const source = await br.api('POST', '/ingest/api/v1/source', { name: 'bench', type: 'github', config: { secret: 'bench-secret' } });
    await warm(source.ingestUrl, 'bench-secret', 6e8);
    await profiler?.start();
    const cpu0 = process.cpuUsage();
    const result = await call<AcceptResult>({ ...load(source.ingestUrl, 'bench-secret', 1e8) } as unknown as Call);
    const cpu = cpuPerRequest(process.cpuUsage(cpu0), result.ok);
    await profiler?.stop('ingest');
    const ratio = perSecond(result) / perSecond(baseline);
    console.log(
      `ingest: bare ${fmt(perSecond(baseline))} req/s (p99 ${baseline.latencyMs.p99.toFixed(1)} ms, ${bareCpu.toFixed(1)} µs CPU each), ` +
        `hookrelay ${fmt(perSecond(result))} req/s (p99 ${result.latencyMs.p99.toFixed(1)} ms, ${cpu.toFixed(1)} µs CPU each), ${result.failed} failed`,
    );
    if (result.failures.length) console.log(`  failures: ${result.failures.join('; ')}`);
    return [
      {
        metric: 'ingest: verified GitHub requests, durable 200',
        hookrelay: `${fmt(perSecond(result))}/s`,
        ceiling: `${fmt(perSecond(baseline))}/s`,
        ratio: `${(ratio * 100).toFixed(1)}%`,
        target: `≥ 10,000/s ${perSecond(result) >= 10_000 ? 'MET' : 'MISSED'}, ≥ 50% ${ratio >= 0.5 ? 'MET' : 'MISSED'}`,
        notes: `${requests} requests after ${warmup} unmeasured, ${concurrency} in flight; p50 ${result.latencyMs.p50.toFixed(1)} ms, p99 ${result.latencyMs.p99.toFixed(1)} ms (bare p99 ${baseline.latencyMs.p99.toFixed(1)} ms); ceiling = bare node:http answering 200`,
      },
      {
        metric: 'ingest: server CPU per request',
        hookrelay: `${cpu.toFixed(1)} µs`,
        ceiling: `${bareCpu.toFixed(1)} µs`,
        ratio: `${(bareCpu / cpu * 100).toFixed(1)}%`,
        target: '',
        notes: 'CPU of the process serving (hookrelay, or the bare server), per answered request; the load-independent view of the ratio above',
      },
    ];
  } finally {
    await br.close();
  }
}
