import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { startReceiver } from '../helpers/receiver.js';
import { skipWithoutPostgres, testPostgres } from '../helpers/postgres.js';
import { startRelayOn, type TestRelay } from '../helpers/relay.js';
import { waitUntil } from '../helpers/wait.js';

/**
 * PostgreSQL going away and coming back, as an operator restart does (`pg_ctl stop -m fast`, then start):
 * nothing is acknowledged while it is gone, and both intake and delivery resume by themselves.
 */
describe('PostgreSQL connection loss', { skip: skipWithoutPostgres(true) }, () => {
  it('answers 503 with Retry-After (never 2xx) while the database is down, then accepts and delivers again without a restart', async (t) => {
    const cluster = await testPostgres({ ownCluster: true });
    const database = await cluster.createDatabase();
    const receiver = await startReceiver(() => ({ status: 200 }));
    const relays: TestRelay[] = [];
    t.after(async () => {
      await Promise.all(relays.map((r) => r.close()));
      await receiver.close();
      await database.drop();
    });
    // Two processes on one database: `front` takes the API traffic, `worker` delivers. The worker polls only once a
    // minute, so a delivery within seconds shows that the front's NOTIFY reached it.
    const front = await startRelayOn('postgres', { db: database.url });
    relays.push(front);
    await front.dispatcher.stop(0);
    const worker = await startRelayOn('postgres', { db: database.url }, {}, { pollMs: 60_000 });
    relays.push(worker);

    const app = await front.svix.application.create({ name: 'outage' });
    const endpoint = await front.api('POST', `/api/v1/app/${app.id}/endpoint`, { url: receiver.url });
    assert.equal(endpoint.status, 201, endpoint.text);
    const send = (relay: TestRelay, n: number) => relay.api('POST', `/api/v1/app/${app.id}/msg`, { eventType: 'outage.test', payload: { n } });
    const delivered = () => new Set(receiver.received.map((r) => JSON.parse(r.body.toString()).n as number));

    const before = await send(front, 1);
    assert.equal(before.status, 202, before.text);
    await waitUntil('the worker to deliver a message accepted by the front', () => delivered().has(1), 5_000);

    cluster.stop();
    const during: { status: number; retryAfter: string | null; code: unknown }[] = [];
    for (let n = 100; n < 110; n++) {
      for (const relay of [front, worker]) {
        const response = await send(relay, n);
        during.push({ status: response.status, retryAfter: response.headers.get('retry-after'), code: response.body?.code });
      }
    }
    const ready = await front.api('GET', '/readyz', undefined, { token: null });
    cluster.start();

    assert.deepEqual(
      during.filter((r) => r.status !== 503 || r.code !== 'unavailable' || !/^\d+$/.test(r.retryAfter ?? '')),
      [],
      'while the database was down every accept must be a 503 "unavailable" with Retry-After',
    );
    assert.equal(ready.status, 503);

    // Back: no restart of either process.
    const after = (await waitUntil(
      'an accept to succeed again',
      async () => {
        const response = await send(front, 2);
        return response.status === 202 ? response : null;
      },
      20_000,
      200,
    ))!;
    assert.equal(after.status, 202);
    assert.equal((await send(worker, 3)).status, 202);
    await waitUntil('the messages accepted after the outage to be delivered', () => delivered().has(2) && delivered().has(3), 15_000);
    assert.deepEqual([...delivered()].filter((n) => n >= 100), [], 'a message refused during the outage was delivered');
    assert.equal((await front.api('GET', '/readyz', undefined, { token: null })).status, 200);
  });
});
