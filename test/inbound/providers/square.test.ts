import assert from 'node:assert/strict';
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { startReceiver, type Receiver } from '../../helpers/receiver.js';
import { startRelay, type TestRelay } from '../../helpers/relay.js';
import { waitUntil } from '../../helpers/wait.js';
import { accepted, addEndpoint, createSource, getMessage, messageIds, post, refused, tamper, verifyDelivery } from '../support.js';

/**
 * No Square library is installed (`square` is not a devDependency). The scheme is pinned by the test vector of
 * Square's own SDK (square/square-python-sdk tests/integration/test_webhooks_helper.py), sent end to end; other
 * requests are signed with node:crypto as Square documents it: base64 HMAC-SHA256 of notification URL + raw body.
 */
describe('inbound provider: square', () => {
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

  const VECTOR = {
    body: '{"merchant_id":"MLEFBHHSJGVHD","type":"webhooks.test_notification","event_id":"ac3ac95b-f97d-458c-a6e6-18981597e05f","created_at":"2022-07-13T20:30:59.037339943Z","data":{"type":"webhooks","id":"bc368e64-01aa-407e-b46e-3231809b1129"}}',
    signature: 'GF4YkrJgGBDZ9NIYbNXBnMzqb2HoL4RW/S6vkZ9/2N4=',
    key: 'Ibxx_5AKakO-3qeNVR61Dw',
    notificationUrl: 'https://webhook.site/679a4f3a-dcfa-49ee-bac5-9d0edad886b9',
  };

  const signatureKey = () => randomBytes(16).toString('base64url');
  const sign = (key: string, url: string, body: string) => createHmac('sha256', key).update(url + body, 'utf8').digest('base64');
  const paymentBody = (eventId = randomUUID(), note = 'Zoë ☕ 𝄞') =>
    `{"merchant_id":"6SSW7HV8K2ST5","type":"payment.updated","event_id":"${eventId}","created_at":"2026-01-02T03:04:05.000Z",` +
    `"data":{"type":"payment","id":"KkAkhdMsgzn59SM8A89WgKwekxLZY","object":{"payment":{"amount_money":{"amount":150,"currency":"USD"},"note":"${note}","status":"COMPLETED"}}}}`;
  const headers = (signature: string) => ({ 'content-type': 'application/json', 'x-square-hmacsha256-signature': signature, 'square-version': '2025-10-16' });

  it("accepts Square's own SDK test vector when notificationUrl is the URL it was signed for, and refuses it otherwise", async () => {
    assert.equal(sign(VECTOR.key, VECTOR.notificationUrl, VECTOR.body), VECTOR.signature);
    const source = await createSource(relay, 'square', { secret: VECTOR.key, notificationUrl: VECTOR.notificationUrl });
    const id = accepted(await post(source.ingestUrl, VECTOR.body, headers(VECTOR.signature)));
    assert.equal((await getMessage(relay, source.appId, id)).eventType, 'webhooks.test_notification');

    const elsewhere = await createSource(relay, 'square', { secret: VECTOR.key });
    assert.match(refused(await post(elsewhere.ingestUrl, VECTOR.body, headers(VECTOR.signature))), /no signature matches.*registered with Square/);
  });

  it('signs over the request URL by default, stores type as the event type and forwards without the signature', async () => {
    const key = signatureKey();
    const source = await createSource(relay, 'square', { secret: key });
    const endpoint = await addEndpoint(relay, source.id, receiver.url);
    const body = paymentBody();
    const signature = sign(key, source.ingestUrl, body);
    const id = accepted(await post(source.ingestUrl, body, headers(signature)));
    assert.equal((await getMessage(relay, source.appId, id)).eventType, 'payment.updated');

    const request = (await waitUntil('the forwarded delivery', () => receiver.received.find((r) => r.headers['x-hookrelay-source'] === source.id)))!;
    verifyDelivery(endpoint.secret, request);
    assert.ok(request.body.equals(Buffer.from(body)), 'the body was changed');
    assert.equal(request.headers['square-version'], '2025-10-16');
    assert.equal(request.headers['x-square-hmacsha256-signature'], undefined);
  });

  it("signs over the source's publicUrl when hookrelay is behind a proxy", async () => {
    const key = signatureKey();
    const publicUrl = 'https://pay.example.com/hooks/square';
    const source = await createSource(relay, 'square', { secret: key, publicUrl });
    const body = paymentBody();
    accepted(await post(source.ingestUrl, body, headers(sign(key, publicUrl, body))));
    assert.match(refused(await post(source.ingestUrl, body, headers(sign(key, source.ingestUrl, body)))), /no signature matches/);
  });

  it('refuses a body with one byte changed, a wrong key and a missing or malformed header', async () => {
    const key = signatureKey();
    const source = await createSource(relay, 'square', { secret: key });
    const body = paymentBody();
    const signature = sign(key, source.ingestUrl, body);
    assert.match(refused(await post(source.ingestUrl, tamper(body), headers(signature))), /no signature matches/);
    assert.match(refused(await post(source.ingestUrl, body, headers(sign(signatureKey(), source.ingestUrl, body)))), /no signature matches/);
    assert.match(refused(await post(source.ingestUrl, body, { 'content-type': 'application/json' })), /missing x-square-hmacsha256-signature/);
    assert.match(refused(await post(source.ingestUrl, body, headers('%%%'))), /not base64/);
    assert.deepEqual(await messageIds(relay, source.appId), []);
  });

  it('accepts a notification signed with an additionalSecrets entry (rotation)', async () => {
    const oldKey = signatureKey();
    const newKey = signatureKey();
    const source = await createSource(relay, 'square', { secret: newKey, additionalSecrets: [oldKey] });
    const body = paymentBody();
    accepted(await post(source.ingestUrl, body, headers(sign(oldKey, source.ingestUrl, body))));
  });

  it('answers a redelivery with the same event_id as a duplicate of the first message', async () => {
    const key = signatureKey();
    const source = await createSource(relay, 'square', { secret: key });
    const eventId = randomUUID();
    const first = paymentBody(eventId, 'first');
    const id = accepted(await post(source.ingestUrl, first, headers(sign(key, source.ingestUrl, first))));
    const again = paymentBody(eventId, 'again');
    assert.equal(accepted(await post(source.ingestUrl, again, headers(sign(key, source.ingestUrl, again))), true), id);
    assert.deepEqual(await messageIds(relay, source.appId), [id]);
  });
});
