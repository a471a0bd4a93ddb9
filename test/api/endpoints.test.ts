import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Webhook } from 'svix1';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { startRelay, type TestRelay } from '../helpers/relay.js';
import { assertErrorBody, assertValidation, collectPages, deliveryOf, headersOf, recordingSvix1, rejectsWith, verify } from './support.js';

const newSecret = () => 'whsec_' + randomBytes(32).toString('base64');

describe('endpoints through the svix 1.x SDK', () => {
  let relay: TestRelay;
  let receiver: Receiver;
  before(async () => {
    relay = await startRelay();
    receiver = await startReceiver(() => ({ status: 200, body: 'ok' }));
  });
  after(async () => {
    await relay.close();
    await receiver.close();
  });

  const newApp = (name: string) => relay.svix1.application.create({ name });

  /** Sends one message and returns the request the receiver got for it. */
  async function deliverOne(appId: string) {
    const msg = await relay.svix1.message.create(appId, { eventType: 'test.event', payload: { n: randomBytes(4).toString('hex') } });
    return { msg, request: await deliveryOf(receiver, msg.id) };
  }

  it('creates an endpoint with every svix field and reads it back by id and uid', async () => {
    const app = await newApp('ep-create');
    const secret = newSecret();
    const { svix, calls } = recordingSvix1(relay);
    const ep = await svix.endpoint.create(app.id, {
      url: 'https://example.com/hooks',
      description: 'main',
      uid: 'ep-main',
      filterTypes: ['a.b', 'c.d'],
      channels: ['eu', 'us'],
      secret,
      headers: { 'X-Tenant': 't1' },
      disabled: true,
      metadata: { team: 'core' },
      version: 2,
      throttleRate: 5,
    });
    assert.equal(calls.at(-1)!.status, 201);
    assert.match(ep.id, /^ep_/);
    assert.equal(ep.url, 'https://example.com/hooks');
    assert.equal(ep.description, 'main');
    assert.equal(ep.uid, 'ep-main');
    assert.deepEqual(ep.filterTypes, ['a.b', 'c.d']);
    assert.deepEqual(ep.channels, ['eu', 'us']);
    assert.equal(ep.disabled, true);
    assert.deepEqual(ep.metadata, { team: 'core' });
    assert.equal(ep.version, 2);
    assert.equal(ep.throttleRate, 5);
    assert.equal((ep as unknown as Record<string, unknown>).secret, undefined, 'the secret is never part of EndpointOut');

    assert.deepEqual(await relay.svix1.endpoint.get(app.id, ep.id), ep);
    assert.deepEqual(await relay.svix1.endpoint.get(app.id, 'ep-main'), ep);
    assert.equal((await relay.svix1.endpoint.getSecret(app.id, 'ep-main')).key, secret);
    assert.deepEqual((await relay.svix1.endpoint.getHeaders(app.id, ep.id)).headers, { 'X-Tenant': 't1' });
    assertErrorBody(await rejectsWith(relay.svix1.endpoint.create(app.id, { url: 'https://example.com/2', uid: 'ep-main' }), 409), 'conflict');
  });

  it('generates a whsec_ secret of 24 random bytes when none is given, and a bare base64 secret gets the prefix', async () => {
    const app = await newApp('ep-secret');
    const a = await relay.svix1.endpoint.create(app.id, { url: 'https://example.com/a' });
    const b = await relay.svix1.endpoint.create(app.id, { url: 'https://example.com/b', secret: null });
    const keys = [(await relay.svix1.endpoint.getSecret(app.id, a.id)).key, (await relay.svix1.endpoint.getSecret(app.id, b.id)).key];
    for (const key of keys) {
      assert.match(key, /^whsec_[A-Za-z0-9+/]+={0,2}$/);
      assert.equal(Buffer.from(key.slice(6), 'base64').length, 24);
    }
    assert.notEqual(keys[0], keys[1]);
    assert.equal(a.disabled, false);
    assert.equal(a.description, '');
    assert.equal(a.version, 1);
    assert.deepEqual(a.metadata, {});
    assert.equal(a.filterTypes ?? null, null);

    const bare = randomBytes(24).toString('base64');
    const c = await relay.svix1.endpoint.create(app.id, { url: 'https://example.com/c', secret: bare });
    assert.equal((await relay.svix1.endpoint.getSecret(app.id, c.id)).key, `whsec_${bare}`);
  });

  it('lists endpoints across pages, replaces with update and merges with patch', async () => {
    const app = await newApp('ep-crud');
    const ids = new Set<string>();
    for (let i = 0; i < 5; i++) ids.add((await relay.svix1.endpoint.create(app.id, { url: `https://example.com/${i}` })).id);
    const { items, pages } = await collectPages((iterator) => relay.svix1.endpoint.list(app.id, { limit: 2, iterator }));
    assert.equal(pages, 3);
    assert.equal(items.length, 5);
    assert.deepEqual(new Set(items.map((e) => e.id)), ids);

    const [id] = ids;
    await relay.svix1.endpoint.patch(app.id, id, { filterTypes: ['x.y'], channels: ['c1'], uid: 'ep-u', description: 'd', metadata: { k: 'v' } });
    const updated = await relay.svix1.endpoint.update(app.id, id, { url: 'https://example.org/new', description: 'replaced' });
    assert.equal(updated.url, 'https://example.org/new');
    assert.equal(updated.description, 'replaced');
    assert.equal(updated.filterTypes ?? null, null, 'PUT clears filterTypes not sent');
    assert.equal(updated.channels ?? null, null);
    assert.equal(updated.uid ?? null, null);

    const patched = await relay.svix1.endpoint.patch(app.id, id, { disabled: true, channels: ['c2'] });
    assert.equal(patched.url, 'https://example.org/new', 'patch keeps the url');
    assert.equal(patched.description, 'replaced');
    assert.equal(patched.disabled, true);
    assert.deepEqual(patched.channels, ['c2']);
    const unfiltered = await relay.svix1.endpoint.patch(app.id, id, { channels: null });
    assert.equal(unfiltered.channels ?? null, null, 'an explicit null clears channels');
    assert.equal(unfiltered.disabled, true);
    assert.deepEqual(await relay.svix1.endpoint.get(app.id, id), unfiltered);

    const { calls, svix } = recordingSvix1(relay);
    await svix.endpoint.delete(app.id, id);
    assert.equal(calls.at(-1)!.status, 204);
    assertErrorBody(await rejectsWith(relay.svix1.endpoint.get(app.id, id), 404), 'not_found');
    assert.equal((await relay.svix1.endpoint.list(app.id, { limit: 250 })).data.length, 4);
    await rejectsWith(relay.svix1.endpoint.delete(app.id, id), 404);
  });

  it('rotates the secret and signs with both old and new secret during the grace period', async () => {
    const app = await newApp('ep-rotate');
    const ep = await relay.svix1.endpoint.create(app.id, { url: receiver.url });
    const oldKey = (await relay.svix1.endpoint.getSecret(app.id, ep.id)).key;

    const before = await deliverOne(app.id);
    assert.equal((headersOf(before.request)['webhook-signature'] ?? '').split(' ').length, 1);
    verify(oldKey, before.request);

    const { svix, calls } = recordingSvix1(relay);
    await svix.endpoint.rotateSecret(app.id, ep.id);
    assert.equal(calls.at(-1)!.status, 200, 'the new secret comes back (the 1.x SDK ignores it)');
    const newKey = (await relay.svix1.endpoint.getSecret(app.id, ep.id)).key;
    assert.notEqual(newKey, oldKey);
    assert.match(newKey, /^whsec_/);

    const afterRotation = await deliverOne(app.id);
    assert.deepEqual(verify(newKey, afterRotation.request), JSON.parse(afterRotation.request.body.toString()));
    assert.deepEqual(verify(oldKey, afterRotation.request), JSON.parse(afterRotation.request.body.toString()));
    assert.throws(() => new Webhook(newSecret()).verify(afterRotation.request.body.toString(), headersOf(afterRotation.request)));

    // Rotating to a chosen key with no grace period: the key it replaces stops signing at once.
    const chosen = newSecret();
    await relay.svix1.endpoint.rotateSecret(app.id, ep.id, { key: chosen, gracePeriodSeconds: 0 });
    assert.equal((await relay.svix1.endpoint.getSecret(app.id, ep.id)).key, chosen);
    const third = await deliverOne(app.id);
    verify(chosen, third.request);
    assert.throws(() => new Webhook(newKey).verify(third.request.body.toString(), headersOf(third.request)), 'the previous key stops signing when its grace is 0');
    verify(oldKey, third.request); // the first key keeps its own 24 h grace from the first rotation
  });

  it('delivers custom headers, which never replace the webhook-* signature headers', async () => {
    const app = await newApp('ep-headers');
    const ep = await relay.svix1.endpoint.create(app.id, { url: receiver.url, headers: { 'X-One': '1' } });
    const secret = (await relay.svix1.endpoint.getSecret(app.id, ep.id)).key;

    await relay.svix1.endpoint.updateHeaders(app.id, ep.id, {
      headers: { 'X-Two': '2', 'X-Three': '3', 'webhook-id': 'msg_forged', 'webhook-signature': 'v1,forged', 'webhook-timestamp': '1', 'svix-id': 'msg_forged', 'svix-signature': 'v1,forged', 'svix-timestamp': '1' },
    });
    const replaced = await relay.svix1.endpoint.getHeaders(app.id, ep.id);
    assert.equal(replaced.headers['X-One'], undefined, 'updateHeaders replaces the whole set');
    assert.equal(replaced.headers['X-Two'], '2');
    assert.ok(Array.isArray(replaced.sensitive));

    await relay.svix1.endpoint.patchHeaders(app.id, ep.id, { headers: { 'X-Four': '4', 'X-Two': 'two' }, deleteHeaders: ['X-Three'] });
    const merged = (await relay.svix1.endpoint.getHeaders(app.id, ep.id)).headers;
    assert.deepEqual(
      Object.fromEntries(Object.entries(merged).filter(([k]) => k.startsWith('X-'))),
      { 'X-Two': 'two', 'X-Four': '4' },
    );

    const { msg, request } = await deliverOne(app.id);
    assert.equal(request.headers['x-two'], 'two');
    assert.equal(request.headers['x-four'], '4');
    assert.equal(request.headers['x-three'], undefined);
    assert.equal(request.headers['x-one'], undefined);
    assert.equal(request.headers['webhook-id'], msg.id);
    assert.notEqual(request.headers['webhook-signature'], 'v1,forged');
    // svix's Webhook.verify prefers svix-* over webhook-* headers: hookrelay sets both, with the same values, never the forged ones.
    for (const name of ['id', 'signature', 'timestamp']) assert.equal(request.headers[`svix-${name}`], request.headers[`webhook-${name}`], name);
    assert.ok(Math.abs(Number(request.headers['webhook-timestamp']) - Date.now() / 1000) < 60);
    verify(secret, request);
  });

  it('accepts the ordering and maxInFlight extension fields over raw HTTP', async () => {
    const app = await newApp('ep-ext');
    const created = await relay.api('POST', `/api/v1/app/${app.id}/endpoint`, { url: 'https://example.com/fifo', ordering: 'fifo', maxInFlight: 3 });
    assert.equal(created.status, 201);
    assert.equal(created.body.ordering, 'fifo');
    assert.equal(created.body.maxInFlight, 3);
    assert.equal(created.body.disabledReason, null);
    assert.deepEqual(created.body.circuit, { state: 'closed', openUntil: null, consecutiveFailures: 0, failingSince: null, parkedMessages: 0 });
    // The circuit is read-only: it is not an input field.
    const writeCircuit = await relay.api('PATCH', `/api/v1/app/${app.id}/endpoint/${created.body.id}`, { circuit: { state: 'open' } });
    assert.equal(writeCircuit.status, 422);

    const plain = await relay.svix1.endpoint.create(app.id, { url: 'https://example.com/plain' });
    const read = await relay.api('GET', `/api/v1/app/${app.id}/endpoint/${plain.id}`);
    assert.equal(read.body.ordering, 'parallel', 'default ordering');
    assert.equal(read.body.maxInFlight, 32, 'default cap is --endpoint-concurrency');

    const patched = await relay.api('PATCH', `/api/v1/app/${app.id}/endpoint/${created.body.id}`, { maxInFlight: 7 });
    assert.equal(patched.status, 200);
    assert.equal(patched.body.maxInFlight, 7);
    assert.equal(patched.body.ordering, 'fifo', 'patch keeps ordering');
    // An SDK update (which cannot express the extensions) leaves them as they were.
    await relay.svix1.endpoint.update(app.id, created.body.id, { url: 'https://example.com/fifo2' });
    const kept = await relay.api('GET', `/api/v1/app/${app.id}/endpoint/${created.body.id}`);
    assert.equal(kept.body.ordering, 'fifo');
    assert.equal(kept.body.maxInFlight, 7);

    const bad = await relay.api('POST', `/api/v1/app/${app.id}/endpoint`, { url: 'https://example.com/x', ordering: 'random' });
    assert.equal(bad.status, 422);
    assertValidation(bad.body, ['body', 'ordering']);
    const zero = await relay.api('PATCH', `/api/v1/app/${app.id}/endpoint/${plain.id}`, { maxInFlight: 0 });
    assert.equal(zero.status, 422);
    assertValidation(zero.body, ['body', 'maxInFlight']);
  });
});
