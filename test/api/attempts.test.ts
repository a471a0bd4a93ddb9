import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { MessageStatus, StatusCodeClass, Webhook as Webhook1 } from 'svix1';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { ADMIN_TOKEN, startRelay, type TestRelay } from '../helpers/relay.js';
import { waitUntil } from '../helpers/wait.js';
import { clockPast, collectPages, deliveriesOf, recordingSvix1, rejectsWith, verify, waitForDeliveryStatus } from './support.js';

describe('message attempts through the svix 1.x SDK', () => {
  let relay: TestRelay;
  let ok: Receiver;
  let failing: Receiver;
  before(async () => {
    // These tests follow failing deliveries through every retry to parked: no circuit breaker pausing the endpoint.
    relay = await startRelay({ circuitThreshold: '0' });
    ok = await startReceiver(() => ({ status: 200, body: 'ok-body' }));
    failing = await startReceiver(() => ({ status: 500, body: 'boom' }));
  });
  after(async () => {
    await relay.close();
    await ok.close();
    await failing.close();
  });

  async function twoEndpoints(name: string) {
    const app = await relay.svix1.application.create({ name });
    const good = await relay.svix1.endpoint.create(app.id, { url: ok.url, uid: 'good' });
    const bad = await relay.svix1.endpoint.create(app.id, { url: failing.url, uid: 'bad' });
    const msg = await relay.svix1.message.create(app.id, { eventType: 'thing.happened', channels: ['ch'], tags: ['tg'], payload: { v: 1 } });
    await waitForDeliveryStatus(relay.svix, app.id, good.id, msg.id, MessageStatus.Success);
    await waitForDeliveryStatus(relay.svix, app.id, bad.id, msg.id, MessageStatus.Fail);
    return { app, good, bad, msg };
  }

  it('records a 200 as success and every 500 as fail, with the response, until the schedule is exhausted', async () => {
    const { app, good, bad, msg } = await twoEndpoints('attempt-fields');

    const [success, ...rest] = (await relay.svix1.messageAttempt.listByEndpoint(app.id, good.id)).data;
    assert.equal(rest.length, 0);
    assert.match(success.id, /^atmpt_/);
    assert.equal(success.msgId, msg.id);
    assert.equal(success.endpointId, good.id);
    assert.equal(success.url, ok.url);
    assert.equal(success.status, MessageStatus.Success);
    assert.equal(success.statusText, 'success');
    assert.equal(success.responseStatusCode, 200);
    assert.equal(success.response, 'ok-body');
    assert.equal(success.triggerType, 0);
    assert.ok(success.responseDurationMs >= 0);
    assert.ok(Math.abs(success.timestamp.getTime() - Date.now()) < 60_000);

    const failures = (await relay.svix1.messageAttempt.listByEndpoint(app.id, 'bad')).data;
    assert.equal(failures.length, 3, 'retry schedule 0,100ms,200ms gives 3 attempts');
    for (const attempt of failures) {
      assert.equal(attempt.status, MessageStatus.Fail);
      assert.equal(attempt.statusText, 'fail');
      assert.equal(attempt.responseStatusCode, 500);
      assert.equal(attempt.response, 'boom');
      assert.equal(attempt.endpointId, bad.id);
      assert.equal(attempt.triggerType, 0);
    }
    assert.equal(deliveriesOf(failing, msg.id).length, 3);
    for (const request of deliveriesOf(failing, msg.id)) verify((await relay.svix1.endpoint.getSecret(app.id, bad.id)).key, request);

    // get returns the same attempt as the list
    assert.deepEqual(await relay.svix1.messageAttempt.get(app.id, msg.id, success.id), success);
    assert.deepEqual(await relay.svix1.messageAttempt.get(app.id, msg.id, failures[1].id), failures[1]);
    await rejectsWith(relay.svix1.messageAttempt.get(app.id, msg.id, 'atmpt_nope'), 404);

    // attempted messages: one per endpoint, with the delivery's final status
    const goodMsgs = (await relay.svix1.messageAttempt.listAttemptedMessages(app.id, good.id)).data;
    assert.deepEqual(
      goodMsgs.map((m) => [m.id, m.status, m.statusText, m.nextAttempt ?? null]),
      [[msg.id, 0, 'success', null]],
    );
    assert.deepEqual(goodMsgs[0].payload, { v: 1 });
    const badMsgs = (await relay.svix1.messageAttempt.listAttemptedMessages(app.id, bad.id)).data;
    assert.deepEqual(
      badMsgs.map((m) => [m.id, m.status, m.statusText, m.nextAttempt ?? null]),
      [[msg.id, 2, 'fail', null]],
    );
    assert.equal((await relay.svix1.messageAttempt.listAttemptedMessages(app.id, bad.id, { status: MessageStatus.Success })).data.length, 0);
    assert.equal((await relay.svix1.messageAttempt.listAttemptedMessages(app.id, bad.id, { status: MessageStatus.Fail })).data.length, 1);

    // attempted destinations: both endpoints with their status
    const destinations = (await relay.svix1.messageAttempt.listAttemptedDestinations(app.id, msg.id)).data;
    assert.deepEqual(
      destinations.map((d) => [d.id, d.url, d.status, d.statusText]).sort(),
      [
        [good.id, ok.url, 0, 'success'],
        [bad.id, failing.url, 2, 'fail'],
      ].sort(),
    );
  });

  it('carries the request each attempt sent (hookrelay extension): method and headers exactly as the receiver got them', async () => {
    const receiver = await startReceiver(() => ({ status: 200, body: 'seen' }));
    try {
      const app = await relay.svix1.application.create({ name: 'attempt-request' });
      // Custom headers in mixed case, one with quotes and a comma; Authorization is the receiver's own credential.
      const ep = await relay.svix1.endpoint.create(app.id, { url: receiver.url, headers: { 'X-Tenant': 'acme "north", eu', Authorization: 'Bearer receiver-token' } });
      const secret = (await relay.svix1.endpoint.getSecret(app.id, ep.id)).key;
      const msg = await relay.svix1.message.create(app.id, { eventType: 'thing.happened', payload: { v: 2 } });
      const [got] = await receiver.waitFor(1);
      await waitForDeliveryStatus(relay.svix, app.id, ep.id, msg.id, MessageStatus.Success);

      // What the receiver got, in order and case, less the HTTP/1.1 framing the client adds (documented in docs/api.md).
      const wire: [string, string][] = [];
      for (let i = 0; i < got.rawHeaders.length; i += 2) wire.push([got.rawHeaders[i], got.rawHeaders[i + 1]]);
      const framing = new Set(['host', 'connection', 'content-length']);
      const expected = wire.filter(([name]) => !framing.has(name.toLowerCase()));
      assert.ok(expected.some(([name]) => name === 'webhook-signature'), JSON.stringify(wire));

      const list = await relay.api('GET', `/api/v1/app/${app.id}/attempt/endpoint/${ep.id}`);
      assert.equal(list.status, 200, list.text);
      const [listed] = list.body.data;
      assert.deepEqual(listed.request, { method: 'POST', headers: expected });
      const one = await relay.api('GET', `/api/v1/app/${app.id}/msg/${msg.id}/attempt/${listed.id}`);
      assert.deepEqual(one.body.request, { method: 'POST', headers: expected });

      // The stored headers are the ones that were signed: the official verifier accepts them with the body received.
      const stored = Object.fromEntries(one.body.request.headers as [string, string][]);
      assert.deepEqual(new Webhook1(secret).verify(got.body.toString('utf8'), stored), { v: 2 });
      assert.equal(stored['X-Tenant'], 'acme "north", eu');
      // Nothing of hookrelay's own: no admin token, no signing secret.
      for (const [, value] of one.body.request.headers as [string, string][]) assert.ok(!value.includes(secret.replace(/^whsec_/, '')) && !value.includes(ADMIN_TOKEN));

      // A transformation's method and headers are what was sent, and what is shown.
      await relay.svix.endpoint.transformation.patch(app.id, ep.id, {
        code: `function handler(webhook) { webhook.method = 'PUT'; webhook.headers['X-Transformed'] = 'yes'; return webhook; }`,
        enabled: true,
      });
      const second = await relay.svix1.message.create(app.id, { eventType: 'thing.happened', payload: { v: 3 } });
      const [, transformed] = await receiver.waitFor(2);
      await waitForDeliveryStatus(relay.svix, app.id, ep.id, second.id, MessageStatus.Success);
      assert.equal(transformed.method, 'PUT');
      const [attempt] = (await relay.api('GET', `/api/v1/app/${app.id}/attempt/msg/${second.id}`)).body.data;
      assert.equal(attempt.request.method, 'PUT');
      assert.deepEqual(attempt.request.headers.find(([name]: [string, string]) => name === 'X-Transformed'), ['X-Transformed', 'yes']);
      assert.equal(attempt.request.headers.find(([name]: [string, string]) => name === 'webhook-id')[1], transformed.headers['webhook-id']);

      // Expunging the attempt's content forgets what it sent, too.
      assert.equal((await relay.api('DELETE', `/api/v1/app/${app.id}/msg/${msg.id}/attempt/${listed.id}/content`)).status, 204);
      assert.equal((await relay.api('GET', `/api/v1/app/${app.id}/msg/${msg.id}/attempt/${listed.id}`)).body.request, null);
    } finally {
      await receiver.close();
    }
  });

  it('lists attempts by message with endpoint, status and status-code filters, across pages', async () => {
    const { app, good, bad, msg } = await twoEndpoints('attempt-lists');
    const byMsg = (await relay.svix1.messageAttempt.listByMsg(app.id, msg.id)).data;
    assert.equal(byMsg.length, 4);
    assert.equal(new Set(byMsg.map((a) => a.id)).size, 4);
    assert.equal((await relay.svix1.messageAttempt.listByMsg(app.id, msg.id, { endpointId: bad.id })).data.length, 3);
    assert.deepEqual(
      (await relay.svix1.messageAttempt.listByMsg(app.id, msg.id, { status: MessageStatus.Success })).data.map((a) => a.endpointId),
      [good.id],
    );
    assert.equal((await relay.svix1.messageAttempt.listByMsg(app.id, msg.id, { statusCodeClass: StatusCodeClass.CodeNone })).data.length, 0);
    assert.equal((await relay.svix1.messageAttempt.listByMsg(app.id, msg.id, { statusCodeClass: StatusCodeClass.Code5xx })).data.length, 3);
    assert.equal((await relay.svix1.messageAttempt.listByMsg(app.id, msg.id, { statusCodeClass: StatusCodeClass.Code2xx })).data.length, 1);
    assert.equal((await relay.svix1.messageAttempt.listByMsg(app.id, msg.id, { eventTypes: ['other.type'] })).data.length, 0);
    assert.equal((await relay.svix1.messageAttempt.listByEndpoint(app.id, bad.id, { channel: 'ch', tag: 'tg' })).data.length, 3);
    assert.equal((await relay.svix1.messageAttempt.listByEndpoint(app.id, bad.id, { channel: 'nope' })).data.length, 0);

    const { items, pages } = await collectPages((iterator) => relay.svix1.messageAttempt.listByEndpoint(app.id, bad.id, { limit: 1, iterator }));
    assert.ok(pages >= 3);
    assert.equal(items.length, 3);
    assert.equal(new Set(items.map((a) => a.id)).size, 3);

    const withMsg = (await relay.svix1.messageAttempt.listByEndpoint(app.id, good.id, { withMsg: true })).data;
    assert.equal(withMsg[0].msg?.id, msg.id);
    assert.equal(withMsg[0].msg?.eventType, 'thing.happened');
  });

  it('resends one message to one endpoint as a manual attempt', async () => {
    const { app, good, msg } = await twoEndpoints('attempt-resend');
    assert.equal(deliveriesOf(ok, msg.id).length, 1);

    const { svix, calls } = recordingSvix1(relay);
    await svix.messageAttempt.resend(app.id, msg.id, good.id);
    assert.equal(calls.at(-1)!.status, 202);
    const deliveries = await waitForCount(() => deliveriesOf(ok, msg.id), 2);
    const secret = (await relay.svix1.endpoint.getSecret(app.id, good.id)).key;
    for (const request of deliveries) assert.deepEqual(verify(secret, request), { v: 1 });

    await waitForDeliveryStatus(relay.svix, app.id, good.id, msg.id, MessageStatus.Success);
    const attempts = await waitForCount(async () => (await relay.svix1.messageAttempt.listByEndpoint(app.id, good.id)).data, 2);
    const triggers = attempts.map((a) => a.triggerType).sort();
    assert.deepEqual(triggers, [0, 1], 'the resent attempt is manual (1), the original scheduled (0)');
    const manual = attempts.find((a) => a.triggerType === 1)!;
    assert.equal(manual.status, MessageStatus.Success);
    assert.equal(manual.responseStatusCode, 200);
    await rejectsWith(relay.svix1.messageAttempt.resend(app.id, 'msg_nope', good.id), 404);
    await rejectsWith(relay.svix1.messageAttempt.resend(app.id, msg.id, 'ep_nope'), 404);
  });

  it('recovers parked deliveries of messages since a time, and leaves older ones parked', async () => {
    let down = true;
    const flaky = await startReceiver(() => (down ? { status: 500, body: 'down' } : { status: 200, body: 'up' }));
    try {
      const app = await relay.svix1.application.create({ name: 'attempt-recover' });
      const ep = await relay.svix1.endpoint.create(app.id, { url: flaky.url });
      const secret = (await relay.svix1.endpoint.getSecret(app.id, ep.id)).key;

      const old = await relay.svix1.message.create(app.id, { eventType: 'e.old', payload: { which: 'old' } });
      await waitForDeliveryStatus(relay.svix, app.id, ep.id, old.id, MessageStatus.Fail);
      await clockPast(old.timestamp.getTime());
      const since = new Date();
      const recent = [
        await relay.svix1.message.create(app.id, { eventType: 'e.new', payload: { which: 'new1' } }),
        await relay.svix1.message.create(app.id, { eventType: 'e.new', payload: { which: 'new2' } }),
      ];
      for (const m of recent) await waitForDeliveryStatus(relay.svix, app.id, ep.id, m.id, MessageStatus.Fail);
      for (const m of [old, ...recent]) assert.equal(deliveriesOf(flaky, m.id).length, 3, 'parked after all 3 attempts');

      down = false;
      const { svix, calls } = recordingSvix1(relay);
      const task = await svix.endpoint.recover(app.id, ep.id, { since });
      assert.equal(calls.at(-1)!.status, 202);
      assert.equal(task.task, 'endpoint.recover');
      assert.ok(typeof task.id === 'string' && task.id.length > 0);
      // Recover is applied before the answer: the older message is still parked.
      const oldStatus = (await relay.svix1.messageAttempt.listAttemptedMessages(app.id, ep.id)).data.find((m) => m.id === old.id);
      assert.equal(oldStatus?.status, MessageStatus.Fail);

      for (const m of recent) await waitForDeliveryStatus(relay.svix, app.id, ep.id, m.id, MessageStatus.Success);
      for (const m of recent) {
        const requests = deliveriesOf(flaky, m.id);
        assert.equal(requests.length, 4);
        verify(secret, requests[3]);
        const attempts = (await relay.svix1.messageAttempt.listByMsg(app.id, m.id)).data;
        assert.equal(attempts.length, 4);
        assert.deepEqual(
          attempts.filter((a) => a.status === MessageStatus.Success).map((a) => [a.responseStatusCode, a.response, a.triggerType]),
          [[200, 'up', 1]],
        );
      }
      assert.equal(deliveriesOf(flaky, old.id).length, 3, 'the message older than since was not sent again');
      assert.equal((await relay.svix1.messageAttempt.listByMsg(app.id, old.id)).data.length, 3);
      const finalOld = (await relay.svix1.messageAttempt.listAttemptedMessages(app.id, ep.id)).data.find((m) => m.id === old.id);
      assert.equal(finalOld?.status, MessageStatus.Fail);
    } finally {
      await flaky.close();
    }
  });
});

async function waitForCount<T>(read: () => T[] | Promise<T[]>, count: number): Promise<T[]> {
  return waitUntil(`${count} items`, async () => {
    const items = await read();
    return items.length >= count ? items : null;
  }) as Promise<T[]>;
}
