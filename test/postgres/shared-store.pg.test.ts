import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import type { ClaimedDelivery } from '../../src/domain/types.js';
import { PostgresStore } from '../../src/store/postgres/postgres-store.js';
import type { AcceptInput } from '../../src/store/store.js';
import { freshDatabase, skipWithoutPostgres, type TestDatabase } from '../helpers/postgres.js';
import { startReceiver } from '../helpers/receiver.js';
import { startRelayOn } from '../helpers/relay.js';
import { waitUntil } from '../helpers/wait.js';
import { attemptOf, endpointInput } from './conformance.js';

/** What only a shared store has to get right: several processes (here: several pools) on one database. */

const T0 = Date.UTC(2026, 0, 1);

const acceptInput = (appId: string, eventType: string, i: number): AcceptInput => ({
  appId,
  eventType,
  eventId: null,
  payload: Buffer.from(JSON.stringify({ i })),
  contentType: 'application/json',
  channels: null,
  tags: null,
  idempotencyKey: null,
  idempotencyTtlMs: 60_000,
  now: T0 + i,
  dueAt: T0,
});

describe('PostgreSQL store shared by several processes', { skip: skipWithoutPostgres() }, () => {
  let database: TestDatabase;
  const stores: PostgresStore[] = [];
  const open = async () => {
    const store = await PostgresStore.open({ url: database.url, poolSize: 4 });
    stores.push(store);
    return store;
  };
  before(async () => {
    database = await freshDatabase();
  });
  after(async () => {
    await Promise.all(stores.map((s) => s.close()));
    await database?.drop();
  });

  it('keeps each endpoint’s cap and FIFO order across four processes claiming at the same time', async () => {
    const processes = await Promise.all([open(), open(), open(), open()]);
    const [first] = processes;
    const app = await first.createApp({ name: 'caps', uid: null, rateLimit: null, metadata: {} }, T0);
    const capped = await first.createEndpoint(app.id, endpointInput({ maxInFlight: 5, filterTypes: ['bulk'] }), 's', T0);
    const fifo = await first.createEndpoint(app.id, endpointInput({ ordering: 'fifo', filterTypes: ['ordered'] }), 's', T0);
    for (let i = 0; i < 120; i++) await first.accept(acceptInput(app.id, 'bulk', i));
    for (let i = 0; i < 30; i++) await first.accept(acceptInput(app.id, 'ordered', 1000 + i));

    const delivered = new Map<number, number>();
    const fifoOrder: number[] = [];
    for (let round = 0; delivered.size < 150; round++) {
      assert.ok(round < 400, `only ${delivered.size} of 150 deliveries done after 400 rounds`);
      // Every process claims at once; between rounds every claimed delivery is finished.
      const claims = await Promise.all(processes.map((store, p) => store.claim({ owner: `p${p}`, now: T0 + 1_000, limit: 20, leaseMs: 60_000 })));
      const all = claims.flat();
      const per = (id: string) => all.filter((c) => c.endpoint.id === id).length;
      assert.ok(per(capped.id) <= 5, `round ${round}: ${per(capped.id)} deliveries of an endpoint capped at 5 in flight`);
      assert.ok(per(fifo.id) <= 1, `round ${round}: ${per(fifo.id)} deliveries of a FIFO endpoint in flight`);
      for (const c of all) {
        assert.ok(!delivered.has(c.delivery.id), `delivery ${c.delivery.id} claimed twice`);
        delivered.set(c.delivery.id, round);
        if (c.endpoint.id === fifo.id) fifoOrder.push(JSON.parse(Buffer.from(c.message.payload!).toString()).i);
      }
      await Promise.all(
        claims.map((claimed, p) =>
          processes[p].complete(
            claimed.map((c: ClaimedDelivery) => ({
              owner: `p${p}`,
              attempt: attemptOf(c, T0 + 1_000, true),
              next: { kind: 'succeeded' as const },
            })),
          ),
        ),
      );
    }
    assert.deepEqual(fifoOrder, Array.from({ length: 30 }, (_, i) => 1000 + i), 'FIFO deliveries were claimed out of accept order');
  });

  it('shares a rate-limited endpoint’s budget between processes: their reserved send slots never come closer than 1/rate', async () => {
    const processes = await Promise.all([open(), open(), open(), open()]);
    const [first] = processes;
    const app = await first.createApp({ name: 'paced', uid: null, rateLimit: null, metadata: {} }, T0);
    const limited = await first.createEndpoint(app.id, endpointInput({ rateLimit: 20, maxInFlight: 100 }), 's', T0);
    for (let i = 0; i < 60; i++) await first.accept(acceptInput(app.id, 'paced', i));
    const slots: number[] = [];
    for (let step = 0; slots.length < 60; step++) {
      assert.ok(step < 200, `only ${slots.length} of 60 deliveries claimed after 200 rounds`);
      // All four claim at the same instant; the instants are not aligned with the 50 ms slots.
      const now = T0 + 1_000 + step * 37;
      const claims = await Promise.all(processes.map((store, p) => store.claim({ owner: `p${p}`, now, limit: 50, leaseMs: 60_000 })));
      for (const c of claims.flat()) {
        assert.equal(c.endpoint.id, limited.id);
        assert.ok(c.notBefore !== undefined && c.notBefore >= now, 'a slot is never in the past');
        slots.push(c.notBefore);
      }
    }
    slots.sort((a, b) => a - b);
    for (let i = 1; i < slots.length; i++) assert.ok(slots[i] - slots[i - 1] >= 50, `slots ${slots[i - 1]} and ${slots[i]} are closer than 50 ms (20/s)`);
  });

  it('keeps one circuit per endpoint across processes: concurrent outcome batches count every failure, trip it once, and do not deadlock', async () => {
    const processes = await Promise.all([open(), open(), open(), open()]);
    const [first] = processes;
    const app = await first.createApp({ name: 'breaker', uid: null, rateLimit: null, metadata: {} }, T0);
    const endpoints = [];
    for (let e = 0; e < 5; e++) endpoints.push(await first.createEndpoint(app.id, endpointInput({ maxInFlight: 100 }), 's', T0));
    for (let i = 0; i < 40; i++) await first.accept(acceptInput(app.id, 'any', i));
    const claims: ClaimedDelivery[][] = [];
    for (const [p, store] of processes.entries()) claims.push(await store.claim({ owner: `p${p}`, now: T0 + 1_000, limit: 50, leaseMs: 60_000 }));
    assert.equal(claims.flat().length, 200);
    const policy = { threshold: 10, cooldownMs: 60_000, maxCooldownMs: 60_000, disableAfterMs: 0, disableAfterParked: 0 };
    // Every process reports its failures in batches touching the endpoints in a different order, all at once.
    const changes = await Promise.all(
      claims.map((claimed, p) => {
        const shuffled = [...claimed].sort((a, b) => (p % 2 ? 1 : -1) * a.endpoint.id.localeCompare(b.endpoint.id));
        return processes[p].complete(
          shuffled.map((c, k) => ({
            owner: `p${p}`,
            attempt: attemptOf(c, T0 + 2_000 + k, false),
            next: { kind: 'retry' as const, at: T0 + 3_000, retryIndex: 1 },
          })),
          policy,
        );
      }),
    );
    for (const endpoint of endpoints) {
      const trips = changes.flat().filter((c) => c.endpointId === endpoint.id && c.opened);
      assert.equal(trips.length, 1, `endpoint ${endpoint.id} tripped ${trips.length} times`);
      const health = (await processes[3].getEndpoint(app.id, endpoint.id))!.health;
      assert.equal(health.consecutiveFailures, 40, 'a failure was lost between processes');
      assert.equal(health.trips, 1);
    }
    const later = await Promise.all(processes.map((store, p) => store.claim({ owner: `p${p}`, now: T0 + 5_000, limit: 50, leaseMs: 60_000 })));
    assert.deepEqual(later.flat(), [], 'an open circuit holds the endpoint for every process');
  });

  it('wakes the other processes (NOTIFY) after an accept that creates deliveries and after a resend, also after its LISTEN connection was cut', async () => {
    const [listener, writer] = await Promise.all([open(), open()]);
    let wakes = 0;
    const stop = listener.onWake(() => wakes++);
    try {
      const app = await writer.createApp({ name: 'wake', uid: null, rateLimit: null, metadata: {} }, T0);
      const endpoint = await writer.createEndpoint(app.id, endpointInput({}), 's', T0);
      await waitUntil('the listener to be connected (it reports its first connection)', () => wakes >= 1, 5_000);

      let before = wakes;
      const result = await writer.accept(acceptInput(app.id, 'any', 1));
      await waitUntil('a wake-up after the accept', () => wakes > before, 5_000);

      before = wakes;
      await writer.resend(app.id, result.kind === 'accepted' ? result.message.id : '', endpoint.id, T0 + 5);
      await waitUntil('a wake-up after the resend', () => wakes > before, 5_000);

      // Cut the LISTEN connection as a failover would: the listener reconnects, wakes once at once, and hears later accepts.
      before = wakes;
      const admin = new pg.Client({ connectionString: database.url });
      await admin.connect();
      try {
        const cut = await admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'hookrelay-listen' AND datname = current_database()");
        assert.ok(cut.rowCount! >= 1, 'no LISTEN connection to cut');
      } finally {
        await admin.end();
      }
      await waitUntil('the wake-up that follows a reconnect', () => wakes > before, 10_000);
      before = wakes;
      await writer.accept(acceptInput(app.id, 'any', 2));
      await waitUntil('a wake-up after an accept once reconnected', () => wakes > before, 5_000);
    } finally {
      stop();
    }
  });

  it('a starting hookrelay leaves the leases of the others alone (SQLite returns them all: it owns its file)', async (t) => {
    const shared = await freshDatabase();
    const first = await startRelayOn('postgres', { db: shared.url });
    t.after(async () => {
      await first.close();
      await shared.drop();
    });
    await first.dispatcher.stop(0);
    const app = await first.svix.application.create({ name: 'leases' });
    await first.api('POST', `/api/v1/app/${app.id}/endpoint`, { url: 'http://127.0.0.1:9/nowhere' });
    const message = await first.svix.message.create(app.id, { eventType: 'x', payload: {} });
    const [claimed] = await first.store.claim({ owner: 'another-process', now: Date.now(), limit: 1, leaseMs: 600_000 });
    assert.equal(claimed.message.id, message.id);

    const second = await startRelayOn('postgres', { db: shared.url });
    await second.close();
    const view = await first.store.listDeliveriesByMessage(app.id, message.id, { limit: 1 });
    assert.equal(view.data[0].delivery.status, 'in_flight', 'the second process returned a live lease of another process');
    assert.equal(first.store.exclusive, false);
  });

  it('an API-only process (--dispatch off) accepts into the shared store and a dispatching process delivers', async (t) => {
    const shared = await freshDatabase();
    const receiver = await startReceiver(() => ({ status: 200 }));
    const intake = await startRelayOn('postgres', { db: shared.url, dispatch: 'off' });
    let worker: Awaited<ReturnType<typeof startRelayOn>> | null = null;
    t.after(async () => {
      await intake.close();
      await worker?.close();
      await receiver.close();
      await shared.drop();
    });
    const app = await intake.svix.application.create({ name: 'split roles' });
    await intake.svix.endpoint.create(app.id, { url: receiver.url });
    const sent = await Promise.all(Array.from({ length: 20 }, (_, i) => intake.svix.message.create(app.id, { eventType: 'split', payload: { i } })));
    // The API-only process would have delivered within milliseconds; a second is a wide margin.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    assert.equal(receiver.received.length, 0, 'the API-only process delivered');
    const pending = await intake.store.listDeliveriesByMessage(app.id, sent[0].id, { limit: 1 });
    assert.equal(pending.data[0].delivery.status, 'pending');

    worker = await startRelayOn('postgres', { db: shared.url });
    await receiver.waitFor(20, 10_000);
    assert.deepEqual(new Set(receiver.received.map((r) => r.headers['webhook-id'])), new Set(sent.map((m) => m.id)));
  });

  // Last: it leaves pending deliveries, which the claim tests above would otherwise pick up.
  it('routes by content filters as they are at commit, when another process changed them after this one cached them', async () => {
    const [accepting, editing] = await Promise.all([open(), open()]);
    const app = await editing.createApp({ name: 'filters', uid: null, rateLimit: null, metadata: {} }, T0);
    const routed = async (i: number) => {
      const result = await accepting.accept(acceptInput(app.id, 'e', i));
      assert.equal(result.kind, 'accepted');
      const message = result.kind === 'accepted' ? result.message : null;
      const views = await accepting.listDeliveriesByMessage(app.id, message!.id, { limit: 10 });
      assert.equal(result.kind === 'accepted' && result.deliveries, views.data.length);
      return views.data.map((v) => v.endpoint.id).sort();
    };
    // The accepting process has seen this app with no filtered endpoint.
    const plain = await editing.createEndpoint(app.id, endpointInput(), 's', T0);
    assert.deepEqual(await routed(1), [plain.id]);
    // Another process adds one: the first accept after it already honours it.
    const odd = await editing.createEndpoint(app.id, endpointInput({ filter: { body: { i: { $in: [3, 5] } } } }), 's', T0 + 1);
    assert.deepEqual(await routed(2), [plain.id]);
    assert.deepEqual(await routed(3), [plain.id, odd.id].sort());
    // …changes it…
    await editing.updateEndpoint(app.id, odd.id, endpointInput({ filter: { body: { i: { $gte: 6 } } } }), T0 + 2);
    assert.deepEqual(await routed(5), [plain.id]);
    assert.deepEqual(await routed(6), [plain.id, odd.id].sort());
    // …and filters the endpoint that had none.
    await editing.updateEndpoint(app.id, plain.id, endpointInput({ filter: { body: { i: 7 } } }), T0 + 3);
    assert.deepEqual(await routed(8), [odd.id]);
    assert.deepEqual(await routed(7), [plain.id, odd.id].sort());
  });
});
