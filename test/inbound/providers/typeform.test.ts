import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { startReceiver, type Receiver } from '../../helpers/receiver.js';
import { startRelay, type TestRelay } from '../../helpers/relay.js';
import { accepted, addEndpoint, createSource, getMessage, messageIds, post, refused, tamper, verifyDelivery } from '../support.js';

/**
 * Typeform publishes no library that signs or verifies webhooks (none is installed), so requests follow its
 * documented scheme: `Typeform-Signature: sha256=` + base64 HMAC-SHA256(secret, raw body). No timestamp is signed,
 * so there is no staleness to test; replays are dropped by dedupe on `event_id`.
 */
describe('inbound provider: typeform', () => {
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

  const newSecret = () => randomBytes(20).toString('base64url');
  const signatureOf = (secret: string, body: string) => 'sha256=' + createHmac('sha256', secret).update(body).digest('base64');
  const headers = (signature: string) => ({ 'content-type': 'application/json', 'typeform-signature': signature, 'user-agent': 'Typeform Webhooks' });

  const response = (eventId = randomBytes(13).toString('hex').toUpperCase()) =>
    `{"event_id":"${eventId}","event_type":"form_response","form_response":{"form_id":"lT4Z3j","token":"${randomBytes(16).toString('hex')}","submitted_at":"2026-01-02T03:04:05Z",` +
    `"definition":{"id":"lT4Z3j","title":"Café survey ☕","fields":[{"id":"f1","type":"short_text","title":"Name?"}]},"answers":[{"type":"text","text":"Zoë 𝄞","field":{"id":"f1","type":"short_text"}}],"calculated":{"score":2.0}}}`;

  it('accepts a signed form_response, stores it under event_type and forwards it without the signature', async () => {
    const secret = newSecret();
    const source = await createSource(relay, 'typeform', { secret });
    const endpoint = await addEndpoint(relay, source.id, receiver.url);
    const body = response();
    const signature = signatureOf(secret, body);
    const id = accepted(await post(source.ingestUrl, body, headers(signature)));
    assert.equal((await getMessage(relay, source.appId, id)).eventType, 'form_response');

    const [request] = await receiver.waitFor(1);
    verifyDelivery(endpoint.secret, request);
    assert.ok(request.body.equals(Buffer.from(body)), 'the body was changed');
    assert.equal(request.headers['typeform-signature'], undefined);
    assert.ok(!JSON.stringify(request.headers).includes(signature.slice(7)), 'the Typeform signature leaked into a header');
  });

  it('refuses one changed byte, a wrong secret, a hex digest, and a missing or unprefixed header', async () => {
    const secret = newSecret();
    const source = await createSource(relay, 'typeform', { secret });
    const body = response();
    const good = signatureOf(secret, body);

    assert.equal(refused(await post(source.ingestUrl, tamper(body), headers(good))), 'no signature matches');
    assert.equal(refused(await post(source.ingestUrl, body, headers(signatureOf('not-the-secret', body)))), 'no signature matches');
    // The digest is base64, not hex (the usual mistake): the same HMAC in hex does not pass.
    assert.equal(refused(await post(source.ingestUrl, body, headers('sha256=' + createHmac('sha256', secret).update(body).digest('hex')))), 'no signature matches');
    assert.match(refused(await post(source.ingestUrl, body, { 'content-type': 'application/json' })), /missing Typeform-Signature header/);
    assert.match(refused(await post(source.ingestUrl, body, headers(good.slice(7)))), /malformed Typeform-Signature header: expected sha256=<base64>/);
    assert.deepEqual(await messageIds(relay, source.appId), []);
  });

  it('accepts a request signed with an additionalSecrets entry (rotation)', async () => {
    const current = newSecret();
    const next = newSecret();
    const source = await createSource(relay, 'typeform', { secret: current, additionalSecrets: [next] });
    const one = response();
    accepted(await post(source.ingestUrl, one, headers(signatureOf(next, one))));
    const two = response();
    accepted(await post(source.ingestUrl, two, headers(signatureOf(current, two))));
  });

  it('answers a redelivery with the same event_id as a duplicate of the first message, even re-serialised', async () => {
    const secret = newSecret();
    const source = await createSource(relay, 'typeform', { secret });
    const body = response();
    const first = accepted(await post(source.ingestUrl, body, headers(signatureOf(secret, body))));
    const respaced = JSON.stringify(JSON.parse(body), null, 2);
    assert.equal(accepted(await post(source.ingestUrl, respaced, headers(signatureOf(secret, respaced))), true), first);
    const other = response();
    assert.notEqual(accepted(await post(source.ingestUrl, other, headers(signatureOf(secret, other)))), first);
    assert.equal((await messageIds(relay, source.appId)).length, 2);
  });
});
