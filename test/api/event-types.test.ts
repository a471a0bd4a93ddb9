import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startRelay, type TestRelay } from '../helpers/relay.js';
import { assertErrorBody, collectPages, recordingSvix, rejectsWith } from './support.js';

describe('event types through the svix SDK', () => {
  let relay: TestRelay;
  before(async () => {
    relay = await startRelay();
  });
  after(() => relay.close());

  const names = async (includeArchived: boolean) =>
    (await collectPages((iterator) => relay.svix.eventType.list({ limit: 2, iterator, includeArchived }))).items.map((e) => e.name);

  it('creates an event type and reads it back', async () => {
    const { svix, calls } = recordingSvix(relay);
    const schemas = { '1': { type: 'object', properties: { amount: { type: 'integer' } } } };
    const created = await svix.eventType.create({ name: 'invoice.paid', description: 'An invoice was paid', schemas, groupName: 'billing' });
    assert.equal(calls.at(-1)!.status, 201);
    assert.equal(created.name, 'invoice.paid');
    assert.equal(created.description, 'An invoice was paid');
    assert.equal(created.archived, false);
    assert.equal(created.deprecated, false);
    assert.equal(created.groupName, 'billing');
    assert.deepEqual(created.schemas, schemas);
    assert.ok(!Number.isNaN(created.createdAt.getTime()));

    assert.deepEqual(await relay.svix.eventType.get('invoice.paid'), created);
    assertErrorBody(await rejectsWith(relay.svix.eventType.create({ name: 'invoice.paid', description: 'again' }), 409), 'conflict');
    assertErrorBody(await rejectsWith(relay.svix.eventType.get('no.such.type'), 404), 'not_found');
  });

  it('hides archived types from the list unless includeArchived is set', async () => {
    await relay.svix.eventType.create({ name: 'list.a', description: 'a' });
    await relay.svix.eventType.create({ name: 'list.b', description: 'b', archived: true });
    await relay.svix.eventType.create({ name: 'list.c', description: 'c' });

    const visible = await names(false);
    assert.ok(visible.includes('list.a') && visible.includes('list.c'));
    assert.ok(!visible.includes('list.b'), 'archived type is hidden by default');
    const all = await names(true);
    assert.ok(all.includes('list.b'));
    assert.equal(new Set(all).size, all.length, 'no duplicates across pages');
    assert.deepEqual(all.filter((n) => n.startsWith('list.')), ['list.a', 'list.b', 'list.c']);
  });

  it('patches only the given fields and replaces all of them with update', async () => {
    await relay.svix.eventType.create({ name: 'user.signup', description: 'first', groupName: 'users', featureFlags: ['beta'] });
    const patched = await relay.svix.eventType.patch('user.signup', { deprecated: true });
    assert.equal(patched.deprecated, true);
    assert.equal(patched.description, 'first', 'patch keeps the description');
    assert.equal(patched.groupName, 'users');
    assert.deepEqual(patched.featureFlags, ['beta']);

    const updated = await relay.svix.eventType.upsert('user.signup', { description: 'second' });
    assert.equal(updated.description, 'second');
    assert.equal(updated.deprecated, false, 'update replaces: fields not sent go back to defaults');
    assert.equal(updated.groupName, null);
    assert.deepEqual(await relay.svix.eventType.get('user.signup'), updated);

    // update creates a type that does not exist yet
    const made = await relay.svix.eventType.upsert('user.deleted', { description: 'made by PUT' });
    assert.equal((await relay.svix.eventType.get('user.deleted')).description, made.description);
    assertErrorBody(await rejectsWith(relay.svix.eventType.patch('user.nope', { deprecated: true }), 404), 'not_found');
  });

  it('delete archives (still readable, hidden from the list) while expunge removes the type', async () => {
    await relay.svix.eventType.create({ name: 'order.archived', description: 'x' });
    await relay.svix.eventType.create({ name: 'order.expunged', description: 'y' });

    await relay.svix.eventType.delete('order.archived');
    const archived = await relay.svix.eventType.get('order.archived');
    assert.equal(archived.archived, true);
    assert.equal(archived.description, 'x');
    assert.ok(!(await names(false)).includes('order.archived'));
    assert.ok((await names(true)).includes('order.archived'));

    await relay.svix.eventType.delete('order.expunged', { expunge: true });
    await rejectsWith(relay.svix.eventType.get('order.expunged'), 404);
    assert.ok(!(await names(true)).includes('order.expunged'));

    // Creating an archived name again brings it back.
    const revived = await relay.svix.eventType.create({ name: 'order.archived', description: 'back' });
    assert.equal(revived.archived, false);
    assert.ok((await names(false)).includes('order.archived'));
    await rejectsWith(relay.svix.eventType.delete('order.never'), 404);
  });
});
