import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Ordering } from 'svix';
import { startRelay, type TestRelay } from '../helpers/relay.js';
import { assertErrorBody, collectPages, recordingSvix, rejectsWith } from './support.js';

describe('applications through the svix SDK', () => {
  let relay: TestRelay;
  before(async () => {
    relay = await startRelay();
  });
  after(() => relay.close());

  it('creates an app and reads it back by id and by uid', async () => {
    const { svix, calls } = recordingSvix(relay);
    const app = await svix.application.create({ name: 'Acme', uid: 'acme-1', metadata: { plan: 'pro' } });
    assert.match(app.id, /^app_/);
    assert.equal(app.name, 'Acme');
    assert.equal(app.uid, 'acme-1');
    assert.deepEqual(app.metadata, { plan: 'pro' });
    assert.ok(app.createdAt instanceof Date && !Number.isNaN(app.createdAt.getTime()));
    assert.ok(Math.abs(app.createdAt.getTime() - Date.now()) < 60_000);
    assert.equal(calls.at(-1)!.status, 201);

    const byId = await relay.svix.application.get(app.id);
    const byUid = await relay.svix.application.get('acme-1');
    assert.deepEqual(byId, app);
    assert.deepEqual(byUid, app);
  });

  it('getOrCreate returns the existing app for a known uid and creates one for a new uid', async () => {
    const { svix, calls } = recordingSvix(relay);
    const first = await svix.application.getOrCreate({ name: 'Goc', uid: 'goc-1' });
    assert.equal(calls.at(-1)!.status, 201);
    const again = await svix.application.getOrCreate({ name: 'Another name', uid: 'goc-1' });
    assert.equal(calls.at(-1)!.status, 200);
    assert.equal(again.id, first.id);
    assert.equal(again.name, 'Goc', 'the existing app is returned untouched');
    const other = await svix.application.getOrCreate({ name: 'Goc 2', uid: 'goc-2' });
    assert.notEqual(other.id, first.id);

    const { items } = await collectPages((iterator) => relay.svix.application.list({ limit: 250, iterator }));
    assert.equal(items.filter((a) => a.uid === 'goc-1').length, 1);
  });

  it('refuses a second app with the same uid (409) and keeps the first', async () => {
    const original = await relay.svix.application.create({ name: 'Dup', uid: 'dup-1' });
    const body = await rejectsWith(relay.svix.application.create({ name: 'Dup again', uid: 'dup-1' }), 409);
    assertErrorBody(body, 'conflict');
    assert.equal((await relay.svix.application.get('dup-1')).id, original.id);
    assert.equal((await relay.svix.application.get('dup-1')).name, 'Dup');
  });

  it('lists every app exactly once across pages of a small limit', async () => {
    const fresh = await startRelay();
    try {
      const created = new Set<string>();
      for (let i = 0; i < 7; i++) created.add((await fresh.svix.application.create({ name: `App ${i}` })).id);

      const { items, pages } = await collectPages((iterator) => fresh.svix.application.list({ limit: 2, iterator }));
      const ids = items.map((a) => a.id);
      assert.equal(pages, 4);
      assert.equal(new Set(ids).size, ids.length, 'no app appears twice');
      assert.deepEqual(new Set(ids), created);

      const ascending = await collectPages((iterator) => fresh.svix.application.list({ limit: 3, iterator, order: Ordering.Ascending }));
      assert.deepEqual(
        ascending.items.map((a) => a.id),
        [...ids].reverse(),
        'ascending order is the reverse of the default (newest first)',
      );
      const first = await fresh.svix.application.list({ limit: 250 });
      assert.equal(first.done, true);
      assert.equal(first.data.length, 7);
    } finally {
      await fresh.close();
    }
  });

  it('replaces an app with update (PUT) and changes only given fields with patch', async () => {
    const app = await relay.svix.application.create({ name: 'Before', uid: 'upd-1', metadata: { a: '1' }, throttleRate: 10 });
    const updated = await relay.svix.application.upsert(app.id, { name: 'After', uid: 'upd-2' });
    assert.equal(updated.id, app.id);
    assert.equal(updated.name, 'After');
    assert.equal(updated.uid, 'upd-2');
    assert.deepEqual(updated.metadata, {}, 'PUT replaces: metadata not sent is cleared');
    assert.equal(updated.throttleRate, null);
    assert.ok(updated.updatedAt.getTime() >= app.updatedAt.getTime());
    await rejectsWith(relay.svix.application.get('upd-1'), 404);

    const patched = await relay.svix.application.patch('upd-2', { metadata: { tier: 'gold' } });
    assert.equal(patched.name, 'After', 'patch keeps fields it was not given');
    assert.equal(patched.uid, 'upd-2');
    assert.deepEqual(patched.metadata, { tier: 'gold' });
    const cleared = await relay.svix.application.patch(app.id, { uid: null });
    assert.equal(cleared.uid, null, 'an explicit null clears the uid');
    assert.deepEqual(await relay.svix.application.get(app.id), cleared);
  });

  it('deletes an app, after which it is 404 by id and by uid', async () => {
    const { svix, calls } = recordingSvix(relay);
    const app = await svix.application.create({ name: 'Doomed', uid: 'doomed-1' });
    await svix.endpoint.create(app.id, { url: 'http://127.0.0.1:9/hook' });
    await svix.application.delete(app.id);
    assert.equal(calls.at(-1)!.status, 204);
    for (const id of [app.id, 'doomed-1']) assertErrorBody(await rejectsWith(relay.svix.application.get(id), 404), 'not_found');
    await rejectsWith(relay.svix.endpoint.list(app.id), 404);
    await rejectsWith(relay.svix.application.delete(app.id), 404);
    // The uid is free again.
    const reborn = await relay.svix.application.create({ name: 'Reborn', uid: 'doomed-1' });
    assert.notEqual(reborn.id, app.id);
  });
});
