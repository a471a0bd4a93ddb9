import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { brokerSkip, startRedis, type TestBroker } from '../helpers/brokers.js';
import { freshDatabase, skipWithoutPostgres, type TestDatabase } from '../helpers/postgres.js';
import { waitUntil } from '../helpers/wait.js';
import { listAllMessageIds, startChild, type Child } from '../process/child.js';

const N = 4000;

describe('a broker source on PostgreSQL with two hookrelay processes', { skip: brokerSkip('redis-server', 'redis.sh') || skipWithoutPostgres() }, () => {
  let redis: TestBroker;
  let database: TestDatabase;
  const children: Child[] = [];
  before(async () => {
    [redis, database] = await Promise.all([startRedis(), freshDatabase()]);
  });
  after(async () => {
    await Promise.all(children.map((c) => c.stop()));
    await redis?.close();
    await database?.drop();
  });

  it('both consume (one Redis group, a consumer each, both holding entries) and every record is one message', async () => {
    const [a, b] = await Promise.all([startChild({ db: database.url }), startChild({ db: database.url })]);
    children.push(a, b);
    const client = new Redis({ host: '127.0.0.1', port: redis.port });
    try {
      // Created through one process; the other starts its consumer at its next read of the sources.
      const created = await a.api('POST', '/ingest/api/v1/source', { name: 'shared', type: 'redis', config: { address: redis.address, stream: 'shared', batchSize: 20 } });
      assert.equal(created.status, 201, created.text);
      const { id: sourceId, appId } = created.body;
      await waitUntil('the second process to consume', async () => (await b.api('GET', `/ingest/api/v1/source/${sourceId}`)).body.consumer?.state === 'running', 20_000, 100);

      const pipeline = client.pipeline();
      for (let i = 0; i < N; i++) pipeline.xadd('shared', '*', 'event-type', 'shared.test', 'payload', JSON.stringify({ i }));
      await pipeline.exec();
      // Which consumers of the group held entries (read, not yet acknowledged) while the records went in.
      const held = new Set<string>();
      const ids = await waitUntil(`all ${N} records to be messages`, async () => {
        const consumers = (await client.call('XINFO', 'CONSUMERS', 'shared', `hookrelay-${sourceId}`)) as unknown[][];
        for (const fields of consumers) if (Number(fields[fields.indexOf('pending') + 1]) > 0) held.add(String(fields[fields.indexOf('name') + 1]));
        const listed = await listAllMessageIds(a.svix, appId);
        return listed.length >= N ? listed : null;
      }, 60_000, 20);
      assert.equal(ids!.length, N, 'no record became two messages');
      const names = [...held];
      assert.ok(names.some((n) => n.includes(`-${a.proc.pid}-`)) && names.some((n) => n.includes(`-${b.proc.pid}-`)), `consumers seen holding entries: ${names.join(', ')}`);
      await waitUntil('every entry acknowledged', async () => {
        const [group] = (await client.call('XINFO', 'GROUPS', 'shared')) as unknown[][];
        return group[group.indexOf('pending') + 1] === 0;
      }, 10_000, 100);
    } finally {
      client.disconnect();
    }
  });
});
