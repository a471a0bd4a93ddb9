import { Environment, Paddle } from '@paddle/paddle-node-sdk';
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { startReceiver, type Receiver } from '../../helpers/receiver.js';
import { startRelay, type TestRelay } from '../../helpers/relay.js';
import { waitUntil } from '../../helpers/wait.js';
import { accepted, addEndpoint, createSource, getMessage, messageIds, post, refused, tamper, verifyDelivery } from '../support.js';

/**
 * Paddle's SDK only verifies, so requests are signed with node:crypto as Paddle documents it (`ts=<s>;h1=<hex
 * HMAC-SHA256 of "ts:body">`) and each fresh one is first checked with @paddle/paddle-node-sdk's own
 * `webhooks.isSignatureValid` (which allows 5 s of age; hookrelay's default is 300 s, see paddle.ts).
 */
describe('inbound provider: paddle', () => {
  let relay: TestRelay;
  let receiver: Receiver;
  before(async () => {
    relay = await startRelay();
    receiver = await startReceiver(() => ({ status: 200 }));
  });
  after(async () => {
    await relay.close();
    await receiver.close();
  });

  const secretKey = () => 'pdl_ntfset_' + randomBytes(12).toString('hex') + '_' + randomBytes(16).toString('base64url');
  const nowSeconds = () => Math.floor(Date.now() / 1000);
  const h1 = (secret: string, ts: number, body: string) => createHmac('sha256', secret).update(`${ts}:${body}`, 'utf8').digest('hex');
  const signature = (secret: string, body: string, ts = nowSeconds()) => `ts=${ts};h1=${h1(secret, ts, body)}`;
  const eventBody = (eventId = 'evt_' + randomBytes(13).toString('hex'), note = 'Zoë ☕ 𝄞') =>
    `{"event_id":"${eventId}","event_type":"transaction.completed","occurred_at":"2026-01-02T03:04:05.000000Z","notification_id":"ntf_01","data":{"id":"txn_01","status":"completed","custom_data":{"note":"${note}"},"details":{"totals":{"total":"1050"}}}}`;

  // The SDK's webhook helpers need the Node runtime that constructing a Paddle client installs; no API call is made.
  const paddle = new Paddle('pdl_sdbx_apikey_test', { environment: Environment.sandbox });
  const sdkAccepts = (body: string, secret: string, header: string) => paddle.webhooks.isSignatureValid(body, secret, header);

  it('accepts a notification the Paddle SDK verifies, stores event_type as its event type and forwards it without the signature', async () => {
    const secret = secretKey();
    const source = await createSource(relay, 'paddle', { secret });
    const endpoint = await addEndpoint(relay, source.id, receiver.url);
    const body = eventBody();
    const header = signature(secret, body);
    assert.equal(await sdkAccepts(body, secret, header), true);

    const id = accepted(await post(source.ingestUrl, body, { 'content-type': 'application/json', 'paddle-signature': header }));
    assert.equal((await getMessage(relay, source.appId, id)).eventType, 'transaction.completed');

    const request = (await waitUntil('the forwarded delivery', () => receiver.received.find((r) => r.headers['x-hookrelay-source'] === source.id)))!;
    verifyDelivery(endpoint.secret, request);
    assert.ok(request.body.equals(Buffer.from(body)), 'the body was changed');
    assert.equal(request.headers['paddle-signature'], undefined);
  });

  it('refuses a timestamp outside the tolerance (default 300 s, configurable), saying so', async () => {
    const secret = secretKey();
    const source = await createSource(relay, 'paddle', { secret });
    const body = eventBody();

    const old = signature(secret, body, nowSeconds() - 600);
    assert.equal(await sdkAccepts(body, secret, old), false);
    assert.match(refused(await post(source.ingestUrl, body, { 'content-type': 'application/json', 'paddle-signature': old })), /old, outside the tolerance of 300 s/);
    const future = signature(secret, body, nowSeconds() + 600);
    assert.match(refused(await post(source.ingestUrl, body, { 'content-type': 'application/json', 'paddle-signature': future })), /in the future, outside the tolerance of 300 s/);

    // A minute late is past the SDK's 5 s but inside hookrelay's default...
    const late = signature(secret, body, nowSeconds() - 60);
    assert.equal(await sdkAccepts(body, secret, late), false);
    accepted(await post(source.ingestUrl, body, { 'content-type': 'application/json', 'paddle-signature': late }));
    // ...and outside a source configured with 30 s.
    const strict = await createSource(relay, 'paddle', { secret, tolerance: 30 });
    assert.match(refused(await post(strict.ingestUrl, body, { 'content-type': 'application/json', 'paddle-signature': late })), /outside the tolerance of 30 s/);
  });

  it('accepts the header when any of several h1 values matches, and a key from additionalSecrets (rotation)', async () => {
    const oldSecret = secretKey();
    const newSecret = secretKey();
    const source = await createSource(relay, 'paddle', { secret: newSecret });
    const body = eventBody();
    const ts = nowSeconds();
    // While Paddle rotates a key it signs with both; the one that matches need not be last.
    const both = `ts=${ts};h1=${h1(newSecret, ts, body)};h1=${h1(oldSecret, ts, body)}`;
    accepted(await post(source.ingestUrl, body, { 'content-type': 'application/json', 'paddle-signature': both }));

    const rotating = await createSource(relay, 'paddle', { secret: newSecret, additionalSecrets: [oldSecret] });
    const header = signature(oldSecret, body);
    assert.equal(await sdkAccepts(body, oldSecret, header), true);
    accepted(await post(rotating.ingestUrl, body, { 'content-type': 'application/json', 'paddle-signature': header }));
  });

  it('refuses a body with one byte changed, a wrong secret and a missing or malformed header', async () => {
    const secret = secretKey();
    const source = await createSource(relay, 'paddle', { secret });
    const body = eventBody();
    const header = signature(secret, body);
    assert.equal(await sdkAccepts(tamper(body), secret, header), false);
    assert.match(refused(await post(source.ingestUrl, tamper(body), { 'content-type': 'application/json', 'paddle-signature': header })), /no signature matches/);
    assert.match(refused(await post(source.ingestUrl, body, { 'content-type': 'application/json', 'paddle-signature': signature(secretKey(), body) })), /no signature matches/);
    assert.match(refused(await post(source.ingestUrl, body, { 'content-type': 'application/json' })), /missing Paddle-Signature/);
    assert.match(refused(await post(source.ingestUrl, body, { 'content-type': 'application/json', 'paddle-signature': 'h1=abc' })), /no ts=/);
    assert.deepEqual(await messageIds(relay, source.appId), []);
  });

  it('answers a redelivery of the same event_id as a duplicate of the first message', async () => {
    const secret = secretKey();
    const source = await createSource(relay, 'paddle', { secret });
    const eventId = 'evt_' + randomBytes(13).toString('hex');
    const body = eventBody(eventId);
    const id = accepted(await post(source.ingestUrl, body, { 'content-type': 'application/json', 'paddle-signature': signature(secret, body) }));
    // Paddle re-signs each attempt (new ts and h1); a replayed event may differ in other fields: event_id decides.
    const again = eventBody(eventId, 'replayed');
    const retry = signature(secret, again, nowSeconds() + 1);
    assert.equal(accepted(await post(source.ingestUrl, again, { 'content-type': 'application/json', 'paddle-signature': retry }), true), id);
    assert.deepEqual(await messageIds(relay, source.appId), [id]);
  });
});
