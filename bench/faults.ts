import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { RawSettings } from '../src/config.js';
import type { FaultKind } from './faulty.js';
import type { AcceptResult } from './loadgen.js';
import { startBenchRelay } from './relay.js';
import type { Row } from './run.js';
import { rpcClient, summarize, type Call, type LatencySummary } from './shared.js';

type Caller = <T>(call: Call) => Promise<T>;

export interface FaultPhaseOptions {
  loadgen: Caller;
  receiver: Caller;
  receiverUrl: string;
  flags: RawSettings;
  /** Healthy endpoints measured; as many others (healthy, then faulty) take the same load beside them. */
  half: number;
  /** Messages per second to each app (every message fans out to all of its endpoints). */
  rate: number;
  seconds: number;
  acceptConcurrency: number;
  timeoutMs: number;
}

const FAULTS: FaultKind[] = ['hang', 'slow', 'reset', 'error'];
/** Short enough that the hanging endpoints' first attempts time out (and their circuits open) within the run. */
const DELIVERY_TIMEOUT = '5s';

const ms = (n: number) => (Number.isFinite(n) ? `${n < 10 ? n.toFixed(2) : n.toFixed(1)} ms` : 'n/a');
const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);

/**
 * Fault isolation: the accept→delivery latency of healthy endpoints (1) alone, (2) beside as many healthy endpoints
 * taking the same load, (3) beside as many faulty ones (hanging, answering after the timeout, resetting the connection,
 * answering 500) taking the same load. (2) and (3) differ only in how the other half behaves. The other half's
 * receivers run in their own process, one origin each, like other customers' hosts.
 */
export async function faultPhase(o: FaultPhaseOptions): Promise<{ rows: Row[]; problems: string[] }> {
  const child = fork(fileURLToPath(new URL('./faulty.js', import.meta.url)), [], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  await new Promise((resolve, reject) => {
    child.once('message', resolve);
    child.once('exit', (code) => reject(new Error(`faulty.js exited (${code}) before it was ready`)));
  });
  const others = rpcClient(child);
  const problems: string[] = [];
  try {
    const faultKinds = Array.from({ length: o.half }, (_, i) => FAULTS[i % FAULTS.length]);
    const { ports } = await others<{ ports: number[] }>({ kind: 'listen', kinds: [...faultKinds, ...faultKinds.map(() => 'ok')] });
    const br = await startBenchRelay({ ...o.flags, deliveryTimeout: DELIVERY_TIMEOUT });
    try {
      const app = async (name: string, urls: string[]) => {
        const created = await br.api('POST', '/api/v1/app', { name });
        // Default settings: maxInFlight per endpoint, breaker threshold and cool-down as hookrelay ships them.
        for (const url of urls) await br.api('POST', `/api/v1/app/${created.id}/endpoint`, { url });
        return created.id as string;
      };
      const measured = await app('bench faults: measured', Array.from({ length: o.half }, (_, i) => `${o.receiverUrl}/h${i}`));
      const faulty = await app('bench faults: faulty', ports.slice(0, o.half).map((port) => `http://127.0.0.1:${port}/hook`));
      const twin = await app('bench faults: healthy twin', ports.slice(o.half).map((port) => `http://127.0.0.1:${port}/hook`));
      const count = Math.round(o.rate * o.seconds);

      const run = async (label: string, beside: string | null, seqBase: number) => {
        await o.receiver({ kind: 'reset', record: true, perPath: true });
        const accept = (appId: string, base: number, recordIds: boolean) =>
          o.loadgen<AcceptResult>({
            kind: 'accept',
            url: br.url,
            token: br.token,
            appId,
            count,
            rate: o.rate,
            concurrency: o.acceptConcurrency,
            recordIds,
            seqBase: base,
            timeoutMs: o.timeoutMs,
          });
        const [healthy, other] = await Promise.all([accept(measured, seqBase, true), beside ? accept(beside, seqBase + 5e5, false) : null]);
        const seen = await o.receiver<{ reached: boolean }>({ kind: 'waitFor', count: healthy.ok * o.half, timeoutMs: 20_000 });
        const { arrivals } = await o.receiver<{ arrivals: [string, number][] }>({ kind: 'stats', arrivals: true });
        const arrivedAt = new Map(arrivals);
        const delays: number[] = [];
        let missing = 0;
        for (const [id, sentAt] of healthy.sends ?? []) {
          for (let i = 0; i < o.half; i++) {
            const at = arrivedAt.get(`/h${i} ${id}`);
            if (at === undefined) missing++;
            else delays.push(at - sentAt);
          }
        }
        if (!seen.reached || missing > 0) problems.push(`faults ${label}: ${missing} healthy deliveries never arrived`);
        if (healthy.failed || (other && other.failed)) problems.push(`faults ${label}: ${healthy.failed + (other?.failed ?? 0)} accepts failed`);
        const latency = summarize(delays);
        console.log(
          `faults, ${label}: accept→delivery p50 ${ms(latency.p50)}, p99 ${ms(latency.p99)}, max ${ms(latency.max)} over ${latency.count} deliveries; ` +
            `POST→202 p50 ${ms(healthy.latencyMs.p50)}, p99 ${ms(healthy.latencyMs.p99)}`,
        );
        return { latency, accepted: healthy, other };
      };

      const alone = await run(`${o.half} healthy endpoints alone`, null, 3e7);
      const besideHealthy = await run(`beside ${o.half} more healthy ones`, twin, 4e7);
      const beforeFaulty = (await others<{ requests: number[] }>({ kind: 'stats' })).requests.slice(0, o.half);
      const besideFaulty = await run(`beside ${o.half} faulty ones`, faulty, 5e7);
      const requests = (await others<{ requests: number[] }>({ kind: 'stats' })).requests.slice(0, o.half).map((n, i) => n - beforeFaulty[i]);
      const open = (br.db.prepare('SELECT count(*) AS n FROM endpoint WHERE app_id = ? AND circuit_open_until IS NOT NULL').get(faulty) as { n: number }).n;
      const offered = (besideFaulty.other?.ok ?? 0) * o.half;
      const byKind = FAULTS.map((kind) => `${kind} ${sum(requests.filter((_, i) => faultKinds[i] === kind))}`).join(', ');
      console.log(
        `faults: the faulty half (--delivery-timeout ${DELIVERY_TIMEOUT}) got ${sum(requests)} requests (${byKind}) for ${offered} deliveries offered; ` +
          `circuit open on ${open}/${o.half}`,
      );
      const row = (metric: string, run: { latency: LatencySummary; accepted: AcceptResult }, notes: string): Row => ({
        metric,
        hookrelay: `${ms(run.latency.p50)} / ${ms(run.latency.p99)}`,
        ceiling: '',
        ratio: '',
        target: '',
        notes: `${notes}; max ${ms(run.latency.max)}; POST→202 p50 ${ms(run.accepted.latencyMs.p50)}, p99 ${ms(run.accepted.latencyMs.p99)}`,
      });
      return {
        rows: [
          row(`faults: accept→delivery p50 / p99, ${o.half} healthy endpoints alone`, alone, `${o.rate} msgs/s × ${o.half} endpoints for ${o.seconds} s`),
          row(`faults: same, beside ${o.half} healthy endpoints`, besideHealthy, `the other ${o.half} take the same load`),
          row(
            `faults: same, beside ${o.half} faulty endpoints`,
            besideFaulty,
            `${FAULTS.join('/')}, same load; ${sum(requests)} requests reached them for ${offered} deliveries; circuit open on ${open}/${o.half}`,
          ),
        ],
        problems,
      };
    } finally {
      await br.close();
    }
  } finally {
    child.kill();
  }
}
