import { existsSync } from 'node:fs';
import { loadavg } from 'node:os';
import amqp, { type Options } from 'amqplib';
import { Redis } from 'ioredis';
import { Kafka, logLevel } from 'kafkajs';
import { connect as natsConnect, headers as natsHeaders, type MsgHdrs } from 'nats';
import { newId } from '../src/domain/ids.js';
import { findBinary, findKafkaLibs, RABBITMQ_SERVER, startKafka, startNats, startRabbitmq, startRedis, type TestBroker } from '../test/helpers/brokers.js';
import type { AcceptResult } from './loadgen.js';
import { startBenchRelay, statusCounts, unfinished, type BenchRelay } from './relay.js';
import { benchPayload, now, type Call } from './shared.js';
import type { Row } from './run.js';

/**
 * The broker phase: for each broker destination, deliveries per second from hookrelay to a real server on loopback
 * beside the client library's own publish loop with the same acknowledgement and the same number in flight, one after
 * the other in the same run on the same server.
 *
 * hookrelay: a backlog of `messages` is accepted through the API (by the load generator process) with the dispatcher
 * held, then the dispatcher starts and the clock runs until every delivery is recorded as succeeded, i.e. every
 * publish was acknowledged by the broker and the outcome committed. The endpoint's maxInFlight is `concurrency`.
 *
 * Bare loop: the same library and settings hookrelay uses, `concurrency` publishes in flight on one connection, each
 * awaiting its acknowledgement; records (payload bytes, headers, ids) are built before the clock starts, so the loop
 * times the client and the broker only.
 */

export interface BrokerPhaseOptions {
  messages: number;
  concurrency: number;
  brokers: string[];
  loadgen: <T>(call: Call) => Promise<T>;
  acceptCall: (br: BenchRelay, appId: string, extra: { count: number }) => Call;
  flags: Record<string, string>;
  timeoutMs: number;
}

/** One record as hookrelay would publish it for a message of the bench's shape. */
interface BenchRecord {
  id: string;
  eventType: string;
  payload: Buffer;
  headers: Record<string, string>;
}

interface Publisher<T> {
  /** Turns a record into what one publish call takes (done before the clock starts). */
  prepare(record: BenchRecord): T;
  /** One publish, resolved on the broker's acknowledgement. */
  publish(prepared: T): Promise<void>;
  close(): Promise<void>;
}

interface Session {
  /** A fresh stream/subject/topic/queue named after `label`: the endpoint destination that publishes to it, and how many records it holds. */
  target(label: string): Promise<{ destination: Record<string, unknown>; stored(): Promise<number> }>;
  /** The bare client publishing to the target named `label`, with hookrelay's acknowledgement settings. */
  publisher(label: string): Promise<Publisher<any>>;
  close(): Promise<void>;
}

interface BrokerBench {
  name: string;
  /** What publishing means here, for the table. */
  what: string;
  /** Why the server cannot be run here, or null. */
  missing(): string | null;
  start(): Promise<TestBroker>;
  open(broker: TestBroker): Promise<Session>;
}

const EVENT_TYPE = 'bench.event';

const redis: BrokerBench = {
  name: 'redis',
  what: 'XADD',
  missing: () => (findBinary('redis-server') ? null : 'redis-server not found (scripts/ci/redis.sh)'),
  start: () => startRedis(),
  async open(broker) {
    const reader = new Redis({ host: '127.0.0.1', port: broker.port, lazyConnect: true });
    await reader.connect();
    return {
      async target(label) {
        const stream = `bench:${label}`;
        return { destination: { type: 'redis', address: broker.address, stream }, stored: () => reader.xlen(stream) };
      },
      async publisher(label) {
        // hookrelay's connection settings: no offline queue, no automatic retries.
        const client = new Redis({ host: '127.0.0.1', port: broker.port, lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0 });
        await client.connect();
        const stream = `bench:${label}`;
        return {
          prepare: (r: BenchRecord) => [stream, '*', 'message-id', r.id, 'event-type', r.eventType, 'headers', JSON.stringify(r.headers), 'payload', r.payload],
          publish: async (args: (string | Buffer)[]) => void (await client.call('XADD', args)),
          close: async () => client.disconnect(),
        };
      },
      close: async () => reader.disconnect(),
    };
  },
};

const nats: BrokerBench = {
  name: 'nats',
  what: 'JetStream publish, PubAck awaited',
  missing: () => (findBinary('nats-server') ? null : 'nats-server not found (scripts/ci/nats.sh)'),
  start: () => startNats(),
  async open(broker) {
    const nc = await natsConnect({ servers: broker.address });
    const jsm = await nc.jetstreamManager();
    const streamOf = (label: string) => `BENCH_${label.toUpperCase()}`;
    return {
      async target(label) {
        const name = streamOf(label);
        await jsm.streams.add({ name, subjects: [`bench.${label}.>`] });
        return {
          destination: { type: 'nats', address: broker.address, subject: `bench.${label}.{eventType}`, stream: name },
          stored: async () => (await jsm.streams.info(name)).state.messages,
        };
      },
      async publisher(label) {
        const client = await natsConnect({ servers: broker.address, reconnect: false, noEcho: true });
        const js = client.jetstream();
        const subject = `bench.${label}.${EVENT_TYPE}`;
        const expect = { streamName: streamOf(label) };
        return {
          prepare: (r: BenchRecord) => {
            const h = natsHeaders();
            for (const [name, value] of Object.entries(r.headers)) h.set(name, value);
            return { payload: r.payload, id: r.id, h };
          },
          publish: async (p: { payload: Buffer; id: string; h: MsgHdrs }) => void (await js.publish(subject, p.payload, { msgID: p.id, headers: p.h, expect })),
          close: () => client.close(),
        };
      },
      close: () => nc.close(),
    };
  },
};

const kafka: BrokerBench = {
  name: 'kafka',
  what: 'produce, idempotent, acks=all',
  missing: () => (findKafkaLibs() && findBinary('java') ? null : 'no Kafka jars or no java (scripts/ci/kafka.sh)'),
  start: () => startKafka(),
  async open(broker) {
    const client = new Kafka({ clientId: 'hookrelay-bench', brokers: [broker.address], logLevel: logLevel.NOTHING, retry: { retries: 10 } });
    const admin = client.admin();
    await admin.connect();
    const topicOf = (label: string) => `bench-${label}`;
    return {
      async target(label) {
        const topic = topicOf(label);
        await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
        return {
          destination: { type: 'kafka', brokers: [broker.address], topic },
          // An idempotent producer without transactions writes contiguous offsets: the high watermark is the count.
          stored: async () => (await admin.fetchTopicOffsets(topic)).reduce((sum, p) => sum + Number(p.high) - Number(p.low), 0),
        };
      },
      async publisher(label) {
        // hookrelay's producer: idempotent, one request in flight per broker, acks=all, no topic creation.
        const producer = new Kafka({ clientId: 'hookrelay-bench-bare', brokers: [broker.address], logLevel: logLevel.NOTHING, retry: { retries: 2, initialRetryTime: 100, maxRetryTime: 1_000 } }).producer({
          idempotent: true,
          maxInFlightRequests: 1,
          allowAutoTopicCreation: false,
        });
        await producer.connect();
        const topic = topicOf(label);
        return {
          prepare: (r: BenchRecord) => ({ topic, acks: -1, timeout: 10_000, messages: [{ key: 'bench-app', value: r.payload, headers: r.headers }] }),
          publish: async (record: Parameters<typeof producer.send>[0]) => void (await producer.send(record)),
          close: () => producer.disconnect(),
        };
      },
      close: () => admin.disconnect(),
    };
  },
};

const rabbitmq: BrokerBench = {
  name: 'rabbitmq',
  what: 'confirm channel, persistent, mandatory',
  missing: () => (existsSync(RABBITMQ_SERVER) && findBinary('epmd') ? null : 'rabbitmq-server not found (scripts/ci/rabbitmq.sh)'),
  start: () => startRabbitmq(),
  async open(broker) {
    const admin = await amqp.connect(`amqp://guest:guest@${broker.address}`);
    const channel = await admin.createChannel();
    const queueOf = (label: string) => `bench-${label}`;
    return {
      async target(label) {
        const queue = queueOf(label);
        await channel.assertQueue(queue, { durable: true });
        return {
          destination: { type: 'rabbitmq', address: broker.address, username: 'guest', password: 'guest', exchange: '', routingKey: queue },
          stored: async () => (await channel.checkQueue(queue)).messageCount,
        };
      },
      async publisher(label) {
        const connection = await amqp.connect(`amqp://guest:guest@${broker.address}`);
        const confirm = await connection.createConfirmChannel();
        const returned = new Set<string>();
        confirm.on('return', (m: { properties: { messageId?: string } }) => m.properties.messageId && returned.add(m.properties.messageId));
        const queue = queueOf(label);
        return {
          prepare: (r: BenchRecord) => ({
            payload: r.payload,
            options: { persistent: true, mandatory: true, messageId: r.id, type: r.eventType, contentType: 'application/json', timestamp: Math.floor(Date.now() / 1000), headers: r.headers },
          }),
          publish: (p: { payload: Buffer; options: Options.Publish }) =>
            new Promise<void>((resolve, reject) =>
              confirm.publish('', queue, p.payload, p.options, (error: unknown) => {
                if (error) reject(new Error('nack'));
                else if (returned.delete(p.options.messageId!)) reject(new Error('unroutable'));
                else resolve();
              }),
            ),
          close: () => connection.close(),
        };
      },
      close: () => admin.close(),
    };
  },
};

export const BROKER_BENCHES = [redis, nats, kafka, rabbitmq];

/** Records of the bench's shape (~1 KiB JSON payload, hookrelay's headers), built before any clock starts. */
function records(count: number, seqBase: number): BenchRecord[] {
  return Array.from({ length: count }, (_, i) => {
    const id = newId('msg');
    return {
      id,
      eventType: EVENT_TYPE,
      payload: Buffer.from(JSON.stringify(benchPayload(seqBase + i))),
      headers: { 'content-type': 'application/json', 'webhook-id': id, 'x-hookrelay-event-type': EVENT_TYPE },
    };
  });
}

interface LoopResult {
  ok: number;
  failed: number;
  firstError: string | null;
  seconds: number;
  cpuUs: number;
}

/** `concurrency` workers, each publishing the next prepared record and awaiting its acknowledgement. */
async function bareLoop<T>(publisher: Publisher<T>, batch: BenchRecord[], concurrency: number): Promise<LoopResult> {
  const prepared = batch.map((r) => publisher.prepare(r));
  let next = 0;
  let ok = 0;
  let failed = 0;
  let firstError: string | null = null;
  const worker = async () => {
    while (next < prepared.length) {
      const item = prepared[next++];
      try {
        await publisher.publish(item);
        ok++;
      } catch (error) {
        failed++;
        firstError ??= (error as Error).message;
      }
    }
  };
  const cpu0 = process.cpuUsage();
  const t0 = now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = (now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  return { ok, failed, firstError, seconds, cpuUs: cpu.user + cpu.system };
}

async function waitFor(check: () => boolean, timeoutMs: number, pollMs = 10): Promise<boolean> {
  const deadline = now() + timeoutMs;
  while (now() < deadline) {
    if (check()) return true;
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
  return check();
}

interface RelayResult {
  accepted: number;
  acceptPerSecond: number;
  succeeded: number;
  seconds: number;
  cpuUs: number;
  statuses: Record<string, number>;
  timedOut: boolean;
}

/** A backlog accepted with the dispatcher held, then drained to the broker destination and timed to the last recorded success. */
async function relayRun(opts: BrokerPhaseOptions, destination: Record<string, unknown>, label: string): Promise<RelayResult> {
  const br = await startBenchRelay(opts.flags);
  try {
    const app = await br.api('POST', '/api/v1/app', { name: `bench broker ${label}` });
    await br.api('POST', `/api/v1/app/${app.id}/endpoint`, { destination, maxInFlight: opts.concurrency });
    // Nothing is in flight yet, so stopping loses nothing and start() resumes the same dispatcher.
    await br.relay.dispatcher.stop(0);
    const accepted = await opts.loadgen<AcceptResult>(opts.acceptCall(br, app.id, { count: opts.messages }));
    if (accepted.failed) throw new Error(`${accepted.failed} messages were refused: ${accepted.failures.join(' | ')}`);
    const cpu0 = process.cpuUsage();
    const t0 = now();
    br.relay.dispatcher.start();
    // Polls two counts on partial indexes; every 10 ms costs hookrelay little and bounds the timing error.
    const done = await waitFor(() => unfinished(br.db) === 0, opts.timeoutMs);
    const seconds = (now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const statuses = statusCounts(br.db);
    return {
      accepted: accepted.ok,
      acceptPerSecond: accepted.ok / ((accepted.finishedAt - accepted.startedAt) / 1000),
      succeeded: statuses.succeeded ?? 0,
      seconds,
      cpuUs: cpu.user + cpu.system,
      statuses,
      timedOut: !done,
    };
  } finally {
    await br.close();
  }
}

const rate = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a');

export async function brokerPhase(opts: BrokerPhaseOptions): Promise<{ rows: Row[]; problems: string[] }> {
  const rows: Row[] = [];
  const problems: string[] = [];
  const wanted = BROKER_BENCHES.filter((b) => opts.brokers.includes(b.name));
  for (const unknown of opts.brokers.filter((name) => !BROKER_BENCHES.some((b) => b.name === name))) problems.push(`BENCH_BROKERS: unknown broker ${unknown}`);
  for (const bench of wanted) {
    const missing = bench.missing();
    if (missing) {
      console.log(`broker ${bench.name}: skipped, ${missing}`);
      rows.push({ metric: `broker ${bench.name}: ${bench.what} (deliveries/s)`, hookrelay: 'skipped', ceiling: '', ratio: '', target: '', notes: missing });
      continue;
    }
    let broker: TestBroker | null = null;
    let session: Session | null = null;
    try {
      const bootAt = now();
      broker = await bench.start();
      session = await bench.open(broker);
      console.log(`broker ${bench.name}: server up on ${broker.address} after ${((now() - bootAt) / 1000).toFixed(1)} s`);

      // A short warm-up, so that neither run pays for the server's first requests (the JVM's JIT, Erlang's queue set-up).
      await session.target('warm');
      const warmPublisher = await session.publisher('warm');
      await bareLoop(warmPublisher, records(Math.min(1_000, Math.ceil(opts.messages / 10)), 0), opts.concurrency);
      await warmPublisher.close();

      const bareTarget = await session.target('bare');
      const publisher = await session.publisher('bare');
      const bare = await bareLoop(publisher, records(opts.messages, 1e6), opts.concurrency);
      await publisher.close();
      const bareStored = await bareTarget.stored();
      const bareRate = bare.ok / bare.seconds;
      const loadBare = loadavg()[0];
      console.log(
        `broker ${bench.name} bare: ${bare.ok} acknowledged in ${bare.seconds.toFixed(2)} s = ${rate(bareRate)}/s, ${(bare.cpuUs / Math.max(1, bare.ok)).toFixed(1)} µs CPU each; ` +
          `${bare.failed} failed${bare.firstError ? ` (${bare.firstError})` : ''}; server holds ${bareStored}; load ${loadBare.toFixed(2)}`,
      );
      if (bare.failed) problems.push(`broker ${bench.name}: the bare loop had ${bare.failed} failed publishes (${bare.firstError})`);
      if (bareStored !== bare.ok) problems.push(`broker ${bench.name}: the bare loop's target holds ${bareStored} records, ${bare.ok} were acknowledged`);

      const hrTarget = await session.target('hr');
      const hr = await relayRun(opts, hrTarget.destination, bench.name);
      const hrStored = await hrTarget.stored();
      const hrRate = hr.succeeded / hr.seconds;
      const loadHr = loadavg()[0];
      console.log(
        `broker ${bench.name} hookrelay: accepted ${hr.accepted} at ${rate(hr.acceptPerSecond)} msgs/s; ${hr.succeeded} deliveries succeeded in ${hr.seconds.toFixed(2)} s = ${rate(hrRate)}/s, ` +
          `${(hr.cpuUs / Math.max(1, hr.succeeded)).toFixed(1)} µs CPU each; statuses ${JSON.stringify(hr.statuses)}; server holds ${hrStored}; load ${loadHr.toFixed(2)}`,
      );
      if (hr.timedOut) problems.push(`broker ${bench.name}: hookrelay's drain timed out (${JSON.stringify(hr.statuses)})`);
      if (hr.succeeded !== hr.accepted) problems.push(`broker ${bench.name}: ${hr.succeeded}/${hr.accepted} deliveries succeeded`);
      // At least once: a retried publish may add a record twice, never drop one.
      if (hrStored < hr.succeeded) problems.push(`broker ${bench.name}: the destination holds ${hrStored} records for ${hr.succeeded} successful deliveries`);

      rows.push({
        metric: `broker ${bench.name}: ${bench.what} (deliveries/s)`,
        hookrelay: `${rate(hrRate)}/s`,
        ceiling: `${rate(bareRate)}/s`,
        ratio: `${((hrRate / bareRate) * 100).toFixed(1)}%`,
        target: '',
        notes:
          `ceiling column: the client library's own loop, same acks; ${opts.messages} msgs, ${opts.concurrency} in flight; ` +
          `CPU/msg hookrelay ${(hr.cpuUs / Math.max(1, hr.succeeded)).toFixed(0)} µs, bare ${(bare.cpuUs / Math.max(1, bare.ok)).toFixed(0)} µs; load ${loadBare.toFixed(2)}/${loadHr.toFixed(2)}`,
      });
    } catch (error) {
      console.log(`broker ${bench.name}: ${(error as Error).message}`);
      problems.push(`broker ${bench.name}: ${(error as Error).message}`);
    } finally {
      await session?.close().catch(() => undefined);
      await broker?.close();
    }
  }
  return { rows, problems };
}
