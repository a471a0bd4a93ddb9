import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Svix } from 'svix';
import { Webhook } from 'svix1';
import { API_KEY_CACHE_MS } from '../../src/api/api-keys.js';
import type { SealedStore } from '../../src/secrets/sealed-store.js';
import { headersOf } from '../api/support.js';
import { freshDatabase, skipWithoutPostgres, type TestDatabase } from '../helpers/postgres.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { startRelay, startRelayOn, TEST_MASTER_KEY, type TestRelay } from '../helpers/relay.js';
import { waitUntil } from '../helpers/wait.js';
import { sdkStatus } from '../api/support.js';

const KEY_FORMAT = /^hrk_(key_[0-9A-Za-z]{25})_[A-Za-z0-9_-]{43}$/;

const status = sdkStatus;

describe('per-application API keys', () => {
  let relay: TestRelay;
  let receiver: Receiver;

  before(async () => {
    relay = await startRelay();
    receiver = await startReceiver();
  });
  after(async () => {
    await relay?.close();
    await receiver?.close();
  });

  const createKey = async (appId: string, body: unknown = {}) => {
    const response = await relay.api('POST', `/api/v1/app/${appId}/api-key`, body);
    assert.equal(response.status, 201, response.text);
    return response.body as { id: string; key: string; prefix: string; name: string | null; expiresAt: string | null; appId: string };
  };
  const asKey = (key: string, method: string, path: string, body?: unknown) => relay.api(method, path, body, { token: key });

  it('is shown once at creation, listed without the key, stored as a SHA-256 digest, and revoked at once', async () => {
    const app = await relay.svix.application.create({ name: 'keyed' });
    const created = await createKey(app.id, { name: 'ci' });
    const [, id] = KEY_FORMAT.exec(created.key) ?? [];
    assert.equal(id, created.id, `a key that does not name its id: ${created.key}`);
    assert.equal(created.name, 'ci');
    assert.equal(created.appId, app.id);
    assert.ok(created.key.startsWith(created.prefix), 'the prefix is not the start of the key');

    const listed = await relay.api('GET', `/api/v1/app/${app.id}/api-key`);
    assert.equal(listed.status, 200);
    assert.deepEqual(
      listed.body.data.map((k: Record<string, unknown>) => k.id),
      [created.id],
    );
    assert.ok(!listed.text.includes(created.key), 'the list shows the key');
    assert.equal(listed.body.data[0].key, undefined);
    const stored = await relay.store.getApiKey(created.id);
    assert.equal(stored!.hash, createHash('sha256').update(created.key).digest('hex'));

    assert.equal((await asKey(created.key, 'GET', `/api/v1/app/${app.id}`)).status, 200);
    const almost = created.key.slice(0, -1) + (created.key.endsWith('A') ? 'B' : 'A');
    assert.equal((await asKey(almost, 'GET', `/api/v1/app/${app.id}`)).status, 401, 'the right id with a wrong secret was accepted');
    assert.equal((await asKey(`hrk_${created.id}_short`, 'GET', `/api/v1/app/${app.id}`)).status, 401);
    assert.equal((await asKey('hrk_key_0000000000000000000000000_' + 'A'.repeat(43), 'GET', `/api/v1/app/${app.id}`)).status, 401);

    assert.equal((await relay.api('DELETE', `/api/v1/app/${app.id}/api-key/${created.id}`)).status, 204);
    assert.equal((await asKey(created.key, 'GET', `/api/v1/app/${app.id}`)).status, 401, 'a revoked key still works in the process that revoked it');
    assert.equal((await relay.api('DELETE', `/api/v1/app/${app.id}/api-key/${created.id}`)).status, 404);
  });

  it('stops at its expiry, refuses an expiry in the past, and dies with its application', async () => {
    const app = await relay.svix.application.create({ name: 'expiring' });
    const past = await relay.api('POST', `/api/v1/app/${app.id}/api-key`, { expiresAt: new Date(Date.now() - 1000).toISOString() });
    assert.equal(past.status, 422);
    assert.deepEqual(past.body.detail[0].loc, ['body', 'expiresAt']);
    const bad = await relay.api('POST', `/api/v1/app/${app.id}/api-key`, { expiresAt: 'tomorrow' });
    assert.equal(bad.status, 422);

    // Long enough for the key to be created and used once on a loaded machine.
    const expiresAt = new Date(Date.now() + 4000);
    const short = await createKey(app.id, { expiresAt: expiresAt.toISOString() });
    assert.equal(short.expiresAt, expiresAt.toISOString());
    assert.equal((await asKey(short.key, 'GET', `/api/v1/app/${app.id}`)).status, 200);
    await waitUntil('the key to expire', async () => (await asKey(short.key, 'GET', `/api/v1/app/${app.id}`)).status === 401, 10_000);

    const lasting = await createKey(app.id);
    assert.equal((await asKey(lasting.key, 'GET', `/api/v1/app/${app.id}`)).status, 200);
    assert.equal((await relay.api('DELETE', `/api/v1/app/${app.id}`)).status, 204);
    assert.equal((await asKey(lasting.key, 'GET', '/api/v1/app')).status, 401, 'a key outlived its application');
    assert.equal(await relay.store.getApiKey(lasting.id), null);
  });

  it('gives a retried creation (same idempotency-key) the same key, without keeping the key readable in the database', async () => {
    const app = await relay.svix.application.create({ name: 'retried' });
    const send = () => relay.api('POST', `/api/v1/app/${app.id}/api-key`, { name: 'once' }, { headers: { 'idempotency-key': 'create-key-1' } });
    const first = await send();
    const again = await send();
    assert.equal(first.status, 201);
    assert.equal(again.headers.get('idempotent-replayed'), 'true');
    assert.equal(again.body.key, first.body.key);
    assert.equal((await relay.api('GET', `/api/v1/app/${app.id}/api-key`)).body.data.length, 1);
    const scope = `admin /api/v1/app/:app_id/api-key /api/v1/app/${app.id}/api-key`;
    const raw = await (relay.store as SealedStore).inner.getIdempotentResponse(scope, 'create-key-1', Date.now());
    assert.ok(raw, 'no stored answer under the expected scope');
    assert.ok(!raw.body.includes(first.body.key), 'the replayable answer keeps the key in clear');
  });

  it('drives its own application through the official svix SDK, and nothing else', async () => {
    const admin = relay.svix;
    const mine = await admin.application.create({ name: 'tenant B', uid: 'sdk-tenant-b' });
    const theirs = await admin.application.create({ name: 'tenant A', uid: 'sdk-tenant-a' });
    await admin.eventType.create({ name: 'sdk.event', description: 'for the SDK test' });
    const { key } = await createKey(mine.id, { name: 'sdk' });
    const svix = new Svix(key, { serverUrl: relay.url });

    assert.equal((await svix.application.get('sdk-tenant-b')).id, mine.id);
    assert.deepEqual((await svix.application.list()).data.map((a) => a.id), [mine.id]);
    assert.ok((await svix.eventType.list()).data.some((e) => e.name === 'sdk.event'), 'event types are readable');
    const endpoint = await svix.endpoint.create(mine.id, { url: receiver.url, eventTypes: ['sdk.event'] });
    const { key: secret } = await svix.endpoint.getSecret(mine.id, endpoint.id);
    await svix.endpoint.setHeaders(mine.id, endpoint.id, { headers: { 'x-tenant': 'b' } });
    const message = await svix.message.create(mine.id, { eventType: 'sdk.event', payload: { hello: 'b' } });
    const [delivered] = await receiver.waitFor(1, 10_000);
    assert.deepEqual(new Webhook(secret).verify(delivered.body.toString(), headersOf(delivered)), { hello: 'b' });
    assert.equal(delivered.headers['x-tenant'], 'b');
    assert.equal((await svix.message.get(mine.id, message.id)).id, message.id);
    assert.deepEqual((await svix.message.list(mine.id)).data.map((m) => m.id), [message.id]);
    const attempts = await waitUntil('the attempt', async () => {
      const { data } = await svix.messageAttempt.listByEndpoint(mine.id, endpoint.id);
      return data.length > 0 ? data : null;
    });
    assert.equal(attempts![0].msgId, message.id);
    await svix.endpoint.rotateSecret(mine.id, endpoint.id, {});
    assert.notEqual((await svix.endpoint.getSecret(mine.id, endpoint.id)).key, secret);
    await svix.endpoint.delete(mine.id, endpoint.id);

    assert.equal(await status(svix.application.get(theirs.id)), 404);
    assert.equal(await status(svix.endpoint.list('sdk-tenant-a')), 404);
    assert.equal(await status(svix.message.create(theirs.id, { eventType: 'sdk.event', payload: {} })), 404);
    assert.equal(await status(svix.application.create({ name: 'mine too' })), 403);
    assert.equal(await status(svix.application.upsert(mine.id, { name: 'renamed' })), 403);
    assert.equal(await status(svix.application.delete(mine.id)), 403);
    assert.equal(await status(svix.eventType.create({ name: 'sdk.mine', description: 'x' })), 403);
    assert.equal(await status(svix.ingest.source.list()), 403);
    assert.equal((await admin.message.list(theirs.id)).data.length, 0, 'B wrote into A');
  });
});

describe('API key revocation across processes sharing PostgreSQL', { skip: skipWithoutPostgres() }, () => {
  let database: TestDatabase;
  const relays: TestRelay[] = [];
  before(async () => {
    database = await freshDatabase();
    for (let i = 0; i < 2; i++) relays.push(await startRelayOn('postgres', { db: database.url }, { HOOKRELAY_MASTER_KEY: TEST_MASTER_KEY }));
  });
  after(async () => {
    for (const relay of relays) await relay.close();
    await database?.drop();
  });

  it(`takes effect at once where it was revoked and within ${API_KEY_CACHE_MS} ms in the other process`, async () => {
    const [one, two] = relays;
    const app = await one.svix.application.create({ name: 'shared' });
    const created = (await one.api('POST', `/api/v1/app/${app.id}/api-key`, {})).body;
    assert.equal((await two.api('GET', `/api/v1/app/${app.id}`, undefined, { token: created.key })).status, 200, 'the other process does not know the key');
    assert.equal((await one.api('DELETE', `/api/v1/app/${app.id}/api-key/${created.id}`)).status, 204);
    assert.equal((await one.api('GET', `/api/v1/app/${app.id}`, undefined, { token: created.key })).status, 401);
    await waitUntil('the other process to refuse the revoked key', async () => (await two.api('GET', `/api/v1/app/${app.id}`, undefined, { token: created.key })).status === 401, API_KEY_CACHE_MS + 2_000);
  });
});
