import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { startRelay, type TestRelay } from '../helpers/relay.js';
import { waitUntil } from '../helpers/wait.js';
import { createApp, createEndpoint, deliveryStatus, headerOf, send, verifySignature, webhookIds } from './support.js';

describe('delivery', () => {
  let relay: TestRelay;
  const receivers: Receiver[] = [];
  const receiver = async () => {
    const r = await startReceiver();
    receivers.push(r);
    return r;
  };

  before(async () => {
    relay = await startRelay();
  });
  after(async () => {
    await Promise.all(receivers.map((r) => r.close()));
    await relay.close();
  });

  it('POSTs the exact payload, signed so that the official standardwebhooks and svix verifiers accept it', async () => {
    const appId = await createApp(relay);
    const target = await receiver();
    const endpoint = await createEndpoint(relay, appId, { url: target.url });
    const payload = { type: 'invoice.paid', data: { amount: 1200, currency: 'EUR', note: 'naïve ✓ "quoted"', items: [1, 2.5, null, true] } };
    const sentAt = Date.now();
    const msgId = await send(relay, appId, payload, 'invoice.paid');

    const [request] = await target.waitFor(1);
    assert.equal(request.method, 'POST');
    assert.equal(request.path, '/webhook');
    assert.match(headerOf(request, 'content-type'), /^application\/json\b/);
    assert.equal(request.body.toString('utf8'), JSON.stringify(payload));
    assert.equal(headerOf(request, 'webhook-id'), msgId);
    const timestamp = Number(headerOf(request, 'webhook-timestamp'));
    assert.ok(Number.isInteger(timestamp), 'webhook-timestamp is whole seconds');
    assert.ok(Math.abs(timestamp * 1000 - sentAt) < 5_000, `webhook-timestamp ${timestamp} is not within 5 s of ${sentAt}`);
    assert.deepEqual(verifySignature(request, endpoint.secret), payload);

    // A receiver holding some other secret must reject it.
    const stranger = await createEndpoint(relay, appId, { url: 'http://127.0.0.1:9/unused', disabled: true });
    assert.throws(() => verifySignature(request, stranger.secret));

    await waitUntil('the delivery to be recorded as a success', async () => (await deliveryStatus(relay, appId, msgId, endpoint.id))?.status === 0);
  });

  it('fans a message out to every enabled endpoint of its app, and to no endpoint elsewhere', async () => {
    const appId = await createApp(relay);
    const otherAppId = await createApp(relay);
    const targets = await Promise.all([receiver(), receiver(), receiver()]);
    const endpoints = await Promise.all(targets.map((t) => createEndpoint(relay, appId, { url: t.url })));
    const disabledTarget = await receiver();
    const disabled = await createEndpoint(relay, appId, { url: disabledTarget.url, disabled: true });
    const otherTarget = await receiver();
    await createEndpoint(relay, otherAppId, { url: otherTarget.url });

    const msgId = await send(relay, appId, { n: 1 });
    for (const [i, target] of targets.entries()) {
      const [request] = await target.waitFor(1);
      assert.equal(headerOf(request, 'webhook-id'), msgId);
      assert.deepEqual(verifySignature(request, endpoints[i].secret), { n: 1 });
    }

    // Once the relay has recorded the fan-out as done, nothing else can still be on its way.
    await waitUntil('all three deliveries to succeed', async () => {
      const states = await Promise.all(endpoints.map((e) => deliveryStatus(relay, appId, msgId, e.id)));
      return states.every((s) => s?.status === 0);
    });
    const destinations = await relay.svix.messageAttempt.listAttemptedDestinations(appId, msgId);
    assert.deepEqual(destinations.data.map((d) => d.id).sort(), endpoints.map((e) => e.id).sort());
    assert.equal(disabledTarget.received.length, 0, 'a disabled endpoint received the message');
    assert.equal(otherTarget.received.length, 0, "another app's endpoint received the message");
    for (const target of targets) assert.equal(target.received.length, 1);

    // Controls: both silent receivers do work, and get only what is theirs.
    await relay.svix.endpoint.patch(appId, disabled.id, { disabled: false });
    const second = await send(relay, appId, { n: 2 });
    const otherMsg = await send(relay, otherAppId, { n: 3 });
    assert.deepEqual(webhookIds(await disabledTarget.waitFor(1)), [second]);
    assert.deepEqual(webhookIds(await otherTarget.waitFor(1)), [otherMsg]);
    assert.deepEqual(verifySignature(disabledTarget.received[0], disabled.secret), { n: 2 });
  });
});
