import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { MessageOut } from 'svix';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { startRelay, type TestRelay } from '../helpers/relay.js';
import { waitUntil } from '../helpers/wait.js';
import { messageIdOf, verify } from './support.js';

describe('fan-out by event type filter and channels', () => {
  let relay: TestRelay;
  const receivers: Record<string, Receiver> = {};
  before(async () => {
    relay = await startRelay();
    for (const name of ['all', 'created', 'eu', 'createdUs', 'disabled']) receivers[name] = await startReceiver(() => ({ status: 200 }));
  });
  after(async () => {
    await relay.close();
    for (const r of Object.values(receivers)) await r.close();
  });

  it('delivers each message to exactly the endpoints whose eventTypes and channels match', async () => {
    const app = await relay.svix.application.create({ name: 'fanout' });
    const create = (name: string, extra: { eventTypes?: string[]; channels?: string[]; disabled?: boolean }) =>
      relay.svix.endpoint.create(app.id, { url: receivers[name].url, uid: name, ...extra });
    const endpoints = {
      all: await create('all', {}),
      created: await create('created', { eventTypes: ['order.created'] }),
      eu: await create('eu', { channels: ['eu'] }),
      createdUs: await create('createdUs', { eventTypes: ['order.created', 'order.updated'], channels: ['us'] }),
      disabled: await create('disabled', { disabled: true }),
    };
    const secrets: Record<string, string> = {};
    for (const [name, ep] of Object.entries(endpoints)) secrets[name] = (await relay.svix.endpoint.getSecret(app.id, ep.id)).key;

    const cases = [
      { eventType: 'order.created', channels: ['eu'], expect: ['all', 'created', 'eu'] },
      { eventType: 'order.paid', channels: undefined, expect: ['all'] },
      { eventType: 'order.created', channels: ['us'], expect: ['all', 'created', 'createdUs'] },
      { eventType: 'order.updated', channels: ['asia', 'us'], expect: ['all', 'createdUs'] },
      { eventType: 'order.paid', channels: ['eu', 'us'], expect: ['all', 'eu'] },
    ];
    const sent: ((typeof cases)[number] & { msg: MessageOut })[] = [];
    for (const c of cases) sent.push({ ...c, msg: await relay.svix.message.create(app.id, { eventType: c.eventType, channels: c.channels, payload: { c } }) });

    const nameOf = (endpointId: string) => Object.entries(endpoints).find(([, ep]) => ep.id === endpointId)![0];
    for (const { msg, expect } of sent) {
      const destinations = (await waitUntil(`every delivery of ${msg.id} to succeed`, async () => {
        const page = await relay.svix.messageAttempt.listAttemptedDestinations(app.id, msg.id);
        return page.data.length === expect.length && page.data.every((d) => d.status === 0) ? page.data : null;
      }))!;
      assert.deepEqual(destinations.map((d) => nameOf(d.id)).sort(), [...expect].sort(), `destinations of ${msg.eventType} ${JSON.stringify(msg.channels)}`);
      for (const d of destinations) assert.equal(d.statusText, 'success');
    }

    // Every delivery has succeeded, so each receiver's log is final: it holds exactly its messages, signed with its secret.
    for (const name of Object.keys(endpoints)) {
      const expected = sent.filter((s) => s.expect.includes(name)).map((s) => s.msg.id);
      const got = receivers[name].received.map(messageIdOf);
      assert.deepEqual([...got].sort(), [...expected].sort(), `messages received by ${name}`);
      for (const request of receivers[name].received) verify(secrets[name], request);
    }
    assert.equal(receivers.disabled.received.length, 0);

    // Attempted messages per endpoint agree with what arrived.
    const attempted = await relay.svix.messageAttempt.listAttemptedMessages(app.id, 'createdUs');
    assert.deepEqual(
      attempted.data.map((m) => m.id).sort(),
      sent.filter((s) => s.expect.includes('createdUs')).map((s) => s.msg.id).sort(),
    );
  });

  it('applies a filter change to messages sent after it', async () => {
    const app = await relay.svix.application.create({ name: 'fanout-change' });
    const receiver = receivers.all;
    const ep = await relay.svix.endpoint.create(app.id, { url: receiver.url, eventTypes: ['x.first'] });
    const skipped = await relay.svix.message.create(app.id, { eventType: 'x.second', payload: {} });
    assert.equal((await relay.svix.messageAttempt.listAttemptedDestinations(app.id, skipped.id)).data.length, 0);

    await relay.svix.endpoint.patch(app.id, ep.id, { eventTypes: ['x.first', 'x.second'] });
    const matched = await relay.svix.message.create(app.id, { eventType: 'x.second', payload: {} });
    const destinations = (await relay.svix.messageAttempt.listAttemptedDestinations(app.id, matched.id)).data;
    assert.deepEqual(
      destinations.map((d) => d.id),
      [ep.id],
    );
    await waitUntil('the matched message to arrive', () => receiver.received.some((r) => messageIdOf(r) === matched.id));
    assert.ok(!receiver.received.some((r) => messageIdOf(r) === skipped.id));
  });
});
