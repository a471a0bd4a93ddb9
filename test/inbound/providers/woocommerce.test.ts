import assert from 'node:assert/strict';
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { startRelay, type TestRelay } from '../../helpers/relay.js';
import { accepted, createSource, getMessage, messageIds, post, refused, tamper } from '../support.js';

// WooCommerce signs in PHP (WC_Webhook::generate_signature) and ships no JavaScript verifier, so requests are signed
// the way that code does: base64 of the raw HMAC-SHA256 of the exact body with the webhook secret.
const sign = (secret: string, body: string) => createHmac('sha256', secret).update(body).digest('base64');
const orderBody = () => JSON.stringify({ id: randomBytes(3).readUIntBE(0, 3), status: 'processing', currency: 'EUR', total: '29.90', order_key: 'wc_order_' + randomUUID() });

function headers(secret: string, body: string, deliveryId = randomBytes(16).toString('hex'), topic = 'order.created'): Record<string, string> {
  const [resource, event] = topic.split('.');
  return {
    'content-type': 'application/json',
    'user-agent': 'WooCommerce/9.0.0 Hookshot (WordPress/6.5)',
    'x-wc-webhook-source': 'https://shop.example/',
    'x-wc-webhook-topic': topic,
    'x-wc-webhook-resource': resource,
    'x-wc-webhook-event': event,
    'x-wc-webhook-signature': sign(secret, body),
    'x-wc-webhook-id': '12',
    'x-wc-webhook-delivery-id': deliveryId,
  };
}

describe('woocommerce provider', () => {
  let relay: TestRelay;
  before(async () => {
    relay = await startRelay();
  });
  after(async () => {
    await relay.close();
  });

  it('accepts a signed delivery with X-WC-Webhook-Topic as the event type; refuses a changed byte or a wrong secret', async () => {
    const secret = 'wc-' + randomUUID();
    const source = await createSource(relay, 'woocommerce', { secret });
    const body = orderBody();
    const id = accepted(await post(source.ingestUrl, body, headers(secret, body)));
    assert.equal((await getMessage(relay, source.appId, id)).eventType, 'order.created');

    const other = orderBody();
    assert.match(refused(await post(source.ingestUrl, tamper(other), headers(secret, other))), /no signature matches/);
    assert.match(refused(await post(source.ingestUrl, other, headers('wc-wrong', other))), /no signature matches/);
    const hex = createHmac('sha256', secret).update(other).digest('hex');
    assert.match(refused(await post(source.ingestUrl, other, { ...headers(secret, other), 'x-wc-webhook-signature': hex })), /no signature matches/);
    assert.deepEqual(await messageIds(relay, source.appId), [id]);
  });

  it('answers the unsigned webhook_id ping with 200 and no message, and refuses every other unsigned request', async () => {
    const secret = 'wc-' + randomUUID();
    const source = await createSource(relay, 'woocommerce', { secret });
    // WC_Webhook::deliver_ping: wp_safe_remote_post with the string body `webhook_id=<id>`, nothing else; anything
    // but exactly 200 makes WooCommerce refuse to save the webhook.
    const ping = await post(source.ingestUrl, 'webhook_id=12', { 'content-type': 'application/x-www-form-urlencoded', 'user-agent': 'WooCommerce/9.0.0 Hookshot (WordPress/6.5)' });
    assert.equal(ping.status, 200, ping.text);

    const body = orderBody();
    const { 'x-wc-webhook-signature': _, ...unsigned } = headers(secret, body);
    assert.match(refused(await post(source.ingestUrl, body, unsigned)), /missing X-WC-Webhook-Signature header/);
    for (const lookalike of ['webhook_id=12&status=completed', 'webhook_id=abc', 'webhook_id=', ' webhook_id=12', 'webhook_id=12\n']) {
      assert.match(refused(await post(source.ingestUrl, lookalike, { 'content-type': 'application/x-www-form-urlencoded' })), /missing X-WC-Webhook-Signature header/, lookalike);
    }
    assert.deepEqual(await messageIds(relay, source.appId), []);
  });

  it('accepts a delivery signed with one of additionalSecrets', async () => {
    const [current, next] = ['wc-current-' + randomUUID(), 'wc-next-' + randomUUID()];
    const source = await createSource(relay, 'woocommerce', { secret: current, additionalSecrets: [next] });
    const body = orderBody();
    accepted(await post(source.ingestUrl, body, headers(next, body)));
    refused(await post(source.ingestUrl, body, headers('wc-retired', body)));
  });

  it('drops a second delivery with the same X-WC-Webhook-Delivery-ID', async () => {
    const secret = 'wc-' + randomUUID();
    const source = await createSource(relay, 'woocommerce', { secret });
    const deliveryId = randomBytes(16).toString('hex');
    const body = orderBody();
    const first = accepted(await post(source.ingestUrl, body, headers(secret, body, deliveryId, 'order.updated')));
    assert.equal((await getMessage(relay, source.appId, first)).eventType, 'order.updated');
    assert.equal(accepted(await post(source.ingestUrl, body, headers(secret, body, deliveryId, 'order.updated')), true), first);
    assert.equal((await messageIds(relay, source.appId)).length, 1);
  });
});
