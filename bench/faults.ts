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
  /** Healthy endpoints; as many faulty ones are added beside them. */
  half: number;
  /** Messages per second to each app (every message fans out to all of its endpoints). */
  rate: number;
  seconds: number;
  acceptConcurrency: number;
  timeoutMs: number;
}

const KINDS: FaultKind[] = ['hang', 'slow', 'reset', 'error'];
/** Short enough that the hanging endpoints' first attempts time out (and their circuits open) within the run. */
const DELIVERY_TIMEOUT = '5s';

const ms = (n: number) => (Number.isFinite(n) ? `${n < 10 ? n.toFixed(2) : n.toFixed(1)} ms` : 'n/a');

/**
 * Fault isolation: healthy endpoints' accept→delivery latency, first alone, then with as many faulty endpoints beside
 * them (hanging, answering after the timeout, resetting the connection, answering 500) taking the same paced load. The
 * faulty receivers run in their own process, one origin each, like other customers' hosts.
 */
export async function faultPhase(o: FaultPhaseOptions): Promise<{ rows: Row[]; problems: string[] }> {
  const child = fork(fileURLToPath(new URL('./faulty.js', import.meta.url)), [], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  await new Promise((resolve, reject) => {
    child.once('message', resolve);
    child.once('exit', (code) => reject(new Error(`faulty.js exited (${code}) before it was ready`)));
  });
  const faulty = rpcClient(child);
  const problems: string[] = [];
  try {
    const kinds = Array.from({ length: o.half }, (_, i) => KINDS[i % KINDS.length]);
    const { ports } = await faulty<{ ports: number[] }>({ kind: 'listen', kinds });
    const br = await startBenchRelay({ ...o.flags, deliveryTimeout: DELIVERY_TIMEOUT });
    try {
      const healthyApp = await br.api('POST', '/api/v1/app', { name: 'bench faults: healthy' });
      const faultyApp = await br.api('POST', '/api/v1/app', { name: 'bench faults: faulty' });
      // Default settings: maxInFlight per endpoint, breaker threshold and cool-down as hookrelay ships them.
      for (let i = 0; i < o.half; i++) await br.api('POST', `/api/v1/app/${healthyApp.id}/endpoint`, { url: `${o.receiverUrl}/h${i}` });
      for (const port of ports) await br.api('POST', `/api/v1/app/${faultyApp.id}/endpoint`, { url: `http://127.0.0.1:${port}/hook` });
      const count = Math.round(o.rate * o.seconds);

      const run = async (label: string, withFaulty: boolean, seqBase: number) => {
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
        const [healthy, bad] = await Promise.all([accept(healthyApp.id, seqBase, true), withFaulty ? accept(faultyApp.id, seqBase + 5e5, false) : null]);
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
        const latency = summarize(delays);
        if (!seen.reached || missing > 0) problems.push(`faults ${label}: ${missing} healthy deliveries never arrived`);
        if (healthy.failed || (bad && bad.failed)) problems.push(`faults ${label}: ${healthy.failed + (bad?.failed ?? 0)} accepts failed`);
        return { latency, healthy, bad };
      };

      const alone = await run('alone', false, 3e7);
      const mixed = await run('beside faulty', true, 4e7);
      const { requests } = await faulty<{ requests: number[] }>({ kind: 'stats' });
      const open = (br.db.prepare('SELECT count(*) AS n FROM endpoint WHERE app_id = ? AND circuit_open_until IS NOT NULL').get(faultyApp.id) as { n: number }).n;
      const offered = (mixed.bad?.ok ?? 0) * o.half;
      const attempts = requests.reduce((a, b) => a + b, 0);
      const byKind = KINDS.map((kind) => `${kind} ${requests.filter((_, i) => kinds[i] === kind).reduce((a, b) => a + b, 0)}`).join(', ');
      const describe = (l: LatencySummary) => `p50 ${ms(l.p50)}, p99 ${ms(l.p99)}, max ${ms(l.max)} over ${l.count} deliveries`;
      console.log(`faults: ${o.half} healthy endpoints alone at ${o.rate} msgs/s: accept→delivery ${describe(alone.latency)}`);
      console.log(
        `faults: beside ${o.half} faulty endpoints (${KINDS.join(', ')}; --delivery-timeout ${DELIVERY_TIMEOUT}): ${describe(mixed.latency)}; ` +
          `circuit open on ${open}/${o.half} faulty endpoints; the faulty servers got ${attempts} requests (${byKind}) for ${offered} deliveries offered`,
      );
      const row = (metric: string, l: LatencySummary, notes: string): Row => ({ metric, hookrelay: `${ms(l.p50)} / ${ms(l.p99)}`, ceiling: '', ratio: '', target: '', notes });
      return {
        rows: [
          row(`faults: accept→delivery p50 / p99, ${o.half} healthy endpoints alone`, alone.latency, `${o.rate} msgs/s × ${o.half} endpoints for ${o.seconds} s; max ${ms(alone.latency.max)}`),
          row(
            `faults: accept→delivery p50 / p99, same beside ${o.half} faulty`,
            mixed.latency,
            `faulty ones (${KINDS.join('/')}) get the same load; max ${ms(mixed.latency.max)}; breaker open on ${open}/${o.half}; ` +
              `${attempts} requests reached them for ${offered} deliveries`,
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
