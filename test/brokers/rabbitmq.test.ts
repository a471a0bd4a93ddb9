import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import amqp, { type Channel, type ChannelModel, type GetMessage } from 'amqplib';
import { allSucceeded, failedAttempts, failureMatching, sendMany, tally } from '../helpers/broker-bulk.js';
import { brokerSkip, startRabbitmq, type TestBroker } from '../helpers/brokers.js';
import { startRelay, type TestRelay } from '../helpers/relay.js';
import { waitUntil } from '../helpers/wait.js';

/** The node's only user (no `guest`): created with the node, all permissions on `/`. */
const USER = 'hookrelay';
const PASSWORD = 'amqp-pass-' + randomUUID();

describe('rabbitmq destination (real rabbitmq-server)', { skip: brokerSkip('rabbitmq-server', 'rabbitmq.sh') }, () => {
  let rabbit: TestBroker;
  let relay: TestRelay;
  let reader: ChannelModel;
  let channel: Channel;

  const connectReader = async () => {
    reader = await amqp.connect(`amqp://${USER}:${PASSWORD}@${rabbit.address}`);
    reader.on('error', () => undefined);
    channel = await reader.createChannel();
    channel.on('error', () => undefined);
  };

  before(async () => {
    // Retries long enough to outlast a restart (a RabbitMQ node takes several seconds to boot).
    [rabbit, relay] = await Promise.all([startRabbitmq({ user: { name: USER, password: PASSWORD } }), startRelay({ retrySchedule: '0,200ms,300ms,500ms,1s,1s,2s,2s,3s,3s,3s,3s,3s,3s,3s,3s,3s,3s,3s,3s', circuitCooldown: '1s', circuitMaxCooldown: '2s' })]);
    await connectReader();
  });
  after(async () => {
    await reader?.close().catch(() => undefined);
    await relay?.close();
    await rabbit?.close();
  });

  const destination = (extra: Record<string, unknown> = {}) => ({ type: 'rabbitmq', address: rabbit.address, username: USER, password: PASSWORD, exchange: '', routingKey: 'webhooks', timeoutMs: 3000, ...extra });

  async function endpoint(appId: string, body: Record<string, unknown>): Promise<string> {
    const response = await relay.api('POST', `/api/v1/app/${appId}/endpoint`, body);
    assert.equal(response.status, 201, response.text);
    return response.body.id;
  }

  async function attempts(appId: string, msgId: string, endpointId: string) {
    const page = await relay.svix.messageAttempt.listByMsg(appId, msgId, { endpointId, limit: 250 });
    return [...page.data].sort((a, b) => a.timestamp.getTime() - b.timestamp.getTime() || a.id.localeCompare(b.id));
  }

  const delivered = (appId: string, ids: string[], endpointId: string) =>
    waitUntil(`${ids.length} message(s) delivered to ${endpointId}`, async () => {
      for (const id of ids) if (!(await attempts(appId, id, endpointId)).some((a) => a.status === 0)) return false;
      return true;
    }, 60_000);

  const failedWith = async (appId: string, msgId: string, endpointId: string) =>
    (await waitUntil('a failed attempt', async () => (await attempts(appId, msgId, endpointId)).find((a) => a.status === 2), 20_000))!.response;

  async function queue(): Promise<string> {
    const name = 'hr-' + randomUUID();
    await channel.assertQueue(name, { durable: true });
    return name;
  }

  async function drain(name: string): Promise<GetMessage[]> {
    const out: GetMessage[] = [];
    for (;;) {
      const got = await channel.get(name, { noAck: true });
      if (!got) return out;
      out.push(got);
    }
  }

  /** The message-id property of every message in the queue, consumed (and so removed) without acks. */
  async function queueIds(name: string): Promise<string[]> {
    const { messageCount } = await channel.checkQueue(name);
    const out: string[] = [];
    if (messageCount === 0) return out;
    const { consumerTag } = await channel.consume(name, (m) => m && out.push(m.properties.messageId as string), { noAck: true });
    try {
      await waitUntil(`${messageCount} messages from ${name}`, () => out.length >= messageCount, 30_000);
    } finally {
      await channel.cancel(consumerTag);
    }
    return out;
  }

  it('validates the destination (422 naming the field), names the endpoint amqp://…, and never returns the password', async () => {
    const app = await relay.svix.application.create({ name: 'rabbit-config' });
    const bad = await relay.api('POST', `/api/v1/app/${app.id}/endpoint`, { destination: destination({ routingKey: 'orders.{topic}' }) });
    assert.equal(bad.status, 422, bad.text);
    assert.deepEqual(bad.body.detail[0].loc, ['body', 'destination', 'routingKey']);
    const half = await relay.api('POST', `/api/v1/app/${app.id}/endpoint`, { destination: destination({ password: undefined }) });
    assert.equal(half.status, 422, half.text);
    assert.deepEqual(half.body.detail[0].loc, ['body', 'destination', 'password']);

    const password = 'amqp-' + randomUUID();
    const created = await relay.api('POST', `/api/v1/app/${app.id}/endpoint`, { destination: destination({ password, exchange: 'events', routingKey: 'orders.{eventType}' }) });
    assert.equal(created.status, 201, created.text);
    assert.equal(created.body.url, `amqp://${rabbit.address}/%2F/events/orders.{eventType}`);
    assert.equal(created.body.destination.mandatory, true);
    const listed = await relay.api('GET', `/api/v1/app/${app.id}/endpoint`);
    for (const shown of [created.text, listed.text]) assert.ok(!shown.includes(password), `a secret came back: ${shown}`);
    assert.equal((await relay.api('DELETE', `/api/v1/app/${app.id}/endpoint/${created.body.id}`)).status, 204);
  });

  it('publishes a persistent message with the exact payload bytes, message id, type and hookrelay headers, confirmed by the broker', async () => {
    const app = await relay.svix.application.create({ name: 'rabbit-exact' });
    const exchange = 'hr-topic-' + randomUUID();
    await channel.assertExchange(exchange, 'topic', { durable: true });
    const name = await queue();
    await channel.bindQueue(name, exchange, 'orders.#');
    const ep = await endpoint(app.id, { destination: destination({ exchange, routingKey: 'orders.{eventType}' }), headers: { 'X-Tenant': 'acme' } });
    const payload = '{ "total":1.0,\n  "id": 820982911946154508, "note":"naïve café ☃ 𝄞" }';
    const created = await relay.api('POST', `/api/v1/app/${app.id}/msg`, undefined, { rawBody: `{"eventType":"order.created","payload":${payload}}`, headers: { 'content-type': 'application/json' } });
    assert.equal(created.status, 202, created.text);
    const msgId = created.body.id;
    await delivered(app.id, [msgId], ep);

    const [got] = await drain(name);
    assert.ok(got.content.equals(Buffer.from(payload)), `payload bytes differ: ${got.content}`);
    assert.equal(got.fields.routingKey, 'orders.order.created');
    assert.equal(got.properties.messageId, msgId);
    assert.equal(got.properties.type, 'order.created');
    assert.equal(got.properties.contentType, 'application/json');
    assert.equal(got.properties.deliveryMode, 2);
    assert.deepEqual(got.properties.headers, { 'x-tenant': 'acme', 'content-type': 'application/json', 'webhook-id': msgId, 'x-hookrelay-event-type': 'order.created' });
    const success = (await attempts(app.id, msgId, ep)).find((a) => a.status === 0)!;
    assert.deepEqual(JSON.parse(success.response), { exchange, routingKey: 'orders.order.created', confirmed: true });
  });

  it('an unroutable message (mandatory, returned) is a failed attempt, delivered once a queue is bound', async () => {
    const app = await relay.svix.application.create({ name: 'rabbit-unroutable' });
    const name = 'hr-later-' + randomUUID();
    const ep = await endpoint(app.id, { destination: destination({ routingKey: name }) });
    const msg = await relay.svix.message.create(app.id, { eventType: 'late.queue', payload: { ok: true } });
    assert.match(await failedWith(app.id, msg.id, ep), /unroutable/);
    await channel.assertQueue(name, { durable: true });
    await delivered(app.id, [msg.id], ep);
    const got = await drain(name);
    assert.equal(got.length, 1);
    assert.equal(got[0].properties.messageId, msg.id);
  });

  it('an exchange that does not exist and wrong credentials are failed attempts naming the cause; the right ones deliver once fixed', async () => {
    const app = await relay.svix.application.create({ name: 'rabbit-errors' });
    const name = await queue();
    const noExchange = await endpoint(app.id, { destination: destination({ exchange: 'hr-missing-exchange' }) });
    const wrongPassword = await endpoint(app.id, { destination: destination({ routingKey: name, password: 'not-the-password' }) });
    // Without credentials hookrelay logs in as guest/guest, which this node does not have.
    const asGuest = await endpoint(app.id, { destination: destination({ routingKey: name, username: undefined, password: undefined }) });
    const msg = await relay.svix.message.create(app.id, { eventType: 'errors', payload: {} });
    assert.match(await failedWith(app.id, msg.id, noExchange), /NOT_FOUND - no exchange 'hr-missing-exchange'/);
    assert.match(await failedWith(app.id, msg.id, wrongPassword), /ACCESS_REFUSED|403/);
    assert.match(await failedWith(app.id, msg.id, asGuest), /ACCESS_REFUSED|403/);
    const fixed = await relay.api('PATCH', `/api/v1/app/${app.id}/endpoint/${wrongPassword}`, { destination: destination({ routingKey: name }) });
    assert.equal(fixed.status, 200, fixed.text);
    await delivered(app.id, [msg.id], wrongPassword);
    assert.deepEqual((await drain(name)).map((m) => m.properties.messageId), [msg.id]);
  });

  it('10,000 messages: every message id in the queue, duplicates no more than failed attempts', async (t) => {
    const app = await relay.svix.application.create({ name: 'rabbit-bulk' });
    const name = await queue();
    const ep = await endpoint(app.id, { destination: destination({ routingKey: name }), maxInFlight: 64 });
    const ids = await sendMany(relay, app.id, 10_000);
    await allSucceeded(relay, app.id, ep, ids.length);
    const held = await queueIds(name);
    const failed = await failedAttempts(relay, app.id, ep);
    const { missing, duplicates, strangers } = tally(ids, held);
    t.diagnostic(`${held.length} queued for ${ids.length} messages: ${duplicates} duplicates, ${failed.length} failed attempts`);
    assert.equal(missing.length, 0, `${missing.length} messages missing from the queue, e.g. ${missing.slice(0, 3)}`);
    assert.equal(strangers, 0);
    // RabbitMQ does not dedupe: a message can be doubled only by a retry after a lost confirm, i.e. after a failed attempt.
    assert.ok(duplicates <= failed.length, `${duplicates} duplicates but only ${failed.length} failed attempts`);
  });

  it('RabbitMQ down from the start: attempts fail naming the refused connection, then every message arrives once it starts', async () => {
    const app = await relay.svix.application.create({ name: 'rabbit-down' });
    const name = await queue();
    await reader.close().catch(() => undefined);
    await rabbit.stop();
    const ep = await endpoint(app.id, { destination: destination({ routingKey: name }) });
    const ids = await sendMany(relay, app.id, 50, 8);
    await failureMatching(relay, app.id, ep, new RegExp(`rabbitmq ${rabbit.address}: .*ECONNREFUSED`));
    await rabbit.start();
    await connectReader();
    // Declared again, as in the restart test below: the route must exist for the messages to be confirmed.
    await channel.assertQueue(name, { durable: true });
    await allSucceeded(relay, app.id, ep, ids.length, 60_000);
    const { missing, duplicates, strangers } = tally(ids, await queueIds(name));
    // Nothing can have been published while the connection was refused: each message exactly once.
    assert.deepEqual({ missing, duplicates, strangers }, { missing: [], duplicates: 0, strangers: 0 });
  });

  it('retries while RabbitMQ is down and delivers once it is back, each message once', async () => {
    const app = await relay.svix.application.create({ name: 'rabbit-restart' });
    const name = await queue();
    const ep = await endpoint(app.id, { destination: destination({ routingKey: name }) });
    const warm = await relay.svix.message.create(app.id, { eventType: 'warm', payload: {} });
    await delivered(app.id, [warm.id], ep);

    await reader.close().catch(() => undefined);
    await rabbit.stop();
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) ids.push((await relay.svix.message.create(app.id, { eventType: 'outage', payload: { i } })).id);
    await failedWith(app.id, ids[0], ep);
    await rabbit.start();
    await connectReader();
    // Declared again: a broker killed mid-boot on a loaded machine may come back without the queue's definition, and
    // what is under test is hookrelay retrying until the route exists, not RabbitMQ's recovery.
    await channel.assertQueue(name, { durable: true });

    await delivered(app.id, ids, ep).catch(async (error) => {
      const last = (await attempts(app.id, ids[0], ep)).at(-1);
      throw new Error(`${(error as Error).message}; last attempt: ${last?.status} ${last?.response}`);
    });
    const got = (await drain(name)).map((m) => m.properties.messageId as string);
    // Every message sent during the outage arrives once after the restart (the persistent warm-up message is there too
    // when the durable queue survived the kill, as it normally does).
    assert.deepEqual(got.filter((id) => id !== warm.id).sort(), [...ids].sort());
    assert.ok(got.filter((id) => id === warm.id).length <= 1, 'the warm-up message arrived twice');
  });
});
