import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { AppPortalCapability, Svix } from 'svix1';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { startRelay, type TestRelay } from '../helpers/relay.js';
import { waitUntil } from '../helpers/wait.js';
import { sdkStatus } from '../api/support.js';

/** The HTTP status a svix SDK call ended with (200 for any success). */
const status = sdkStatus;

describe('app portal access tokens (svix SDK)', () => {
  let relay: TestRelay;
  let receiver: Receiver;
  let appA = '';
  let appB = '';
  let endpointB = '';
  const sdk = (token: string) => new Svix(token, { serverUrl: relay.url });

  before(async () => {
    relay = await startRelay();
    receiver = await startReceiver();
    await relay.svix1.eventType.create({ name: 'invoice.paid', description: 'paid' });
    await relay.svix1.eventType.create({ name: 'beta.thing', description: 'behind a flag', featureFlag: 'beta' });
    appA = (await relay.svix1.application.create({ name: 'A' })).id;
    appB = (await relay.svix1.application.create({ name: 'B', uid: 'customer-b' })).id;
    endpointB = (await relay.svix1.endpoint.create(appB, { url: receiver.url })).id;
  });
  after(async () => {
    await relay?.close();
    await receiver?.close();
  });

  it('issues {url, token}; the token works with the svix SDK on its app, and app B does not exist for it', async () => {
    const access = await relay.svix1.authentication.appPortalAccess(appA, {});
    assert.match(access.token, /^hrp_key_/);
    assert.equal(access.url, `${relay.url}/portal#token=${access.token}`, 'the token must travel in the fragment, never the path or query');

    const portal = sdk(access.token);
    // svix-react sends filterTypes: [] for "every event type".
    const endpoint = await portal.endpoint.create(appA, { url: receiver.url, filterTypes: [], channels: ['eu'] });
    assert.equal(endpoint.filterTypes ?? null, null);
    assert.deepEqual(endpoint.channels, ['eu']);
    assert.deepEqual((await portal.endpoint.list(appA)).data.map((e) => e.id), [endpoint.id]);
    assert.deepEqual((await portal.application.list()).data.map((a) => a.id), [appA]);
    assert.match((await portal.endpoint.getSecret(appA, endpoint.id)).key, /^whsec_/);

    await relay.svix1.message.create(appA, { eventType: 'invoice.paid', payload: { n: 1 }, channels: ['eu'] });
    await waitUntil('the delivery to A’s endpoint', () => receiver.received.length > 0 || null);
    const [message] = (await portal.message.list(appA)).data;
    assert.equal(message.eventType, 'invoice.paid');
    const attempts = await waitUntil('an attempt in the portal’s log', async () => {
      const page = await portal.messageAttempt.listByMsg(appA, message.id);
      return page.data.length > 0 ? page.data : null;
    });
    assert.equal(attempts![0].responseStatusCode, 200);
    assert.equal(await status(portal.messageAttempt.resend(appA, message.id, endpoint.id)), 200);

    for (const [what, call] of [
      ['get app B', portal.application.get(appB)],
      ['get app B by uid', portal.application.get('customer-b')],
      ['list B’s endpoints', portal.endpoint.list(appB)],
      ['read B’s endpoint secret', portal.endpoint.getSecret(appB, endpointB)],
      ['delete B’s endpoint', portal.endpoint.delete(appB, endpointB)],
      ['B’s endpoint through A’s path', portal.endpoint.get(appA, endpointB)],
    ] as const) {
      assert.equal(await status(call), 404, what);
    }
    assert.equal((await relay.svix1.endpoint.list(appB)).data.length, 1, 'B’s endpoint was touched');
  });

  it('allows the operator’s routes to no portal token: messages, applications, keys, event types', async () => {
    const { token } = await relay.svix1.authentication.appPortalAccess(appA, {});
    const portal = sdk(token);
    assert.equal(await status(portal.message.create(appA, { eventType: 'invoice.paid', payload: {} })), 403);
    assert.equal(await status(portal.application.update(appA, { name: 'renamed' })), 403);
    assert.equal(await status(portal.application.create({ name: 'new' })), 403);
    assert.equal(await status(portal.eventType.create({ name: 'x.y', description: 'x' })), 403);
    assert.equal(await status(portal.authentication.appPortalAccess(appA, {})), 403);
    assert.equal((await relay.api('POST', `/api/v1/app/${appA}/api-key`, {}, { token })).status, 403);
    assert.equal((await relay.api('GET', '/ingest/api/v1/source', undefined, { token })).status, 403);
  });

  it('read-only and capability tokens refuse what they were not given', async () => {
    const endpoint = await relay.svix1.endpoint.create(appA, { url: receiver.url, description: 'scoped' });
    const readOnly = sdk((await relay.svix1.authentication.appPortalAccess(appA, { readOnly: true })).token);
    assert.equal(await status(readOnly.endpoint.list(appA)), 200);
    assert.equal(await status(readOnly.endpoint.get(appA, endpoint.id)), 200);
    assert.equal(await status(readOnly.endpoint.getSecret(appA, endpoint.id)), 403, 'ViewBase shows no secret');
    assert.equal(await status(readOnly.endpoint.create(appA, { url: receiver.url })), 403);
    assert.equal(await status(readOnly.endpoint.update(appA, endpoint.id, { url: receiver.url, description: 'changed' })), 403);
    assert.equal(await status(readOnly.endpoint.rotateSecret(appA, endpoint.id, {})), 403);
    assert.equal(await status(readOnly.endpoint.recover(appA, endpoint.id, { since: new Date(Date.now() - 60_000) })), 403);
    assert.equal(await status(readOnly.endpoint.delete(appA, endpoint.id)), 403);
    assert.equal((await relay.svix1.endpoint.get(appA, endpoint.id)).description, 'scoped');

    const secretViewer = sdk(
      (await relay.svix1.authentication.appPortalAccess(appA, { capabilities: [AppPortalCapability.ViewBase, AppPortalCapability.ViewEndpointSecret] })).token,
    );
    assert.equal(await status(secretViewer.endpoint.getSecret(appA, endpoint.id)), 200);
    assert.equal(await status(secretViewer.endpoint.rotateSecret(appA, endpoint.id, {})), 403);
    assert.equal(await status(secretViewer.endpoint.delete(appA, endpoint.id)), 403);

    const replayer = sdk((await relay.svix1.authentication.appPortalAccess(appA, { capabilities: [AppPortalCapability.ViewBase, AppPortalCapability.CreateAttempts] })).token);
    assert.equal(await status(replayer.endpoint.recover(appA, endpoint.id, { since: new Date(Date.now() - 60_000) })), 200);
    assert.equal(await status(replayer.endpoint.delete(appA, endpoint.id)), 403);

    // Transformations: ManageTransformations only.
    const code = { code: 'function handler(w) { return w; }', enabled: true };
    assert.equal(await status(readOnly.endpoint.transformationPartialUpdate(appA, endpoint.id, code)), 403);
    assert.equal((await relay.api('GET', `/api/v1/app/${appA}/endpoint/${endpoint.id}/transformation`, undefined, { token: (await relay.svix1.authentication.appPortalAccess(appA, { readOnly: true })).token })).status, 403);
    const transformer = sdk((await relay.svix1.authentication.appPortalAccess(appA, { capabilities: [AppPortalCapability.ViewBase, AppPortalCapability.ManageTransformations] })).token);
    assert.equal(await status(transformer.endpoint.transformationPartialUpdate(appA, endpoint.id, code)), 200, "resolved");
    assert.equal(await status(transformer.endpoint.delete(appA, endpoint.id)), 403);
  });

  it('cannot be widened by editing the scope inside the token', async () => {
    const { token } = await relay.svix1.authentication.appPortalAccess(appA, { readOnly: true });
    const [, id, , secret] = /^hrp_(key_[0-9A-Za-z]{25})_([A-Za-z0-9_-]+)_([A-Za-z0-9_-]{43})$/.exec(token)!;
    const widened = `hrp_${id}_${Buffer.from(JSON.stringify({ c: 63, f: [] })).toString('base64url')}_${secret}`;
    assert.equal((await relay.api('GET', `/api/v1/app/${appA}/endpoint`, undefined, { token: widened })).status, 401);
  });

  it('hides event types behind a feature flag the token was not given', async () => {
    const plain = sdk((await relay.svix1.authentication.appPortalAccess(appA, {})).token);
    assert.deepEqual((await plain.eventType.list()).data.map((e) => e.name), ['invoice.paid']);
    assert.equal(await status(plain.eventType.get('beta.thing')), 404);
    const flagged = sdk((await relay.svix1.authentication.appPortalAccess(appA, { featureFlags: ['beta'] })).token);
    assert.deepEqual((await flagged.eventType.list()).data.map((e) => e.name).sort(), ['beta.thing', 'invoice.paid']);
    assert.equal(await status(flagged.eventType.get('beta.thing')), 200);
  });

  it('expires as asked, is listed with the app’s keys, and logout revokes it at once', async () => {
    const before = Date.now();
    const { token } = await relay.svix1.authentication.appPortalAccess(appA, { expiry: 3600, sessionId: 'support-42' });
    const listed = (await relay.api('GET', `/api/v1/app/${appA}/api-key?limit=250`)).body.data as { name: string; prefix: string; expiresAt: string }[];
    const row = listed.find((k) => k.name === 'app portal (session support-42)');
    assert.ok(row, JSON.stringify(listed));
    assert.ok(token.startsWith(row.prefix));
    const expiresAt = Date.parse(row.expiresAt);
    assert.ok(expiresAt >= before + 3_600_000 && expiresAt <= Date.now() + 3_600_000, row.expiresAt);

    const portal = sdk(token);
    assert.equal(await status(portal.endpoint.list(appA)), 200);
    assert.equal(await status(portal.authentication.logout()), 200);
    assert.equal(await status(portal.endpoint.list(appA)), 401);
    assert.equal(await status(relay.svix1.authentication.logout()), 403, 'the admin token logged out');
  });

  it('refuses bad requests precisely, and creates a missing application only when asked', async () => {
    const post = (app: string, body: unknown, token?: string) => relay.api('POST', `/api/v1/auth/app-portal-access/${app}`, body, { token });
    const issue = async (body: unknown) => (await post(appA, body)).body.detail[0].loc.join('.');
    assert.equal(await issue({ expiry: 60 }), 'body.expiry');
    assert.equal(await issue({ expiry: 8 * 24 * 3600 }), 'body.expiry');
    assert.equal(await issue({ capabilities: ['ManageEndpoint'] }), 'body.capabilities');
    assert.equal(await issue({ capabilities: ['Everything'] }), 'body.capabilities.0');
    assert.equal(await issue({ readOnly: true, capabilities: ['ViewBase'] }), 'body.capabilities');
    assert.equal(await issue({ featureFlags: ['no spaces'] }), 'body.featureFlags.0');

    assert.equal((await post('customer-new', {})).status, 404);
    const created = await post('customer-new', { application: { name: 'New customer' } });
    assert.equal(created.status, 200, created.text);
    const app = await relay.svix1.application.get('customer-new');
    assert.equal(app.name, 'New customer');
    assert.equal((await post('customer-new', { application: { name: 'ignored' } })).status, 200);
    assert.equal((await relay.svix1.application.get('customer-new')).name, 'New customer');
    assert.equal((await post('other', { application: { name: 'x', uid: 'mismatch' } })).body.detail[0].loc.join('.'), 'body.application.uid');

    const appKey = (await relay.api('POST', `/api/v1/app/${appA}/api-key`, {})).body.key;
    assert.equal((await post(appA, {}, appKey)).status, 403, 'an app key minted a portal token');
  });
});
