import { randomUUID } from 'node:crypto';
import { connect, headers as natsHeaders, type NatsConnection } from 'nats';
import { brokerSkip, startNats, type TestBroker } from '../helpers/brokers.js';
import { brokerSourceSuite } from './source-suite.js';

const USER = 'hookrelay';
const PASSWORD = 'nats-pass-' + randomUUID();
let nc: NatsConnection | null = null;

async function connectionOf(broker: TestBroker): Promise<NatsConnection> {
  if (nc && !nc.isClosed()) return nc;
  nc = await connect({ servers: broker.address, user: USER, pass: PASSWORD, reconnect: true, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
  return nc;
}

/** The stream `S_<hex>` takes the subjects `s_<hex>.>`; records are published on `s_<hex>.in`. */
const subjectOf = (stream: string) => `${stream.toLowerCase()}.in`;

brokerSourceSuite({
  type: 'nats',
  skip: brokerSkip('nats-server', 'nats.sh'),
  start: () => startNats({ user: USER, password: PASSWORD }),
  async place(broker) {
    const stream = `S_${randomUUID().replaceAll('-', '')}`;
    const jsm = await (await connectionOf(broker)).jetstreamManager();
    await jsm.streams.add({ name: stream, subjects: [`${stream.toLowerCase()}.>`] });
    return stream;
  },
  config: (broker, stream, extra = {}) => ({ address: broker.address, user: USER, password: PASSWORD, stream, timeoutMs: 2000, ackWaitMs: 3000, ...extra }),
  async produce(broker, stream, records) {
    const js = (await connectionOf(broker)).jetstream();
    for (let i = 0; i < records.length; i += 500) {
      await Promise.all(
        records.slice(i, i + 500).map((r) => {
          const h = natsHeaders();
          for (const [name, value] of Object.entries(r.headers ?? {})) h.set(name, value);
          return js.publish(subjectOf(stream), r.payload, { headers: h, timeout: 10_000 });
        }),
      );
    }
  },
  async redeliver(broker, stream, sourceId, setDisabled) {
    // A durable consumer made afresh delivers the whole stream again.
    await setDisabled(true);
    await (await (await connectionOf(broker)).jetstreamManager()).consumers.delete(stream, `hookrelay-${sourceId}`);
    await setDisabled(false);
  },
  async drained(broker, stream, sourceId) {
    const jsm = await (await connectionOf(broker)).jetstreamManager();
    const info = await jsm.consumers.info(stream, `hookrelay-${sourceId}`).catch(() => null);
    const last = (await jsm.streams.info(stream)).state.last_seq;
    return !!info && info.num_pending === 0 && info.num_ack_pending === 0 && info.ack_floor.stream_seq === last;
  },
  wrongCredentials: (broker, stream) => ({ address: broker.address, user: USER, password: 'wrong-secret', stream, timeoutMs: 2000 }),
  wrongCredentialsError: /authorization violation/i,
  unknownPlace: async (broker) => ({ address: broker.address, user: USER, password: PASSWORD, stream: 'NO_SUCH_STREAM', timeoutMs: 2000 }),
  unknownPlaceError: /stream "NO_SUCH_STREAM" does not exist/,
  downError: /ECONNREFUSED|CONNECTION_REFUSED|connect/i,
  async close() {
    await nc?.close().catch(() => undefined);
  },
});
