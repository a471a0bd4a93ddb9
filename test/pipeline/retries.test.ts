import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startReceiver, type Answer, type Received, type Receiver } from '../helpers/receiver.js';
import { startRelay, type TestRelay } from '../helpers/relay.js';
import { waitUntil } from '../helpers/wait.js';
import { attemptsOf, createApp, createEndpoint, deliveryStatus, send, verifySignature, webhookIds } from './support.js';

// The harness relay retries on the schedule 0, 100ms, 200ms (±20 % jitter): three attempts, then parked.
describe('retries', () => {
  let relay: TestRelay;
  const receivers: Receiver[] = [];
  const receiver = async (behaviour: (request: Received, n: number) => Answer) => {
    const r = await startReceiver(behaviour);
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

  it('retries after 500s and ends in success when the receiver recovers', async () => {
    const appId = await createApp(relay);
    const target = await receiver((_, n) => ({ status: n < 2 ? 500 : 200, body: n < 2 ? 'upstream down' : 'thanks' }));
    const endpoint = await createEndpoint(relay, appId, { url: target.url });
    const msgId = await send(relay, appId, { order: 7 });

    await waitUntil('the delivery to succeed', async () => (await deliveryStatus(relay, appId, msgId, endpoint.id))?.status === 0);
    assert.equal(target.received.length, 3);
    assert.deepEqual(webhookIds(target.received), [msgId, msgId, msgId]);
    for (const request of target.received) assert.deepEqual(verifySignature(request, endpoint.secret), { order: 7 });

    const attempts = await attemptsOf(relay, appId, msgId);
    assert.deepEqual(
      attempts.map((a) => [a.statusText, a.status, a.responseStatusCode, a.response]),
      [
        ['fail', 2, 500, 'upstream down'],
        ['fail', 2, 500, 'upstream down'],
        ['success', 0, 200, 'thanks'],
      ],
    );
    const [delivery] = (await relay.svix.messageAttempt.listAttemptedMessages(appId, endpoint.id)).data;
    assert.equal(delivery.statusText, 'success');
  });

  it('parks the delivery as failed after the last scheduled attempt', async () => {
    const appId = await createApp(relay);
    const target = await receiver(() => ({ status: 500 }));
    const endpoint = await createEndpoint(relay, appId, { url: target.url });
    const msgId = await send(relay, appId, { order: 8 });

    await waitUntil('the delivery to be parked', async () => (await deliveryStatus(relay, appId, msgId, endpoint.id))?.status === 2);
    // Parked is final: the count can no longer grow.
    assert.equal(target.received.length, 3);
    const [first, second, third] = target.received.map((r) => r.at);
    assert.ok(second - first >= 75, `second attempt came ${second - first} ms after the first; the schedule says 100 ms ±20 %`);
    assert.ok(third - second >= 155, `third attempt came ${third - second} ms after the second; the schedule says 200 ms ±20 %`);

    const attempts = await attemptsOf(relay, appId, msgId);
    assert.deepEqual(attempts.map((a) => a.statusText), ['fail', 'fail', 'fail']);
    const [parked] = (await relay.svix.messageAttempt.listAttemptedMessages(appId, endpoint.id, { status: 2 })).data;
    assert.equal(parked.id, msgId);
    assert.equal(parked.status, 2);
    assert.equal(parked.statusText, 'fail');
    assert.equal(parked.nextAttempt ?? null, null);
  });

  it('counts a reset connection and a redirect as failures, and does not follow the redirect', async () => {
    const appId = await createApp(relay);
    const target = await receiver((_, n) =>
      n === 0 ? { destroy: true } : n === 1 ? { status: 302, headers: { location: '/elsewhere' }, body: 'moved' } : { status: 204 },
    );
    const endpoint = await createEndpoint(relay, appId, { url: target.url });
    const msgId = await send(relay, appId, { order: 9 });

    await waitUntil('the delivery to succeed', async () => (await deliveryStatus(relay, appId, msgId, endpoint.id))?.status === 0);
    assert.deepEqual(target.received.map((r) => r.path), ['/webhook', '/webhook', '/webhook']);
    const attempts = await attemptsOf(relay, appId, msgId);
    assert.deepEqual(attempts.map((a) => [a.statusText, a.responseStatusCode]), [
      ['fail', 0],
      ['fail', 302],
      ['success', 204],
    ]);
    assert.ok(attempts[0].response.length > 0, 'the reset attempt records why it failed');
  });

  it('on 410 Gone parks the delivery and disables the endpoint until it is re-enabled', async () => {
    const appId = await createApp(relay);
    // The 410 is held back a little so that more messages queue behind it (maxInFlight 1).
    const target = await receiver((_, n) => (n === 0 ? { status: 410, body: 'gone', delayMs: 400 } : { status: 200 }));
    const endpoint = await createEndpoint(relay, appId, { url: target.url, maxInFlight: 1 });
    const first = await send(relay, appId, { n: 1 });
    const queued = [await send(relay, appId, { n: 2 }), await send(relay, appId, { n: 3 })];

    const disabled = await waitUntil('the endpoint to be disabled', async () => {
      const response = await relay.api('GET', `/api/v1/app/${appId}/endpoint/${endpoint.id}`);
      return response.body.disabled === true ? response.body : null;
    });
    assert.match(disabled.disabledReason, /410/);
    assert.equal((await deliveryStatus(relay, appId, first, endpoint.id))?.statusText, 'fail');
    assert.equal((await attemptsOf(relay, appId, first)).length, 1, 'a 410 is not retried');
    for (const id of queued) assert.equal((await deliveryStatus(relay, appId, id, endpoint.id))?.statusText, 'pending');

    const whileDisabled = await send(relay, appId, { n: 4 });
    assert.equal(await deliveryStatus(relay, appId, whileDisabled, endpoint.id), undefined, 'a disabled endpoint is not part of the fan-out');

    const enabled = await relay.api('PATCH', `/api/v1/app/${appId}/endpoint/${endpoint.id}`, { disabled: false });
    assert.equal(enabled.status, 200);
    assert.equal(enabled.body.disabled, false);
    assert.equal(enabled.body.disabledReason, null);
    const afterEnabling = await send(relay, appId, { n: 5 });

    await target.waitFor(4);
    await waitUntil('the queued and new deliveries to succeed', async () => {
      const states = await Promise.all([...queued, afterEnabling].map((id) => deliveryStatus(relay, appId, id, endpoint.id)));
      return states.every((s) => s?.status === 0);
    });
    assert.deepEqual(webhookIds(target.received).sort(), [first, ...queued, afterEnabling].sort());
  });

  it('waits at least as long as a 429 Retry-After asks', async () => {
    const appId = await createApp(relay);
    const target = await receiver((_, n) => (n === 0 ? { status: 429, headers: { 'retry-after': '1' } } : { status: 200 }));
    const endpoint = await createEndpoint(relay, appId, { url: target.url });
    const msgId = await send(relay, appId, { n: 1 });

    const [first, second] = await target.waitFor(2, 10_000);
    assert.ok(second.at - first.at >= 900, `retried ${second.at - first.at} ms after a Retry-After of 1 s`);
    await waitUntil('the delivery to succeed', async () => (await deliveryStatus(relay, appId, msgId, endpoint.id))?.status === 0);
    assert.deepEqual((await attemptsOf(relay, appId, msgId)).map((a) => a.responseStatusCode), [429, 200]);
  });
});
