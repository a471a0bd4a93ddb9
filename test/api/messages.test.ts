import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { MessageIn, MessageOut } from 'svix1';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { startRelay, type TestRelay } from '../helpers/relay.js';
import { assertErrorBody, clockPast, collectPages, deliveriesOf, deliveryOf, recordingSvix1, rejectsWith, verify } from './support.js';

describe('messages through the svix 1.x SDK', () => {
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

  it('accepts a message with 202, stores it and delivers exactly the payload, signed', async () => {
    const app = await relay.svix1.application.create({ name: 'msg-create' });
    const ep = await relay.svix1.endpoint.create(app.id, { url: receiver.url });
    const secret = (await relay.svix1.endpoint.getSecret(app.id, ep.id)).key;
    const payload = { type: 'invoice.paid', data: { amount: 1200, note: 'naïve ✓', list: [1, 2, 3] } };

    const { svix, calls } = recordingSvix1(relay);
    const msg = await svix.message.create(app.id, { eventType: 'invoice.paid', payload, channels: ['billing'], tags: ['t-1'] });
    assert.equal(calls.at(-1)!.status, 202);
    assert.match(msg.id, /^msg_/);
    assert.equal(msg.eventType, 'invoice.paid');
    assert.deepEqual(msg.channels, ['billing']);
    assert.deepEqual(msg.tags, ['t-1']);
    assert.equal(msg.eventId ?? null, null);
    assert.ok(Math.abs(msg.timestamp.getTime() - Date.now()) < 60_000);

    const request = await deliveryOf(receiver, msg.id);
    assert.equal(request.method, 'POST');
    assert.equal(request.path, '/webhook');
    assert.match(String(request.headers['content-type']), /^application\/json/);
    assert.deepEqual(verify(secret, request), payload);

    const stored = await relay.svix1.message.get(app.id, msg.id);
    assert.deepEqual(stored.payload, payload);
    assert.equal(stored.timestamp.getTime(), msg.timestamp.getTime());

    // with withContent: false the SDK passes the server's payload through: the server leaves the content out.
    const lean = await relay.svix1.message.create(app.id, { eventType: 'invoice.paid', payload: { big: 'x'.repeat(100) } }, { withContent: false });
    assert.deepEqual(lean.payload, {});
    assert.deepEqual((await relay.svix1.message.get(app.id, lean.id)).payload, { big: 'x'.repeat(100) });
  });

  it('finds a message by its eventId and an app by its uid, and refuses a duplicate eventId with 409', async () => {
    const app = await relay.svix1.application.create({ name: 'msg-lookup', uid: 'lookup-app' });
    const msg = await relay.svix1.message.create('lookup-app', { eventType: 'user.created', eventId: 'evt-42', payload: { id: 42 } });
    assert.equal(msg.eventId, 'evt-42');
    const byEventId = await relay.svix1.message.get('lookup-app', 'evt-42');
    assert.equal(byEventId.id, msg.id);
    assert.deepEqual(byEventId.payload, { id: 42 });
    assert.equal((await relay.svix1.message.get(app.id, msg.id)).eventId, 'evt-42');

    const body = await rejectsWith(relay.svix1.message.create(app.id, { eventType: 'user.created', eventId: 'evt-42', payload: { id: 43 } }), 409);
    assertErrorBody(body, 'conflict');
    const all = await relay.svix1.message.list(app.id, { limit: 250 });
    assert.deepEqual(
      all.data.map((m) => m.id),
      [msg.id],
    );
    assertErrorBody(await rejectsWith(relay.svix1.message.get(app.id, 'msg_doesnotexist'), 404), 'not_found');
    assertErrorBody(await rejectsWith(relay.svix1.message.create('no-such-app', { eventType: 'a', payload: {} }), 404), 'not_found');
  });

  it('returns the same message for a repeated idempotency-key and delivers it once', async () => {
    const app = await relay.svix1.application.create({ name: 'msg-idem' });
    const ep = await relay.svix1.endpoint.create(app.id, { url: receiver.url });
    // FIFO: once a later message has arrived, every earlier delivery to this endpoint has been made.
    const fifo = await relay.api('PATCH', `/api/v1/app/${app.id}/endpoint/${ep.id}`, { ordering: 'fifo' });
    assert.equal(fifo.status, 200);

    const first = await relay.svix1.message.create(app.id, { eventType: 'order.placed', payload: { n: 1 } }, { idempotencyKey: 'order-1-key' });
    const again = await relay.svix1.message.create(app.id, { eventType: 'order.placed', payload: { n: 1 } }, { idempotencyKey: 'order-1-key' });
    assert.equal(again.id, first.id);
    assert.equal(again.timestamp.getTime(), first.timestamp.getTime());
    const raw = await relay.api('POST', `/api/v1/app/${app.id}/msg`, { eventType: 'order.placed', payload: { n: 1 } }, { headers: { 'idempotency-key': 'order-1-key' } });
    assert.equal(raw.status, 202);
    assert.equal(raw.body.id, first.id);

    const other = await relay.svix1.message.create(app.id, { eventType: 'order.placed', payload: { n: 2 } }, { idempotencyKey: 'order-2-key' });
    assert.notEqual(other.id, first.id);

    await deliveryOf(receiver, other.id);
    assert.equal(deliveriesOf(receiver, first.id).length, 1);
    assert.equal(deliveriesOf(receiver, other.id).length, 1);
    const listed = await relay.svix1.message.list(app.id, { limit: 250 });
    assert.deepEqual(
      listed.data.map((m) => m.id),
      [other.id, first.id],
    );
    const attempts = await relay.svix1.messageAttempt.listByMsg(app.id, first.id);
    assert.equal(attempts.data.length, 1);
  });

  it('lists messages newest first, filtered by event type, channel, tag and time, across pages', async () => {
    const app = await relay.svix1.application.create({ name: 'msg-list' });
    const make = async (input: Omit<MessageIn, 'payload'>, n: number): Promise<MessageOut> => {
      const msg = await relay.svix1.message.create(app.id, { ...input, payload: { n } });
      await clockPast(msg.timestamp.getTime());
      return msg;
    };
    const m1 = await make({ eventType: 'a.one', channels: ['c1'], tags: ['t1'] }, 1);
    const m2 = await make({ eventType: 'a.two', channels: ['c2'], tags: ['t2'] }, 2);
    const m3 = await make({ eventType: 'a.one', channels: ['c1', 'c2'], tags: ['t1', 't2'] }, 3);
    const m4 = await make({ eventType: 'a.three' }, 4);
    const m5 = await make({ eventType: 'a.two' }, 5);

    const ids = async (options: Parameters<typeof relay.svix1.message.list>[1]) =>
      (await collectPages((iterator) => relay.svix1.message.list(app.id, { ...options, iterator }))).items.map((m) => m.id);

    const { items, pages } = await collectPages((iterator) => relay.svix1.message.list(app.id, { limit: 2, iterator }));
    assert.equal(pages, 3);
    assert.deepEqual(
      items.map((m) => m.id),
      [m5.id, m4.id, m3.id, m2.id, m1.id],
    );
    assert.deepEqual(
      items.map((m) => (m.payload as { n: number }).n),
      [5, 4, 3, 2, 1],
    );

    assert.deepEqual(await ids({ eventTypes: ['a.one'] }), [m3.id, m1.id]);
    assert.deepEqual(await ids({ eventTypes: ['a.one', 'a.two'], limit: 1 }), [m5.id, m3.id, m2.id, m1.id]);
    assert.deepEqual(await ids({ channel: 'c2' }), [m3.id, m2.id]);
    assert.deepEqual(await ids({ tag: 't1' }), [m3.id, m1.id]);
    assert.deepEqual(await ids({ after: m2.timestamp }), [m5.id, m4.id, m3.id]);
    assert.deepEqual(await ids({ before: m3.timestamp }), [m2.id, m1.id]);
    assert.deepEqual(await ids({ after: m1.timestamp, before: m4.timestamp }), [m3.id, m2.id]);
    assert.deepEqual(await ids({ eventTypes: ['a.one'], channel: 'c2', tag: 't2' }), [m3.id]);
    assert.deepEqual(await ids({ eventTypes: ['nothing.here'] }), []);

    const lean = await relay.svix1.message.list(app.id, { withContent: false, limit: 250 });
    assert.equal(lean.data.length, 5);
    for (const m of lean.data) assert.deepEqual(m.payload, {});
  });

  it('gets a message with or without content and expunges the content for good', async () => {
    const app = await relay.svix1.application.create({ name: 'msg-content' });
    const msg = await relay.svix1.message.create(app.id, { eventType: 'doc.saved', eventId: 'doc-1', payload: { secret: 'pii' } });
    assert.deepEqual((await relay.svix1.message.get(app.id, msg.id)).payload, { secret: 'pii' });
    assert.deepEqual((await relay.svix1.message.get(app.id, msg.id, { withContent: true })).payload, { secret: 'pii' });
    const without = await relay.svix1.message.get(app.id, msg.id, { withContent: false });
    assert.deepEqual(without.payload, {});
    assert.equal(without.eventType, 'doc.saved');

    const { svix, calls } = recordingSvix1(relay);
    await svix.message.expungeContent(app.id, 'doc-1');
    assert.equal(calls.at(-1)!.status, 204);
    const expunged = await relay.svix1.message.get(app.id, msg.id);
    assert.deepEqual(expunged.payload, {});
    assert.equal(expunged.eventId, 'doc-1', 'the message itself remains');
    const listed = await relay.svix1.message.list(app.id);
    assert.ok(!JSON.stringify(listed.data).includes('pii'));
    await rejectsWith(relay.svix1.message.expungeContent(app.id, 'msg_nope'), 404);
  });
});
