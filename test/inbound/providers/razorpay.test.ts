import assert from 'node:assert/strict';
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import Razorpay from 'razorpay';
import { startRelay, type TestRelay } from '../../helpers/relay.js';
import { accepted, createSource, getMessage, messageIds, post, refused, tamper } from '../support.js';

// The razorpay SDK only verifies (validateWebhookSignature); requests are signed with node:crypto per Razorpay's docs
// (hex HMAC-SHA256 of the raw body with the webhook secret), and the SDK must accept each one before hookrelay is asked.
const sign = (secret: string, body: string) => createHmac('sha256', secret).update(body).digest('hex');
const eventBody = (event = 'payment.captured') =>
  JSON.stringify({ entity: 'event', account_id: 'acc_BFQ7uQEaa7j2z7', event, contains: ['payment'], payload: { payment: { entity: { id: 'pay_' + randomBytes(7).toString('hex'), amount: 5000, currency: 'INR' } } }, created_at: Math.floor(Date.now() / 1000) });

function headers(secret: string, body: string, eventId = 'evt_' + randomUUID()): Record<string, string> {
  const signature = sign(secret, body);
  assert.equal(Razorpay.validateWebhookSignature(body, signature, secret), true, 'the razorpay SDK accepts the signature');
  return { 'content-type': 'application/json', 'x-razorpay-signature': signature, 'x-razorpay-event-id': eventId };
}

describe('razorpay provider', () => {
  let relay: TestRelay;
  before(async () => {
    relay = await startRelay();
  });
  after(async () => {
    await relay.close();
  });

  it('accepts an event the razorpay SDK validates, with the body event as its type; refuses a changed byte or a wrong secret', async () => {
    const secret = 'rzp-whsecret-' + randomUUID();
    const source = await createSource(relay, 'razorpay', { secret });
    const body = eventBody();
    const id = accepted(await post(source.ingestUrl, body, headers(secret, body)));
    assert.equal((await getMessage(relay, source.appId, id)).eventType, 'payment.captured');

    const other = eventBody('order.paid');
    const signed = headers(secret, other);
    const changed = tamper(other);
    assert.equal(Razorpay.validateWebhookSignature(changed, signed['x-razorpay-signature'], secret), false, 'the SDK refuses the changed body too');
    assert.match(refused(await post(source.ingestUrl, changed, signed)), /no signature matches/);
    assert.match(refused(await post(source.ingestUrl, other, headers('rzp-wrong', other))), /no signature matches/);
    assert.match(refused(await post(source.ingestUrl, other, { 'content-type': 'application/json' })), /missing X-Razorpay-Signature header/);
    assert.match(refused(await post(source.ingestUrl, other, { ...signed, 'x-razorpay-signature': 'sha256=' + signed['x-razorpay-signature'] })), /malformed X-Razorpay-Signature/);
    assert.deepEqual(await messageIds(relay, source.appId), [id]);
  });

  it('accepts an event signed with one of additionalSecrets', async () => {
    const [current, next] = ['rzp-current-' + randomUUID(), 'rzp-next-' + randomUUID()];
    const source = await createSource(relay, 'razorpay', { secret: current, additionalSecrets: [next] });
    const body = eventBody();
    accepted(await post(source.ingestUrl, body, headers(next, body)));
    refused(await post(source.ingestUrl, body, headers('rzp-retired', body)));
  });

  it('drops a redelivery with the same x-razorpay-event-id', async () => {
    const secret = 'rzp-' + randomUUID();
    const source = await createSource(relay, 'razorpay', { secret });
    const eventId = 'evt_' + randomUUID();
    const body = eventBody();
    const first = accepted(await post(source.ingestUrl, body, headers(secret, body, eventId)));
    assert.equal(accepted(await post(source.ingestUrl, body, headers(secret, body, eventId)), true), first);
    const other = eventBody();
    assert.notEqual(accepted(await post(source.ingestUrl, other, headers(secret, other))), first);
    assert.equal((await messageIds(relay, source.appId)).length, 2);
  });
});
