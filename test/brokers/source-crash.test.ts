import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import amqp from 'amqplib';
import { Redis } from 'ioredis';
import { Kafka, logLevel } from 'kafkajs';
import { connect as natsConnect } from 'nats';
import { brokerSkip, kafkaSkip, startKafka, startNats, startRabbitmq, startRedis, type TestBroker } from '../helpers/brokers.js';
import { sendInBatches } from '../helpers/kafka-send.js';
import { waitUntil } from '../helpers/wait.js';
import { startChild, tempDir, type Child } from '../process/child.js';

const N = 4000;

/** Every message of an app through the API: ids, eventIds and payloads. */
async function messagesOf(child: Child, appId: string): Promise<{ id: string; eventId: string | null; payload: unknown }[]> {
  const out: { id: string; eventId: string | null; payload: unknown }[] = [];
  let iterator: string | null | undefined;
  for (;;) {
    const page = await child.svix.message.list(appId, { limit: 250, iterator, withContent: true });
    out.push(...page.data.map((m) => ({ id: m.id, eventId: m.eventId ?? null, payload: m.payload })));
    if (page.done || !page.iterator) return out;
    iterator = page.iterator;
  }
}

interface CrashBroker {
  type: 'redis' | 'rabbitmq' | 'nats' | 'kafka';
  skip: false | string;
  start(): Promise<TestBroker>;
  /** Puts N records `{"i": n}` on the broker; returns the source config that consumes them slowly (small batches). */
  fill(broker: TestBroker): Promise<Record<string, unknown>>;
}

const brokers: CrashBroker[] = [
  {
    type: 'redis',
    skip: brokerSkip('redis-server', 'redis.sh'),
    start: () => startRedis(),
    async fill(broker) {
      const redis = new Redis({ host: '127.0.0.1', port: broker.port });
      const pipeline = redis.pipeline();
      for (let i = 0; i < N; i++) pipeline.xadd('crash', '*', 'event-type', 'crash.test', 'payload', JSON.stringify({ i }));
      await pipeline.exec();
      redis.disconnect();
      // The killed process's unacknowledged entries are claimed by the next one once idle for claimIdleMs.
      return { address: broker.address, stream: 'crash', batchSize: 10, claimIdleMs: 1000 };
    },
  },
  {
    type: 'rabbitmq',
    skip: brokerSkip('rabbitmq-server', 'rabbitmq.sh'),
    start: () => startRabbitmq(),
    async fill(broker) {
      const connection = await amqp.connect(`amqp://guest:guest@${broker.address}`);
      const channel = await connection.createConfirmChannel();
      await channel.assertQueue('crash', { durable: true });
      for (let i = 0; i < N; i++) channel.sendToQueue('crash', Buffer.from(JSON.stringify({ i })), { persistent: true, messageId: `m-${i}`, headers: { 'event-type': 'crash.test' } });
      await channel.waitForConfirms();
      await connection.close();
      // The broker requeues what the killed process's connection had not acked.
      return { address: broker.address, username: 'guest', password: 'guest', queue: 'crash', prefetch: 10 };
    },
  },
  {
    type: 'nats',
    skip: brokerSkip('nats-server', 'nats.sh'),
    start: () => startNats(),
    async fill(broker) {
      const nc = await natsConnect({ servers: broker.address });
      await (await nc.jetstreamManager()).streams.add({ name: 'CRASH', subjects: ['crash.>'] });
      const js = nc.jetstream();
      for (let i = 0; i < N; i += 500) {
        await Promise.all(Array.from({ length: Math.min(500, N - i) }, (_, j) => js.publish('crash.in', JSON.stringify({ i: i + j }))));
      }
      await nc.close();
      // What the killed process had pulled but not acked is redelivered after ackWaitMs.
      return { address: broker.address, stream: 'CRASH', batchSize: 10, ackWaitMs: 1000, eventType: { fixed: 'crash.test' } };
    },
  },
  {
    type: 'kafka',
    skip: kafkaSkip(),
    start: () => startKafka(),
    async fill(broker) {
      const kafka = new Kafka({ clientId: 'crash-test', brokers: [broker.address], logLevel: logLevel.NOTHING, retry: { retries: 10 } });
      const admin = kafka.admin();
      await admin.connect();
      await admin.createTopics({ topics: [{ topic: 'crash', numPartitions: 2 }], waitForLeaders: true });
      await admin.disconnect();
      const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
      await producer.connect();
      const messages = Array.from({ length: N }, (_, i) => ({ partition: i % 2, value: JSON.stringify({ i }) }));
      await sendInBatches(producer, 'crash', messages);
      await producer.disconnect();
      // Offsets are committed after each stored batch; the killed member's partitions go to the next one after its session.
      return { brokers: [broker.address], topic: 'crash', batchSize: 10, eventType: { fixed: 'crash.test' } };
    },
  },
];

for (const kind of brokers) {
  describe(`${kind.type} source across a SIGKILL of hookrelay serve`, { skip: kind.skip }, () => {
    let broker: TestBroker;
    const tmp = tempDir();
    const children: Child[] = [];
    before(async () => {
      broker = await kind.start();
    });
    after(async () => {
      for (const c of children) if (c.alive()) c.proc.kill('SIGKILL');
      await Promise.all(children.map((c) => c.exited));
      await broker?.close();
      tmp.remove();
    });

    it(`turns ${N} records into ${N} messages when the consuming process is killed mid-way and started again`, async (t) => {
      const db = join(tmp.dir, 'relay.db');
      const config = await kind.fill(broker);
      const first = await startChild({ db });
      children.push(first);
      const created = await first.api('POST', '/ingest/api/v1/source', { name: 'crash', type: kind.type, config });
      assert.equal(created.status, 201, created.text);
      const { id: sourceId, appId } = created.body;

      await waitUntil('some records to be consumed', async () => (await first.svix.message.list(appId, { limit: 250 })).data.length >= 200, 30_000, 50);
      first.proc.kill('SIGKILL');
      assert.equal((await first.exited).signal, 'SIGKILL');

      const second = await startChild({ db });
      children.push(second);
      const atRestart = (await messagesOf(second, appId)).length;
      assert.ok(atRestart < N, `all ${N} records were consumed before the kill; the test could not crash mid-way`);
      let messages: Awaited<ReturnType<typeof messagesOf>> = [];
      await waitUntil(`all ${N} records to be messages`, async () => (messages = await messagesOf(second, appId)).length >= N, 90_000, 250);
      const state = await second.api('GET', `/ingest/api/v1/source/${sourceId}`);
      assert.equal(state.body.consumer.state, 'running');

      assert.equal(messages.length, N, 'no record became two messages');
      assert.deepEqual(new Set(messages.map((m) => (m.payload as { i: number }).i)), new Set(Array.from({ length: N }, (_, i) => i)), 'every record is a message');
      assert.equal(new Set(messages.map((m) => m.eventId)).size, N);
      t.diagnostic(`${atRestart} messages at the kill`);
      await second.stop();
    });
  });
}
