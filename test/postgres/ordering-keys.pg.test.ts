import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { freshDatabase, skipWithoutPostgres } from '../helpers/postgres.js';
import { waitUntil } from '../helpers/wait.js';
import { assertKeyOrder, startOrderedReceiver } from '../pipeline/ordering-support.js';
import { metricOf, startChild, type Child } from '../process/child.js';

const KEYS = 30;
const PER_KEY = 60;

/** The attempts a process has made, from its Prometheus counter. */
const attemptsOf = (child: Child) => metricOf(child, 'hookrelay_attempts_total');

describe('ordering keys on two PostgreSQL processes', { skip: skipWithoutPostgres() }, () => {
  it('never delivers one key from both processes at once, keeps each key in order, and keeps it across a SIGKILL of one', { timeout: 300_000 }, async (t) => {
    const database = await freshDatabase();
    const receiver = await startOrderedReceiver((_key, _seq, attempt) => ({ status: attempt < 2 && Math.random() < 0.1 ? 500 : 200, delayMs: 5 + Math.floor(Math.random() * 35) }));
    const children: Child[] = [];
    t.after(async () => {
      for (const c of children) if (c.alive()) c.proc.kill('SIGKILL');
      await Promise.all(children.map((c) => c.exited));
      await receiver.close();
      await database.drop();
    });
    children.push(...(await Promise.all([0, 1].map(() => startChild({ db: database.url, flags: ['--delivery-timeout', '10s', '--lease-margin', '1s'] })))));
    const [first, second] = children;
    const app = await first.svix.application.create({ name: 'ordering-pg' });
    const endpoint = await first.api('POST', `/api/v1/app/${app.id}/endpoint`, { url: receiver.url, ordering: 'key', maxInFlight: 12 });
    assert.equal(endpoint.status, 201, endpoint.text);

    // The receiver holds its answers while the messages are sent, so that the run is still young when they all are.
    const release = receiver.pause();
    // Each key's messages go through both processes in turn, each accepted (202) before the next is sent.
    const keys = Array.from({ length: KEYS }, (_, k) => `tenant/${k}`);
    await Promise.all(keys.map(async (key) => {
      for (let seq = 0; seq < PER_KEY; seq++) {
        const sent = await children[seq % 2].api('POST', `/api/v1/app/${app.id}/msg`, { eventType: 'ordered', payload: { key, seq }, orderingKey: key });
        assert.equal(sent.status, 202, sent.text);
      }
    }));
    release();
    await waitUntil('both processes to deliver', async () => (await attemptsOf(first)) > 50 && (await attemptsOf(second)) > 50, 60_000, 100);
    first.proc.kill('SIGKILL');
    await first.exited;
    const atKill = receiver.complete(PER_KEY);
    assert.ok(atKill < KEYS, 'every key was complete before the kill');

    await waitUntil('every key to be delivered by the survivor', () => receiver.complete(PER_KEY) === KEYS, 180_000, 100);
    // assertKeyOrder fails on any request of a key arriving while another of it is open, whichever process sent it.
    assertKeyOrder(receiver.arrivals, keys, PER_KEY, { repeatsAfterSuccess: true });
    assert.ok(receiver.maxKeysOpen() >= 4, `at most ${receiver.maxKeysOpen()} keys were in flight at once`);
    t.diagnostic(`${atKill} of ${KEYS} keys complete at the kill; ${receiver.arrivals.length} requests for ${KEYS * PER_KEY} messages`);
  });
});
