import { randomUUID } from 'node:crypto';
import amqp from 'amqplib';
import { Redis } from 'ioredis';
import { Kafka, logLevel } from 'kafkajs';
import { connect as natsConnect } from 'nats';
import { sendInBatches } from '../test/helpers/kafka-send.js';
import { findBinary, findKafkaLibs, startKafka, startNats, startRabbitmq, startRedis, type TestBroker } from '../test/helpers/brokers.js';
import { startBenchRelay } from './relay.js';
import type { Row } from './run.js';
import { now } from './shared.js';

/** What the phase needs of one broker: whether it is installed, starting it, and filling a place with records. */
interface Producer {
  type: 'redis' | 'nats' | 'kafka' | 'rabbitmq';
  missing(): string | null;
  start(): Promise<TestBroker>;
  /** Puts `count` records on a fresh place; returns the source config that consumes it. */
  fill(broker: TestBroker, count: number): Promise<Record<string, unknown>>;
}

const record = (i: number) => Buffer.from(JSON.stringify({ seq: i, data: { id: `ord_${i}`, amount: i * 7, currency: 'EUR' } }));

const PRODUCERS: Producer[] = [
  {
    type: 'redis',
    missing: () => (findBinary('redis-server') ? null : 'redis-server not found (scripts/ci/redis.sh)'),
    start: () => startRedis(),
    async fill(broker, count) {
      const redis = new Redis({ host: '127.0.0.1', port: broker.port });
      for (let i = 0; i < count; i += 1000) {
        const pipeline = redis.pipeline();
        for (let j = i; j < Math.min(count, i + 1000); j++) pipeline.xadd('bench', '*', 'event-type', 'order.created', 'payload', record(j));
        await pipeline.exec();
      }
      redis.disconnect();
      return { address: broker.address, stream: 'bench' };
    },
  },
  {
    type: 'nats',
    missing: () => (findBinary('nats-server') ? null : 'nats-server not found (scripts/ci/nats.sh)'),
    start: () => startNats(),
    async fill(broker, count) {
      const nc = await natsConnect({ servers: broker.address });
      await (await nc.jetstreamManager()).streams.add({ name: 'BENCH', subjects: ['bench.>'] });
      const js = nc.jetstream();
      for (let i = 0; i < count; i += 500) await Promise.all(Array.from({ length: Math.min(500, count - i) }, (_, j) => js.publish('bench.in', record(i + j))));
      await nc.close();
      return { address: broker.address, stream: 'BENCH', eventType: { fixed: 'order.created' } };
    },
  },
  {
    type: 'kafka',
    missing: () => (findKafkaLibs() && findBinary('java') ? null : 'no Kafka jars or java (scripts/ci/kafka.sh)'),
    start: () => startKafka(),
    async fill(broker, count) {
      const kafka = new Kafka({ clientId: 'bench', brokers: [broker.address], logLevel: logLevel.NOTHING, retry: { retries: 20 } });
      const admin = kafka.admin();
      await admin.connect();
      await admin.createTopics({ topics: [{ topic: 'bench', numPartitions: 3 }] });
      await admin.disconnect();
      const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
      await producer.connect();
      const messages = Array.from({ length: count }, (_, i) => ({ partition: i % 3, value: record(i), headers: { 'event-type': 'order.created' } }));
      await sendInBatches(producer, 'bench', messages, 40);
      await producer.disconnect();
      return { brokers: [broker.address], topic: 'bench' };
    },
  },
  {
    type: 'rabbitmq',
    missing: () => (findBinary('rabbitmq-server') ? null : 'rabbitmq-server not found (scripts/ci/rabbitmq.sh)'),
    start: () => startRabbitmq(),
    async fill(broker, count) {
      const connection = await amqp.connect(`amqp://guest:guest@${broker.address}`);
      const channel = await connection.createConfirmChannel();
      await channel.assertQueue('bench', { durable: true });
      for (let i = 0; i < count; i += 1000) {
        for (let j = i; j < Math.min(count, i + 1000); j++) channel.sendToQueue('bench', record(j), { persistent: true, messageId: randomUUID(), type: 'order.created', contentType: 'application/json' });
        await channel.waitForConfirms();
      }
      await connection.close();
      return { address: broker.address, username: 'guest', password: 'guest', queue: 'bench', eventType: { header: 'type' } };
    },
  },
];

/**
 * Records consumed per second by a broker source: the records are on the broker before the source is created; the
 * clock runs from creating the source to the last of them committed as a message (synchronous=FULL, no endpoint, so
 * the figure is the consumer and the durable accept alone). A broker not installed is skipped, saying so.
 */
export async function brokersInPhase(opts: { records: number; flags: Record<string, string>; timeoutMs: number }): Promise<{ rows: Row[]; problems: string[] }> {
  const rows: Row[] = [];
  const problems: string[] = [];
  for (const producer of PRODUCERS) {
    const missing = producer.missing();
    if (missing) {
      console.log(`broker source (${producer.type}): skipped, ${missing}`);
      continue;
    }
    const broker = await producer.start();
    const br = await startBenchRelay(opts.flags);
    try {
      const config = await producer.fill(broker, opts.records);
      const count = br.db.prepare('SELECT count(*) AS n FROM message WHERE app_id = ?');
      const t0 = now();
      const source = await br.api('POST', '/ingest/api/v1/source', { name: `bench ${producer.type}`, type: producer.type, config });
      const deadline = Date.now() + opts.timeoutMs;
      let consumed = 0;
      while ((consumed = (count.get(source.appId) as { n: number }).n) < opts.records && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
      const seconds = (now() - t0) / 1000;
      if (consumed < opts.records) problems.push(`broker source (${producer.type}): ${consumed}/${opts.records} records consumed within ${opts.timeoutMs / 1000} s`);
      console.log(`broker source (${producer.type}): ${consumed} records in ${seconds.toFixed(2)} s`);
      rows.push({
        metric: `broker source, ${producer.type} (records consumed/s)`,
        hookrelay: `${Math.round(consumed / seconds).toLocaleString('en-US')}/s`,
        ceiling: '',
        ratio: '',
        target: '',
        notes: `${consumed} records already on the broker; from creating the source to the last message committed; default batch (100) and prefetch`,
      });
    } finally {
      await br.close();
      await broker.close();
    }
  }
  return { rows, problems };
}
