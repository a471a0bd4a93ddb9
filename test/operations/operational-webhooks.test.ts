import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Webhook } from 'svix';
import { startReceiver, type Received, type Receiver } from '../helpers/receiver.js';
import { startRelay, type TestRelay } from '../helpers/relay.js';
import { waitUntil } from '../helpers/wait.js';

interface OperationalEvent {
  type: string;
  data: Record<string, any>;
}

/**
 * Operational webhooks, managed with the svix SDK's operational-webhook endpoint calls (2.x `operationalWebhook.endpoint`,
 * 1.x `operationalWebhookEndpoint`) that both majors share
 * (list, create, get, delete, getSecret, rotateSecret, getHeaders; the PUT calls are named differently in the two
 * majors and are sent as the same HTTP requests here), and received as signed webhooks verified with svix's `Webhook`.
 */
describe('operational webhooks', () => {
  let relay: TestRelay;
  let ops: Receiver;
  let onlyDeletes: Receiver;
  let customer: Receiver;
  let opsId = '';
  let opsSecret = '';

  /** Verified with the operational endpoint's secret; throws when the signature does not verify. */
  const verified = (request: Received, secret = opsSecret): OperationalEvent => {
    const headers = Object.fromEntries(Object.entries(request.headers).map(([k, v]) => [k, String(v)]));
    new Webhook(secret).verify(request.body.toString('utf8'), headers);
    return JSON.parse(request.body.toString('utf8')) as OperationalEvent;
  };
  const eventsAt = (receiver: Receiver, secret?: string) => receiver.received.map((r) => verified(r, secret));
  const waitForEvent = async (match: (e: OperationalEvent) => boolean, what: string): Promise<OperationalEvent> =>
    (await waitUntil(`the operational webhook ${what}`, () => eventsAt(ops).find(match) ?? null, 15_000))!;

  before(async () => {
    ops = await startReceiver(() => ({ status: 204 }));
    onlyDeletes = await startReceiver(() => ({ status: 204 }));
    // The customer's receiver: /fail always 500, /flaky fails twice then answers 200, /gone 410, the rest 200.
    const flaky = { n: 0 };
    customer = await startReceiver((request) => {
      if (request.path.endsWith('/fail')) return { status: 500 };
      if (request.path.endsWith('/gone')) return { status: 410 };
      if (request.path.endsWith('/flaky')) return { status: flaky.n++ < 2 ? 503 : 200 };
      return { status: 200 };
    });
    // Four attempts per delivery; `message.attempt.failing` on the second failure in a row; no circuit breaker.
    relay = await startRelay({ retrySchedule: '0,50ms,50ms,50ms', circuitThreshold: '0', operationalFailingAfter: '2', logLevel: (process.env.TEST_LOG_LEVEL ?? 'silent') as 'silent' });
  });

  after(async () => {
    await relay?.close();
    await Promise.all([ops?.close(), onlyDeletes?.close(), customer?.close()]);
  });

  it('is managed with the svix SDK: create, list, get, secret, rotate, headers, update', async () => {
    const svix = relay.svix;
    assert.deepEqual((await svix.operationalWebhook.endpoint.list()).data, []);
    const created = await svix.operationalWebhook.endpoint.create({ url: ops.url, description: 'on-call', uid: 'oncall', metadata: { team: 'sre' } });
    assert.match(created.id, /^ep_/);
    assert.equal(created.url, ops.url);
    assert.equal(created.uid, 'oncall');
    assert.equal(created.description, 'on-call');
    assert.deepEqual(created.metadata, { team: 'sre' });
    assert.ok(created.createdAt instanceof Date);
    opsId = created.id;

    assert.deepEqual((await svix.operationalWebhook.endpoint.list()).data.map((e) => e.id), [opsId]);
    assert.deepEqual((await relay.svix1.operationalWebhookEndpoint.list()).data.map((e) => e.id), [opsId], 'svix 1.x names it operationalWebhookEndpoint');
    assert.equal((await relay.svix1.operationalWebhookEndpoint.get('oncall')).url, ops.url);
    assert.equal((await svix.operationalWebhook.endpoint.get('oncall')).id, opsId, 'found by uid too');
    const first = (await svix.operationalWebhook.endpoint.getSecret(opsId)).key;
    assert.match(first, /^whsec_/);
    await svix.operationalWebhook.endpoint.rotateSecret(opsId, { key: null });
    opsSecret = (await svix.operationalWebhook.endpoint.getSecret(opsId)).key;
    assert.notEqual(opsSecret, first);
    assert.deepEqual(await svix.operationalWebhook.endpoint.getHeaders(opsId), { headers: {}, sensitive: [] });

    // svix 1.x `update`/`updateHeaders` and 2.x `upsert`/`setHeaders` send these requests.
    const put = await relay.api('PUT', `/api/v1/operational-webhook/endpoint/${opsId}`, { url: ops.url, description: 'on-call rotation', uid: 'oncall', metadata: { team: 'sre' } });
    assert.equal(put.status, 200, put.text);
    assert.equal(put.body.description, 'on-call rotation');
    assert.equal((await relay.api('PUT', `/api/v1/operational-webhook/endpoint/${opsId}/headers`, { headers: { 'x-oncall': 'pager' } })).status, 204);
    assert.deepEqual((await svix.operationalWebhook.endpoint.getHeaders(opsId)).headers, { 'x-oncall': 'pager' });

    // A second one that wants only deletions, with svix 2.x's field name.
    const filtered = await relay.api('POST', '/api/v1/operational-webhook/endpoint', { url: onlyDeletes.url, eventTypes: ['endpoint.deleted'] });
    assert.equal(filtered.status, 201, filtered.text);
    assert.deepEqual(filtered.body.eventTypes, ['endpoint.deleted']);
    assert.deepEqual(filtered.body.filterTypes, ['endpoint.deleted']);
  });

  it('refuses unknown event types, internal targets and application keys', async () => {
    const unknown = await relay.api('POST', '/api/v1/operational-webhook/endpoint', { url: ops.url, filterTypes: ['invoice.paid'] });
    assert.equal(unknown.status, 422);
    assert.deepEqual(unknown.body.detail[0].loc, ['body', 'filterTypes', 0]);
    const internal = await relay.api('POST', '/api/v1/operational-webhook/endpoint', { url: 'http://10.1.2.3/hook' });
    assert.equal(internal.status, 422);
    assert.deepEqual(internal.body.detail[0].loc, ['body', 'url']);
    const app = await relay.svix.application.create({ name: 'keyed' });
    const key = (await relay.api('POST', `/api/v1/app/${app.id}/api-key`, { name: 'k' })).body.key;
    assert.equal((await relay.api('GET', '/api/v1/operational-webhook/endpoint', undefined, { token: key })).status, 403);
    assert.equal((await relay.api('GET', `/api/v1/operational-webhook/endpoint/${opsId}/secret`, undefined, { token: key })).status, 403);
  });

  it('sends endpoint.created, updated, disabled (manual), enabled and deleted, signed with the endpoint secret', async () => {
    const svix = relay.svix;
    const app = await svix.application.create({ name: 'Acme', uid: 'acme' });
    const endpoint = await svix.endpoint.create(app.id, { url: `${customer.url}/ok`, uid: 'acme-main' });
    const created = await waitForEvent((e) => e.type === 'endpoint.created' && e.data.endpointId === endpoint.id, 'endpoint.created');
    assert.deepEqual(created.data, { appId: app.id, appUid: 'acme', endpointId: endpoint.id, endpointUid: 'acme-main' });

    await svix.endpoint.patch(app.id, endpoint.id, { description: 'main' });
    await waitForEvent((e) => e.type === 'endpoint.updated' && e.data.endpointId === endpoint.id, 'endpoint.updated');
    await svix.endpoint.patch(app.id, endpoint.id, { disabled: true });
    const disabled = await waitForEvent((e) => e.type === 'endpoint.disabled' && e.data.endpointId === endpoint.id, 'endpoint.disabled');
    assert.equal(disabled.data.trigger, 'manual');
    await svix.endpoint.patch(app.id, endpoint.id, { disabled: false });
    await waitForEvent((e) => e.type === 'endpoint.enabled' && e.data.endpointId === endpoint.id, 'endpoint.enabled');
    await svix.endpoint.delete(app.id, endpoint.id);
    const deleted = await waitForEvent((e) => e.type === 'endpoint.deleted' && e.data.endpointId === endpoint.id, 'endpoint.deleted');
    assert.equal(deleted.data.endpointUid, 'acme-main');

    // The filtered endpoint got the deletion only, signed with its own secret.
    const secret = (await svix.operationalWebhook.endpoint.list()).data.find((e) => e.url === onlyDeletes.url)!;
    const key = (await svix.operationalWebhook.endpoint.getSecret(secret.id)).key;
    await onlyDeletes.waitFor(1);
    assert.deepEqual(eventsAt(onlyDeletes, key).map((e) => e.type), ['endpoint.deleted']);
    // The operator's own header came along.
    assert.equal(ops.received.at(-1)!.headers['x-oncall'], 'pager');
  });

  it('sends message.attempt.failing at the configured failure, exhausted when parked, recovered after a failing run', async () => {
    const svix = relay.svix;
    const app = await svix.application.create({ name: 'Attempts' });
    const failing = await svix.endpoint.create(app.id, { url: `${customer.url}/fail` });
    const flaky = await svix.endpoint.create(app.id, { url: `${customer.url}/flaky` });
    const message = await svix.message.create(app.id, { eventType: 'invoice.paid', eventId: 'inv-7', payload: { n: 1 } });

    const failingEvent = await waitForEvent((e) => e.type === 'message.attempt.failing' && e.data.endpointId === failing.id, 'message.attempt.failing');
    assert.equal(failingEvent.data.msgId, message.id);
    assert.equal(failingEvent.data.msgEventId, 'inv-7');
    assert.equal(failingEvent.data.appId, app.id);
    assert.equal(failingEvent.data.lastAttempt.responseStatusCode, 500);
    assert.match(failingEvent.data.lastAttempt.id, /^atmpt_/);
    const exhausted = await waitForEvent((e) => e.type === 'message.attempt.exhausted' && e.data.endpointId === failing.id, 'message.attempt.exhausted');
    const attempts = (await svix.messageAttempt.listByEndpoint(app.id, failing.id)).data;
    assert.equal(attempts.length, 4);
    assert.equal(exhausted.data.lastAttempt.id, attempts[0].id, 'the last attempt is the newest one recorded');

    const recovered = await waitForEvent((e) => e.type === 'message.attempt.recovered' && e.data.endpointId === flaky.id, 'message.attempt.recovered');
    assert.equal(recovered.data.lastAttempt.responseStatusCode, 200);
    // Two operational messages, delivered side by side: both arrive, in either order.
    const forFlaky = () => eventsAt(ops).filter((e) => e.data.endpointId === flaky.id && e.type.startsWith('message.'));
    await waitUntil('both events for the flaky endpoint', () => forFlaky().length >= 2);
    assert.deepEqual(forFlaky().map((e) => e.type).sort(), ['message.attempt.failing', 'message.attempt.recovered']);
  });

  it('sends endpoint.disabled (automatic, with the reason) when an endpoint answers 410 Gone', async () => {
    const svix = relay.svix;
    const app = await svix.application.create({ name: 'Gone' });
    const endpoint = await svix.endpoint.create(app.id, { url: `${customer.url}/gone` });
    await svix.message.create(app.id, { eventType: 'invoice.paid', payload: { n: 1 } });
    const disabled = await waitForEvent((e) => e.type === 'endpoint.disabled' && e.data.endpointId === endpoint.id, 'endpoint.disabled');
    assert.equal(disabled.data.trigger, 'automatic');
    assert.match(disabled.data.reason, /410 Gone/);
  });

  it('are messages of a reserved application, with attempts recorded like any other; deleting the endpoint stops them', async () => {
    const app = await relay.svix.application.get('hookrelay-operational-webhooks');
    const messages = (await relay.svix.message.list(app.id, { limit: 250 })).data;
    assert.ok(messages.length >= eventsAt(ops).length);
    const attempts = (await relay.svix.messageAttempt.listByEndpoint(app.id, opsId)).data;
    assert.ok(attempts.length > 0 && attempts.every((a) => a.status === 0));

    await relay.svix.operationalWebhook.endpoint.delete(opsId);
    const gone = await relay.api('GET', `/api/v1/operational-webhook/endpoint/${opsId}`);
    assert.equal(gone.status, 404);
    assert.equal(gone.body.code, 'not_found');
  });
});

describe('operational webhooks: the reserved application', () => {
  it('is never an application that merely took its uid: such an app gets no operational endpoints and no events', async (t) => {
    const relay = await startRelay();
    t.after(() => relay.close());
    const squatter = await relay.svix.application.create({ name: 'not the operator', uid: 'hookrelay-operational-webhooks' });
    const refused = await relay.api('POST', '/api/v1/operational-webhook/endpoint', { url: 'https://ops.example.com/hook' });
    assert.equal(refused.status, 409, refused.text);
    assert.match(refused.body.detail, /reserved for operational webhooks/);
    assert.deepEqual((await relay.svix.endpoint.list(squatter.id)).data, []);
  });
});
