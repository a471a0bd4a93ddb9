import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { AcceptResult } from '../../src/store/store.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { attemptOf, endpointInput } from '../postgres/conformance.js';

const T0 = Date.UTC(2026, 0, 1);
const DAY = 86_400_000;

const idOf = (result: AcceptResult) => {
  assert.equal(result.kind, 'accepted');
  return (result as Extract<AcceptResult, { kind: 'accepted' }>).message.id;
};

/** Every pass of a run, as the retention loop makes them; the payloads expunged. */
async function pruneAll(store: SqliteStore, before: number, limit: number): Promise<number> {
  let payloads = 0;
  for (let calls = 0; ; calls++) {
    assert.ok(calls < 100, 'pruning never finishes');
    const result = await store.prune(before, limit);
    assert.ok(result.payloads <= limit, 'a pass stays within its batch');
    payloads += result.payloads;
    if (result.done) return payloads;
  }
}

/** A store in a directory of its own, with an app and an endpoint; `accept(now)` makes a message at that time. */
async function fresh() {
  const dir = mkdtempSync(join(tmpdir(), 'hookrelay-retention-'));
  const store = new SqliteStore({ path: join(dir, 'store.db') });
  const created = await store.createApp({ name: 'a', uid: null, rateLimit: null, metadata: {} }, T0);
  await store.createEndpoint(created.id, endpointInput(), 'whsec_x', T0);
  const accept = (now: number) =>
    store.accept({ appId: created.id, eventType: 'e', eventId: null, payload: Buffer.from(`{"at":${now}}`), contentType: 'application/json', channels: null, tags: null, idempotencyKey: null, idempotencyTtlMs: 0, now, dueAt: now });
  const close = async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  };
  return { store, accept, close };
}

const app = (store: SqliteStore) => (store.db.prepare('SELECT id FROM app').get() as { id: string }).id;

/**
 * Retention on SQLite walks the messages by id from a cursor kept in the database, and keeps the messages it passed
 * while their deliveries were unfinished aside until they end: no index on created_at for every accept to write, and
 * no pass that walks the whole history again.
 */
describe('SQLite retention walk', () => {
  it('goes on after a restart from where it stopped, and expunges a held message once its delivery ends', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'hookrelay-retention-'));
    const path = join(dir, 'store.db');
    let store = new SqliteStore({ path });
    t.after(async () => {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    });
    const app = await store.createApp({ name: 'a', uid: null, rateLimit: null, metadata: {} }, T0);
    await store.createEndpoint(app.id, endpointInput(), 'whsec_x', T0);
    const accept = (now: number) =>
      store.accept({ appId: app.id, eventType: 'e', eventId: null, payload: Buffer.from(`{"at":${now}}`), contentType: 'application/json', channels: null, tags: null, idempotencyKey: null, idempotencyTtlMs: 0, now, dueAt: now });
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) ids.push(idOf(await accept(T0 + i)));
    const claimed = await store.claim({ owner: 'o', now: T0 + 10, limit: 100, leaseMs: 60_000 });
    // All but ids[2] are delivered; ids[2] stays in flight.
    await store.complete(claimed.filter((c) => c.message.id !== ids[2]).map((c) => ({ owner: 'o', attempt: attemptOf(c, T0 + 20, true), next: { kind: 'succeeded' as const } })));
    const before = T0 + 30 * DAY;

    // One pass of three, then a restart.
    const first = await store.prune(before, 3);
    assert.equal(first.payloads, 2, 'ids[0] and ids[1] expunged; ids[2] held');
    assert.equal(first.done, false);
    await store.close();
    store = new SqliteStore({ path });
    const walked = (store.db.prepare('SELECT message_id FROM retention_cursor').get() as { message_id: string }).message_id;
    assert.equal(walked, ids[2], 'the cursor was kept in the database');

    assert.equal(await pruneAll(store, before, 3), 3, 'the rest, without visiting the first three again');
    for (const [i, id] of ids.entries()) {
      const payload = (await store.getMessage(app.id, id))!.payload;
      if (i === 2) assert.ok(payload, 'a message whose delivery is in flight keeps its payload');
      else assert.equal(payload, null, `${id} kept its payload`);
    }
    assert.deepEqual(store.db.prepare('SELECT message_id FROM retention_held').all(), [{ message_id: ids[2] }]);

    // A message newer than the retention period is not walked past: it is looked at once it is old enough.
    const late = idOf(await accept(T0 + 40 * DAY));
    assert.equal(await pruneAll(store, before, 3), 0);
    assert.ok((await store.getMessage(app.id, late))!.payload, 'a recent message is untouched');

    // The held message's delivery ends (after a restart, again): the next run expunges it and forgets it.
    await store.close();
    store = new SqliteStore({ path });
    const [again, ...more] = await store.claim({ owner: 'o', now: T0 + 30, limit: 100, leaseMs: 60_000 });
    assert.deepEqual([again?.message.id, more], [ids[2], []], 'a lease ends with its process: the delivery goes again');
    await store.complete([{ owner: 'o', attempt: attemptOf(again, T0 + 31, true), next: { kind: 'succeeded' } }]);
    assert.equal(await pruneAll(store, before, 3), 1);
    assert.equal((await store.getMessage(app.id, ids[2]))!.payload, null);
    assert.deepEqual(store.db.prepare('SELECT message_id FROM retention_held').all(), []);
    const [lateDelivery] = await store.claim({ owner: 'o', now: T0 + 40 * DAY, limit: 10, leaseMs: 60_000 });
    assert.equal(lateDelivery.message.id, late);
    await store.complete([{ owner: 'o', attempt: attemptOf(lateDelivery, T0 + 40 * DAY, true), next: { kind: 'succeeded' } }]);
    assert.equal(await pruneAll(store, T0 + 50 * DAY, 3), 1, 'the late message, once it is old enough');
    assert.equal((await store.getMessage(app.id, late))!.payload, null);
  });

  it('gives held messages a quarter of a pass: many of them do not stall the walk', async (t) => {
    const { store, accept, close } = await fresh();
    t.after(close);
    // Twelve messages whose deliveries stay pending (never claimed) are walked past and held.
    for (let i = 0; i < 12; i++) await accept(T0 + i);
    assert.equal(await pruneAll(store, T0 + 30 * DAY, 4), 0);
    assert.equal((store.db.prepare('SELECT count(*) AS n FROM retention_held').get() as { n: number }).n, 12);
    // Four more, delivered: the next pass expunges three of them although twelve held messages wait to be looked at.
    const later: string[] = [];
    for (let i = 0; i < 4; i++) later.push(idOf(await accept(T0 + 100 + i)));
    const claimed = (await store.claim({ owner: 'o', now: T0 + 200, limit: 100, leaseMs: 60_000 })).filter((c) => later.includes(c.message.id));
    await store.complete(claimed.map((c) => ({ owner: 'o', attempt: attemptOf(c, T0 + 201, true), next: { kind: 'succeeded' as const } })));
    const pass = await store.prune(T0 + 30 * DAY, 4);
    assert.equal(pass.payloads, 3, 'one held message looked at, three walked');
  });

  it('expunges a held message only while it is older than the retention period of the pass', async (t) => {
    const { store, accept, close } = await fresh();
    t.after(close);
    const id = idOf(await accept(T0));
    const [delivery] = await store.claim({ owner: 'o', now: T0 + 1, limit: 10, leaseMs: 60_000 });
    assert.equal(await pruneAll(store, T0 + 30 * DAY, 4), 0, 'in flight: held');
    await store.complete([{ owner: 'o', attempt: attemptOf(delivery, T0 + 2, true), next: { kind: 'succeeded' } }]);
    // The retention period grew to 90 days: a message 31 days old keeps its payload.
    assert.equal(await pruneAll(store, T0 + 31 * DAY - 90 * DAY, 4), 0);
    assert.ok((await store.getMessage(app(store), id))!.payload);
    assert.equal(await pruneAll(store, T0 + 91 * DAY - 90 * DAY, 4), 1);
    assert.equal((await store.getMessage(app(store), id))!.payload, null);
  });

  it('walks again from the floor when the clock goes back, so a message made after the step is not skipped', async (t) => {
    const { store, accept, close } = await fresh();
    t.after(close);
    for (let i = 0; i < 3; i++) await accept(T0 + 10 * DAY + i);
    const delivered = async (now: number) => {
      const id = idOf(await accept(now));
      const claimed = (await store.claim({ owner: 'o', now, limit: 100, leaseMs: 60_000 })).filter((c) => c.message.id === id);
      await store.complete(claimed.map((c) => ({ owner: 'o', attempt: attemptOf(c, now, true), next: { kind: 'succeeded' as const } })));
      return id;
    };
    // The walk gets to day 10, then the clock steps back to day 2 (a VM restored from a snapshot, an NTP step).
    await pruneAll(store, T0 + 11 * DAY, 4);
    assert.equal(await pruneAll(store, T0 + DAY, 4), 0);
    const afterStep = await delivered(T0 + 2 * DAY);
    assert.equal(await pruneAll(store, T0 + 3 * DAY, 4), 1);
    assert.equal((await store.getMessage(app(store), afterStep))!.payload, null);
  });
});
