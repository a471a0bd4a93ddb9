import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { brokerSkip, startRedis, type TestBroker } from '../helpers/brokers.js';
import { brokerSourceSuite } from './source-suite.js';

const PASSWORD = 'redis-pass-' + randomUUID();
let client: Redis | null = null;

async function clientOf(broker: TestBroker): Promise<Redis> {
  if (client && client.status === 'ready') return client;
  client?.disconnect();
  client = new Redis({ host: '127.0.0.1', port: broker.port, password: PASSWORD, lazyConnect: true, maxRetriesPerRequest: 20, retryStrategy: (n) => Math.min(n * 100, 1000) });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

brokerSourceSuite({
  type: 'redis',
  skip: brokerSkip('redis-server', 'redis.sh'),
  start: () => startRedis({ password: PASSWORD }),
  place: async () => `in:${randomUUID()}`,
  config: (broker, stream, extra = {}) => ({ address: broker.address, password: PASSWORD, stream, claimIdleMs: 2000, timeoutMs: 2000, ...extra }),
  async produce(broker, stream, records) {
    const redis = await clientOf(broker);
    for (let i = 0; i < records.length; i += 1000) {
      const pipeline = redis.pipeline();
      for (const r of records.slice(i, i + 1000)) pipeline.xadd(stream, '*', ...Object.entries(r.headers ?? {}).flat(), 'payload', r.payload);
      const results = await pipeline.exec();
      for (const [error] of results ?? []) if (error) throw error;
    }
  },
  async redeliver(broker, stream, sourceId) {
    // The group reads the stream again from its start, as a consumer that lost its acks would.
    await (await clientOf(broker)).call('XGROUP', 'SETID', stream, `hookrelay-${sourceId}`, '0');
  },
  async drained(broker, stream, sourceId) {
    const redis = await clientOf(broker);
    const groups = (await redis.call('XINFO', 'GROUPS', stream)) as unknown[][];
    const group = groups.map((g) => Object.fromEntries(Array.from({ length: g.length / 2 }, (_, i) => [g[2 * i], g[2 * i + 1]]))).find((g) => g.name === `hookrelay-${sourceId}`);
    const [last] = (await redis.call('XREVRANGE', stream, '+', '-', 'COUNT', '1')) as [string][];
    return !!group && group.pending === 0 && group['last-delivered-id'] === last[0];
  },
  wrongCredentials: (broker, stream) => ({ address: broker.address, password: 'wrong-secret', stream, timeoutMs: 2000 }),
  wrongCredentialsError: /WRONGPASS|invalid username-password/,
  async unknownPlace(broker) {
    // Redis makes a stream on first use (the source creates it with its group): what it cannot consume is a key of another type.
    await (await clientOf(broker)).set('not-a-stream', 'a string, not a stream');
    return { address: broker.address, password: PASSWORD, stream: 'not-a-stream', timeoutMs: 2000 };
  },
  unknownPlaceError: /WRONGTYPE/,
  downError: /ECONNREFUSED|Connection is closed|connect/,
  async close() {
    client?.disconnect();
  },
});
