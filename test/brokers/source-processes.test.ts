import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { brokerSkip, startRedis, type TestBroker } from '../helpers/brokers.js';
import { freshDatabase, skipWithoutPostgres, type TestDatabase } from '../helpers/postgres.js';
import { waitUntil } from '../helpers/wait.js';
import { listAllMessageIds, metricOf, startChild, type Child } from '../process/child.js';

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

  it('both consume (one Redis group, a consumer each, both accepting records) and every record is one message', async () => {
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
      const ids = await waitUntil(`all ${N} records to be messages`, async () => {
        const listed = await listAllMessageIds(a.svix, appId);
        return listed.length >= N ? listed : null;
      }, 60_000, 100);
      assert.equal(ids!.length, N, 'no record became two messages');
      // Each process's consumer of the group took its share: what each accepted adds up to every record once.
      const consumers = (await client.call('XINFO', 'CONSUMERS', 'shared', `hookrelay-${sourceId}`)) as unknown[][];
      const names = consumers.map((fields) => String(fields[fields.indexOf('name') + 1]));
      assert.ok(names.some((n) => n.includes(`-${a.proc.pid}-`)) && names.some((n) => n.includes(`-${b.proc.pid}-`)), `consumers of the group: ${names.join(', ')}`);
      const [byA, byB] = await Promise.all([a, b].map((child) => metricOf(child, 'hookrelay_messages_accepted_total{origin="redis"}')));
      assert.ok(byA > 0 && byB > 0, `accepted by each process: ${byA} and ${byB}`);
      assert.equal(byA + byB, N);
      await waitUntil('every entry acknowledged', async () => {
        const [group] = (await client.call('XINFO', 'GROUPS', 'shared')) as unknown[][];
        return group[group.indexOf('pending') + 1] === 0;
      }, 10_000, 100);
    } finally {
      client.disconnect();
    }
  });
});
