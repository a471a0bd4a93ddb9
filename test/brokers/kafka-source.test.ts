import { randomUUID } from 'node:crypto';
import { Kafka, logLevel, type Admin } from 'kafkajs';
import { kafkaSkip, startKafka, type TestBroker } from '../helpers/brokers.js';
import { waitUntil } from '../helpers/wait.js';
import { brokerSourceSuite } from './source-suite.js';
import { sendInBatches } from '../helpers/kafka-send.js';

const PARTITIONS = 3;
/** The user of the broker's SASL listener. */
const SASL = { mechanism: 'plain' as const, username: 'hookrelay', password: 'kafka-pass-' + randomUUID() };
let client: Kafka | null = null;
let admin: Admin | null = null;

async function adminOf(broker: TestBroker): Promise<Admin> {
  if (admin) return admin;
  client = new Kafka({ clientId: 'hookrelay-test', brokers: [broker.address], sasl: SASL, logLevel: logLevel.NOTHING, retry: { retries: 10 } });
  admin = client.admin();
  await admin.connect();
  return admin;
}

brokerSourceSuite({
  type: 'kafka',
  skip: kafkaSkip(),
  // The broker's SASL listener (PLAIN or SCRAM logins of this user only) is the one the sources use.
  start: async () => {
    const broker = await startKafka({ saslUsers: { [SASL.username]: SASL.password } });
    return { ...broker, address: broker.saslAddress! };
  },
  async place(broker) {
    const topic = 'in-' + randomUUID();
    const a = await adminOf(broker);
    await a.createTopics({ topics: [{ topic, numPartitions: PARTITIONS }], waitForLeaders: false });
    // The broker may not serve a topic's metadata at once after creating it.
    await waitUntil(`topic ${topic} to have leaders`, async () => {
      const metadata = await a.fetchTopicMetadata({ topics: [topic] }).catch(() => null);
      return metadata?.topics[0]?.partitions.length === PARTITIONS && metadata.topics[0].partitions.every((p) => p.leader >= 0);
    }, 20_000, 100);
    return topic;
  },
  config: (broker, topic, extra = {}) => ({ brokers: [broker.address], sasl: SASL, topic, timeoutMs: 3000, ...extra }),
  async produce(broker, topic, records) {
    await adminOf(broker);
    const producer = client!.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    try {
      await sendInBatches(producer, topic, records.map((r, i) => ({ partition: i % PARTITIONS, value: r.payload, headers: r.headers })));
    } finally {
      await producer.disconnect();
    }
  },
  async redeliver(broker, topic, sourceId, setDisabled) {
    // A group's offsets can be reset only while it has no members: the source is disabled meanwhile.
    await setDisabled(true);
    const a = await adminOf(broker);
    await a.resetOffsets({ groupId: `hookrelay-${sourceId}`, topic, earliest: true });
    await setDisabled(false);
  },
  async drained(broker, topic, sourceId) {
    const a = await adminOf(broker);
    const ends = await a.fetchTopicOffsets(topic);
    const [committed] = await a.fetchOffsets({ groupId: `hookrelay-${sourceId}`, topics: [topic] });
    return ends.every((end) => committed.partitions.find((p) => p.partition === end.partition)?.offset === end.high);
  },
  wrongCredentials: (broker, topic) => ({ brokers: [broker.address], sasl: { ...SASL, password: 'wrong-secret' }, topic, timeoutMs: 3000 }),
  wrongCredentialsError: /SASL|[Aa]uthentication failed/,
  unknownPlace: async (broker) => ({ brokers: [broker.address], sasl: SASL, topic: 'no-such-topic', timeoutMs: 3000 }),
  unknownPlaceError: /topic "no-such-topic" does not exist/,
  downError: /ECONNREFUSED|Connection error|connect/i,
  async afterRestart() {
    // The test's admin client reconnects by itself.
  },
  async close() {
    await admin?.disconnect().catch(() => undefined);
  },
});
