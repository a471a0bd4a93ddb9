import { randomUUID } from 'node:crypto';
import amqp, { type ChannelModel, type ConfirmChannel } from 'amqplib';
import { brokerSkip, startRabbitmq, type TestBroker } from '../helpers/brokers.js';
import { brokerSourceSuite, type Produced } from './source-suite.js';

let connection: ChannelModel | null = null;
let channel: ConfirmChannel | null = null;
/** What was published on each queue, with the message-id each record got (a redelivery publishes it again). */
const published = new Map<string, (Produced & { messageId: string })[]>();

async function channelOf(broker: TestBroker): Promise<ConfirmChannel> {
  if (channel) return channel;
  connection = await amqp.connect(`amqp://guest:guest@${broker.address}`);
  connection.on('error', () => undefined);
  connection.on('close', () => ((connection = null), (channel = null)));
  const opened = await connection.createConfirmChannel();
  opened.on('error', () => undefined);
  opened.on('close', () => (channel = null));
  channel = opened;
  return opened;
}

async function publish(broker: TestBroker, queue: string, records: (Produced & { messageId: string })[]): Promise<void> {
  const ch = await channelOf(broker);
  for (let i = 0; i < records.length; i += 1000) {
    for (const r of records.slice(i, i + 1000)) {
      const { 'content-type': contentType, ...headers } = r.headers ?? {};
      ch.sendToQueue(queue, r.payload, { persistent: true, messageId: r.messageId, contentType, headers });
    }
    await ch.waitForConfirms();
  }
}

async function queueState(broker: TestBroker, queue: string): Promise<{ messageCount: number; consumerCount: number }> {
  return (await channelOf(broker)).checkQueue(queue);
}

brokerSourceSuite({
  type: 'rabbitmq',
  skip: brokerSkip('rabbitmq-server', 'rabbitmq.sh'),
  start: () => startRabbitmq(),
  async place(broker) {
    const queue = `in-${randomUUID()}`;
    await (await channelOf(broker)).assertQueue(queue, { durable: true });
    published.set(queue, []);
    return queue;
  },
  config: (broker, queue, extra = {}) => ({ address: broker.address, username: 'guest', password: 'guest', queue, timeoutMs: 2000, ...extra }),
  async produce(broker, queue, records) {
    const withIds = records.map((r) => ({ ...r, messageId: randomUUID() }));
    published.get(queue)!.push(...withIds);
    await publish(broker, queue, withIds);
  },
  async redeliver(broker, queue) {
    // The same messages again, message-id and all, as a publisher retrying after a lost confirm sends them.
    await publish(broker, queue, published.get(queue)!);
  },
  async drained(broker, queue, _sourceId, setDisabled) {
    if ((await queueState(broker, queue)).messageCount > 0) return false;
    // Messages delivered but not yet acked are not counted as ready: a stop finishes the ones in hand and requeues the
    // rest, so after it an empty queue means every message was accepted and acked.
    await setDisabled(true);
    const { messageCount } = await queueState(broker, queue);
    await setDisabled(false);
    return messageCount === 0;
  },
  wrongCredentials: (broker, queue) => ({ address: broker.address, username: 'guest', password: 'wrong-secret', queue, timeoutMs: 2000 }),
  wrongCredentialsError: /ACCESS.REFUSED/,
  unknownPlace: async (broker) => ({ address: broker.address, username: 'guest', password: 'guest', queue: 'no-such-queue', timeoutMs: 2000 }),
  unknownPlaceError: /NOT_FOUND - no queue 'no-such-queue'/,
  downError: /ECONNREFUSED|connect/i,
  async afterRestart(broker, queue) {
    // A node killed under load may come back without a queue's definition: declare it again (a no-op when it is there).
    channel = null;
    await (await channelOf(broker)).assertQueue(queue, { durable: true });
  },
  async close() {
    await connection?.close().catch(() => undefined);
  },
});
