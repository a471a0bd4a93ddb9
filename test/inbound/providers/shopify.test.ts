import assert from 'node:assert/strict';
import { createHmac, randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { startReceiver, type Receiver } from '../../helpers/receiver.js';
import { startRelay, type TestRelay } from '../../helpers/relay.js';
import { waitUntil } from '../../helpers/wait.js';
import { accepted, addEndpoint, createSource, getMessage, messageIds, post, refused, tamper, verifyDelivery } from '../support.js';

/**
 * No Shopify library is installed (`@shopify/shopify-api` is not a devDependency) and Shopify publishes no test
 * vector, so requests are signed with node:crypto as Shopify documents it: base64 HMAC-SHA256 of the raw body with
 * the app's client secret, in `X-Shopify-Hmac-Sha256` (classic webhooks) or `shopify-hmac-sha256` (Events webhooks).
 */
describe('inbound provider: shopify', () => {
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

  const sign = (secret: string, body: string) => createHmac('sha256', secret).update(body, 'utf8').digest('base64');
  const orderBody = (note = 'naïve café ☃ 𝄞') => `{"id":${Math.floor(Math.random() * 1e12)},  "total_price":"10.50","note":"${note}","line_items":[{"price":1.50}]}\n`;

  /** Headers of a classic (X-Shopify-*) webhook. */
  const classic = (signature: string, webhookId = randomUUID()) => ({
    'content-type': 'application/json',
    'x-shopify-topic': 'orders/create',
    'x-shopify-hmac-sha256': signature,
    'x-shopify-shop-domain': 'acme.myshopify.com',
    'x-shopify-api-version': '2025-01',
    'x-shopify-webhook-id': webhookId,
    'x-shopify-triggered-at': '2026-01-02T03:04:05.000Z',
    'x-shopify-event-id': randomUUID(),
  });

  it('accepts a classic webhook, stores the topic as its event type and forwards the topic, shop and webhook id but not the HMAC', async () => {
    const secret = 'shpss_' + randomUUID();
    const source = await createSource(relay, 'shopify', { secret });
    const endpoint = await addEndpoint(relay, source.id, receiver.url);
    const body = orderBody();
    const signature = sign(secret, body);
    const webhookId = randomUUID();
    const id = accepted(await post(source.ingestUrl, body, classic(signature, webhookId)));
    assert.equal((await getMessage(relay, source.appId, id)).eventType, 'orders.create');

    const request = (await waitUntil('the forwarded delivery', () => receiver.received.find((r) => r.headers['x-hookrelay-source'] === source.id)))!;
    verifyDelivery(endpoint.secret, request);
    assert.ok(request.body.equals(Buffer.from(body)), 'the body was changed');
    assert.equal(request.headers['x-shopify-topic'], 'orders/create');
    assert.equal(request.headers['x-shopify-shop-domain'], 'acme.myshopify.com');
    assert.equal(request.headers['x-shopify-webhook-id'], webhookId);
    assert.equal(request.headers['x-shopify-api-version'], '2025-01');
    assert.equal(request.headers['x-hookrelay-event-type'], 'orders.create');
    assert.equal(request.headers['x-shopify-hmac-sha256'], undefined);
    assert.ok(!JSON.stringify(request.headers).includes(signature), 'the Shopify HMAC leaked into a forwarded header');
  });

  it('accepts an Events webhook (shopify-* headers only) and dedupes on its shopify-event-id', async () => {
    const secret = 'shpss_' + randomUUID();
    const source = await createSource(relay, 'shopify', { secret });
    const eventId = randomUUID();
    const events = (body: string) => ({
      'content-type': 'application/json',
      'shopify-hmac-sha256': sign(secret, body),
      'shopify-topic': 'products/update',
      'shopify-shop-domain': 'acme.myshopify.com',
      'shopify-api-version': '2026-01',
      'shopify-event-id': eventId,
      'shopify-handle': 'product-sync',
      'shopify-action': 'update',
    });
    const first = orderBody('first');
    const id = accepted(await post(source.ingestUrl, first, events(first)));
    assert.equal((await getMessage(relay, source.appId, id)).eventType, 'products.update');

    // A redelivery of the same event (even re-rendered) is the same message.
    const again = orderBody('second');
    assert.equal(accepted(await post(source.ingestUrl, again, events(again)), true), id);
    assert.deepEqual(await messageIds(relay, source.appId), [id]);
  });

  it('checks the Events spelling first: a valid shopify-hmac-sha256 wins over a stale X-Shopify-Hmac-Sha256, and not the reverse', async () => {
    const secret = 'shpss_' + randomUUID();
    const source = await createSource(relay, 'shopify', { secret });
    const body = orderBody();
    const good = sign(secret, body);
    const bad = sign('another-secret', body);
    accepted(await post(source.ingestUrl, body, { ...classic(bad), 'shopify-hmac-sha256': good, 'shopify-topic': 'orders/create' }));
    const detail = refused(await post(source.ingestUrl, body, { ...classic(good), 'shopify-hmac-sha256': bad, 'shopify-topic': 'orders/create' }));
    assert.match(detail, /no signature matches/);
  });

  it('refuses a body with one byte changed, a wrong secret and a missing or malformed HMAC header, saying which', async () => {
    const secret = 'shpss_' + randomUUID();
    const source = await createSource(relay, 'shopify', { secret });
    const body = orderBody();
    const signature = sign(secret, body);

    assert.match(refused(await post(source.ingestUrl, tamper(body), classic(signature))), /no signature matches/);
    assert.match(refused(await post(source.ingestUrl, body, classic(sign('not-the-secret', body)))), /no signature matches/);
    const { 'x-shopify-hmac-sha256': _, ...unsigned } = classic(signature);
    assert.match(refused(await post(source.ingestUrl, body, unsigned)), /missing X-Shopify-Hmac-Sha256/);
    assert.match(refused(await post(source.ingestUrl, body, classic('not base64!'))), /not base64/);
    assert.match(refused(await post(source.ingestUrl, '', classic(sign(secret, '')))), /empty body/);
    assert.deepEqual(await messageIds(relay, source.appId), []);
  });

  it('accepts a webhook signed with an additionalSecrets entry (rotation)', async () => {
    const oldSecret = 'shpss_old_' + randomUUID();
    const newSecret = 'shpss_new_' + randomUUID();
    const source = await createSource(relay, 'shopify', { secret: newSecret, additionalSecrets: [oldSecret] });
    const body = orderBody();
    accepted(await post(source.ingestUrl, body, classic(sign(oldSecret, body))));
    accepted(await post(source.ingestUrl, body, classic(sign(newSecret, body))));
  });

  it('answers a redelivery with the same X-Shopify-Webhook-Id as a duplicate of the first message', async () => {
    const secret = 'shpss_' + randomUUID();
    const source = await createSource(relay, 'shopify', { secret });
    const webhookId = randomUUID();
    const body = orderBody();
    const id = accepted(await post(source.ingestUrl, body, classic(sign(secret, body), webhookId)));
    assert.equal(accepted(await post(source.ingestUrl, body, classic(sign(secret, body), webhookId)), true), id);
    // Another webhook id with the same bytes is a new delivery.
    const other = accepted(await post(source.ingestUrl, body, classic(sign(secret, body))));
    assert.notEqual(other, id);
    assert.deepEqual((await messageIds(relay, source.appId)).sort(), [id, other].sort());
  });
});
