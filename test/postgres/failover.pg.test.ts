import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pg from 'pg';
import { startChild, type Child } from '../process/child.js';
import { freshDatabase, skipWithoutPostgres } from '../helpers/postgres.js';
import { startReceiver } from '../helpers/receiver.js';
import { waitUntil } from '../helpers/wait.js';

// Enough that the victim, alone at 40 in flight and 150 ms each, still holds leases after the survivor has started (4.5 s).
const MESSAGES = 1200;
// A lease long enough that taking over by its expiry would miss every deadline below by far.
const LEASE_MS = 15_000 + 120_000;

/**
 * Two `hookrelay serve` processes on one PostgreSQL database deliver to one slow endpoint; one is killed with SIGKILL
 * while it holds leases. Its deliveries must go back to the survivor within seconds — long before the two-minute leases
 * would expire — with nothing lost and repeats bounded by what the dead process had in flight.
 */
describe('failover: a dead process is seen within seconds, not a lease period', { skip: skipWithoutPostgres() }, () => {
  it('returns a SIGKILLed process’s leases to the survivor within seconds; every message arrives', { timeout: 240_000 }, async (t) => {
    const database = await freshDatabase();
    // Slow answers keep many deliveries in flight, so the victim holds leases when it dies.
    const receiver = await startReceiver(() => ({ status: 200, delayMs: 150 }));
    const admin = new pg.Client({ connectionString: database.url });
    const children: Child[] = [];
    t.after(async () => {
      for (const child of children) if (child.alive()) child.proc.kill('SIGKILL');
      await Promise.all(children.map((c) => c.exited));
      await admin.end().catch(() => undefined);
      await receiver.close();
      await database.drop();
    });
    const flags = ['--lease-margin', `${LEASE_MS - 15_000}ms`, '--circuit-threshold', '0'];
    // The victim delivers alone first, so that it surely holds leases when it dies (two dispatchers racing for one
    // endpoint's cap may leave either of them with none); the survivor starts, and is dispatching, before the kill.
    const victim = await startChild({ db: database.url, flags });
    children.push(victim);
    await admin.connect();

    const app = await victim.svix.application.create({ name: 'failover' });
    const endpoint = await victim.api('POST', `/api/v1/app/${app.id}/endpoint`, { url: receiver.url, maxInFlight: 40 });
    assert.equal(endpoint.status, 201, endpoint.text);
    const ids: string[] = [];
    for (let i = 0; i < MESSAGES; i += 50) {
      const batch = await Promise.all(Array.from({ length: 50 }, (_, k) => victim.svix.message.create(app.id, { eventType: 'failover.test', payload: { n: i + k } })));
      ids.push(...batch.map((m) => m.id));
    }

    const leasedBy = async (pid: number) =>
      Number((await admin.query("SELECT count(*) AS n FROM delivery WHERE status = 'in_flight' AND leased_by LIKE $1", [`%:${pid}:%`])).rows[0].n);
    await waitUntil('the victim to hold leases', async () => (await leasedBy(victim.proc.pid!)) >= 5, 60_000, 20);
    const survivor = await startChild({ db: database.url, flags });
    children.push(survivor);
    await waitUntil('both dispatchers to be registered', async () => Number((await admin.query('SELECT count(*) AS n FROM dispatcher')).rows[0].n) === 2, 30_000, 50);
    await waitUntil('the victim to hold leases still', async () => (await leasedBy(victim.proc.pid!)) >= 1, 30_000, 10);
    victim.proc.kill('SIGKILL');
    await victim.exited;
    const killedAt = Date.now();
    const orphaned = await leasedBy(victim.proc.pid!);
    assert.ok(orphaned > 0, 'the victim held no leases when it died');

    await waitUntil('the dead process’s leases to be returned', async () => (await leasedBy(victim.proc.pid!)) === 0, 30_000, 50);
    const returnedMs = Date.now() - killedAt;
    assert.ok(returnedMs < LEASE_MS / 4, `leases returned after ${returnedMs} ms: by expiry, not by failover`);
    const registered = await admin.query('SELECT owner FROM dispatcher');
    assert.deepEqual(registered.rows.map((r) => r.owner.split(':')[1]), [String(survivor.proc.pid)], 'the dead dispatcher is still registered');

    await waitUntil('every message to arrive', () => new Set(receiver.received.map((r) => r.headers['webhook-id'])).size >= MESSAGES, 60_000, 100);
    await waitUntil(
      'every delivery to be recorded as succeeded',
      async () => Number((await admin.query("SELECT count(*) AS n FROM delivery WHERE status <> 'succeeded'")).rows[0].n) === 0,
      30_000,
      100,
    );
    const delivered = receiver.received.map((r) => r.headers['webhook-id'] as string);
    assert.deepEqual(ids.filter((id) => !delivered.includes(id)), []);
    const duplicates = delivered.length - new Set(delivered).size;
    t.diagnostic(`victim held ${orphaned} leases; returned ${returnedMs} ms after the kill; ${duplicates} duplicates`);
    assert.ok(duplicates <= orphaned, `${duplicates} repeats, more than the ${orphaned} deliveries the dead process had in flight`);
  });
});
