import { sign as githubSign } from '@octokit/webhooks-methods';
import assert from 'node:assert/strict';
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Webhook as StandardWebhook } from 'standardwebhooks';
import Stripe from 'stripe';
import { Webhook as SvixWebhook } from 'svix';
import { startReceiver, type Received, type Receiver } from '../helpers/receiver.js';
import { startRelay, type TestRelay } from '../helpers/relay.js';
import { waitUntil } from '../helpers/wait.js';
import { accepted, addEndpoint, createSource, getMessage, post, verifyDelivery } from './support.js';

/**
 * Provider → ingest URL → verified → stored → delivered to the source's endpoint, signed by hookrelay.
 * Bodies have odd spacing, a trailing 1.50, a \u escape and astral characters: any re-serialisation shows.
 */
describe('inbound end to end: provider request to endpoint delivery', () => {
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

  /** The one delivery the receiver got for a source. */
  async function deliveryOf(sourceId: string): Promise<Received> {
    const found = (await waitUntil(`a delivery from ${sourceId}`, () => {
      const hits = receiver.received.filter((r) => r.headers['x-hookrelay-source'] === sourceId);
      return hits.length > 0 ? hits : null;
    }))!;
    assert.equal(found.length, 1);
    return found[0];
  }

  const whsec = () => 'whsec_' + randomBytes(24).toString('base64');

  it('GitHub: signed with @octokit/webhooks-methods, forwarded byte-exact with its event headers and without its signatures', async () => {
    const providerSecret = 'gh-secret-' + randomUUID();
    const source = await createSource(relay, 'github', { secret: providerSecret });
    const endpoint = await addEndpoint(relay, source.id, receiver.url);

    const body = '{  "action" :"opened" ,\n\t"issue":{"title":"naïve ☃  café 𝄞","n":1.50,"e":"\\u00e9"}  }\n';
    const deliveryId = randomUUID();
    const signature256 = await githubSign(providerSecret, body);
    const signature1 = 'sha1=' + createHmac('sha1', providerSecret).update(body).digest('hex');
    const response = await post(source.ingestUrl, body, {
      'content-type': 'application/json',
      'user-agent': 'GitHub-Hookshot/044aadd',
      'x-github-event': 'issues',
      'x-github-delivery': deliveryId,
      'x-github-hook-id': '292929',
      'x-hub-signature-256': signature256,
      'x-hub-signature': signature1,
    });
    const messageId = accepted(response);

    const request = await deliveryOf(source.id);
    verifyDelivery(endpoint.secret, request);
    assert.equal(request.headers['webhook-id'], messageId);
    assert.ok(request.body.equals(Buffer.from(body, 'utf8')), `body changed: ${request.body.toString('utf8')}`);
    assert.equal(request.headers['content-type'], 'application/json');
    assert.equal(request.headers['x-hookrelay-event-type'], 'issues.opened');
    assert.equal(request.headers['x-hookrelay-source'], source.id);
    assert.equal(request.headers['x-hookrelay-verified'], 'true');
    assert.equal(request.headers['x-github-event'], 'issues');
    assert.equal(request.headers['x-github-delivery'], deliveryId);
    assert.equal(request.headers['x-github-hook-id'], '292929');
    assert.equal(request.headers['x-hub-signature-256'], undefined);
    assert.equal(request.headers['x-hub-signature'], undefined);
    assert.ok(!JSON.stringify(request.headers).includes(signature256.slice(7)), 'the provider signature leaked into some header');
    assert.notEqual(request.headers['user-agent'], 'GitHub-Hookshot/044aadd');

    const stored = await getMessage(relay, source.appId, messageId);
    assert.equal(stored.eventType, 'issues.opened');
  });

  it('Stripe: signed with stripe.webhooks.generateTestHeaderString, forwarded byte-exact without Stripe-Signature', async () => {
    const providerSecret = 'whsec_' + randomBytes(16).toString('hex');
    const source = await createSource(relay, 'stripe', { secret: providerSecret });
    const endpoint = await addEndpoint(relay, source.id, receiver.url);

    const body = '{\n  "id": "evt_1Nx2", "object":"event",\n  "type": "invoice.paid",\n  "data": {"object": {"amount_paid": 1.50, "memo": "Grüße 🧾 \\u2603"}}\n}';
    const header = Stripe.webhooks.generateTestHeaderString({ payload: body, secret: providerSecret });
    // The library's own verifier accepts what it signed: the request is a real Stripe request.
    assert.ok(Stripe.webhooks.constructEvent(body, header, providerSecret));
    const response = await post(source.ingestUrl, body, { 'content-type': 'application/json; charset=utf-8', 'stripe-signature': header, 'user-agent': 'Stripe/1.0' });
    const messageId = accepted(response);

    const request = await deliveryOf(source.id);
    verifyDelivery(endpoint.secret, request);
    assert.equal(request.headers['webhook-id'], messageId);
    assert.ok(request.body.equals(Buffer.from(body, 'utf8')), `body changed: ${request.body.toString('utf8')}`);
    assert.equal(request.headers['content-type'], 'application/json; charset=utf-8');
    assert.equal(request.headers['x-hookrelay-event-type'], 'invoice.paid');
    assert.equal(request.headers['x-hookrelay-source'], source.id);
    assert.equal(request.headers['stripe-signature'], undefined);
    assert.ok(!JSON.stringify(request.headers).includes(header.split('v1=')[1]), 'the provider signature leaked into some header');

    assert.equal((await getMessage(relay, source.appId, messageId)).eventType, 'invoice.paid');
  });

  it('Svix sender: signed with svix Webhook.sign (svix-* headers); the receiver gets hookrelay’s ids and signature, not the sender’s', async () => {
    const providerSecret = whsec();
    const source = await createSource(relay, 'svix', { secret: providerSecret });
    const endpoint = await addEndpoint(relay, source.id, receiver.url);

    const body = '{"type" : "user.created",   "data":{"name":"Zoë 🦊","tags":[ ],"score":2.0}}';
    const providerId = 'msg_' + randomBytes(8).toString('hex');
    const now = new Date();
    const signature = new SvixWebhook(providerSecret).sign(providerId, now, body);
    const response = await post(source.ingestUrl, body, {
      'content-type': 'application/json',
      'svix-id': providerId,
      'svix-timestamp': String(Math.floor(now.getTime() / 1000)),
      'svix-signature': signature,
    });
    const messageId = accepted(response);

    const request = await deliveryOf(source.id);
    verifyDelivery(endpoint.secret, request);
    assert.equal(request.headers['webhook-id'], messageId);
    assert.ok(request.body.equals(Buffer.from(body, 'utf8')));
    assert.equal(request.headers['content-type'], 'application/json');
    assert.equal(request.headers['x-hookrelay-event-type'], 'user.created');
    assert.equal(request.headers['x-hookrelay-source'], source.id);
    // svix-* shadow webhook-* in svix's own verifier: they are hookrelay's (the same values as webhook-*), never the sender's.
    for (const name of ['id', 'timestamp', 'signature']) assert.equal(request.headers[`svix-${name}`], request.headers[`webhook-${name}`], name);
    assert.notEqual(request.headers['svix-id'], providerId);
    assert.ok(!String(request.headers['svix-signature']).includes(signature.slice(3)), "the sender's signature leaked");
    assert.ok(!String(request.headers['webhook-signature']).includes(signature.slice(3)));
  });

  it('Standard Webhooks sender: signed with standardwebhooks Webhook.sign (webhook-* headers), re-signed by hookrelay', async () => {
    const providerSecret = whsec();
    const source = await createSource(relay, 'standard-webhooks', { secret: providerSecret });
    const endpoint = await addEndpoint(relay, source.id, receiver.url);

    const body = '{ "type":"order.shipped" ,"data" : {"city":"Kraków","emoji":"📦","qty":10e0}}\r\n';
    const providerId = 'evt-' + randomUUID();
    const now = new Date();
    const signature = new StandardWebhook(providerSecret.slice('whsec_'.length)).sign(providerId, now, body);
    const response = await post(source.ingestUrl, body, {
      'content-type': 'application/json',
      'webhook-id': providerId,
      'webhook-timestamp': String(Math.floor(now.getTime() / 1000)),
      'webhook-signature': signature,
    });
    const messageId = accepted(response);

    const request = await deliveryOf(source.id);
    verifyDelivery(endpoint.secret, request);
    assert.equal(request.headers['webhook-id'], messageId);
    assert.notEqual(request.headers['webhook-signature'], signature);
    assert.ok(!String(request.headers['webhook-signature']).includes(signature.slice(3)));
    assert.throws(() => new StandardWebhook(providerSecret.slice('whsec_'.length)).verify(request.body.toString('utf8'), request.headers as Record<string, string>));
    assert.ok(request.body.equals(Buffer.from(body, 'utf8')));
    assert.equal(request.headers['x-hookrelay-event-type'], 'order.shipped');
    assert.equal(request.headers['x-hookrelay-source'], source.id);
  });

  it('keepHeaders forwards chosen extra headers; an unverified (insecure none) source is flagged x-hookrelay-verified: false', async () => {
    const source = await createSource(relay, 'none', { insecure: true, keepHeaders: ['X-Request-Id'], eventTypeHeader: 'x-event' });
    const endpoint = await addEndpoint(relay, source.id, receiver.url);
    const body = 'plain  text ✓';
    const messageId = accepted(await post(source.ingestUrl, body, { 'content-type': 'text/plain; charset=utf-8', 'x-request-id': 'req-77', 'x-event': 'thing.done', 'x-other': 'dropped' }));

    const request = await deliveryOf(source.id);
    verifyDelivery(endpoint.secret, request);
    assert.equal(request.headers['webhook-id'], messageId);
    assert.ok(request.body.equals(Buffer.from(body, 'utf8')));
    assert.equal(request.headers['x-request-id'], 'req-77');
    assert.equal(request.headers['x-other'], undefined);
    assert.equal(request.headers['x-hookrelay-event-type'], 'thing.done');
    assert.equal(request.headers['x-hookrelay-verified'], 'false');
  });
});
