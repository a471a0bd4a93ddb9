import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { startReceiver } from '../helpers/receiver.js';
import { startRelay } from '../helpers/relay.js';
import { waitUntil } from '../helpers/wait.js';
import { attemptedMessages, createApp, createEndpoint, sendMany, verifySignature, webhookIds } from './support.js';

const COUNT = 500;

describe('concurrent intake (group commit)', () => {
  it('acknowledges, lists and delivers exactly once each of 500 messages sent 50 at a time', async (t) => {
    const relay = await startRelay();
    const target = await startReceiver(() => ({ status: 200 }));
    t.after(async () => {
      await target.close();
      await relay.close();
    });
    const appId = await createApp(relay);
    const endpoint = await createEndpoint(relay, appId, { url: target.url });

    const ids = await sendMany(relay, appId, COUNT, 50, (i) => ({ i }));
    assert.equal(new Set(ids).size, COUNT, 'message ids are distinct');

    const listed: string[] = [];
    let iterator: string | null = null;
    for (;;) {
      const page = await relay.svix.message.list(appId, { limit: 250, iterator });
      listed.push(...page.data.map((m) => m.id));
      if (page.done) break;
      iterator = page.iterator;
    }
    assert.equal(listed.length, COUNT);
    assert.deepEqual(new Set(listed), new Set(ids));

    await target.waitFor(COUNT, 30_000);
    await waitUntil('every delivery to be recorded as a success', async () => (await attemptedMessages(relay, appId, endpoint.id, 0)).length === COUNT, 15_000, 100);
    // Recorded as succeeded means nothing is left to send: the receiver's count is final.
    const perId = new Map<string, number>();
    for (const id of webhookIds(target.received)) perId.set(id, (perId.get(id) ?? 0) + 1);
    assert.deepEqual(new Set(perId.keys()), new Set(ids));
    assert.deepEqual([...perId.values()].filter((n) => n !== 1), [], 'some message was delivered more than once');
    assert.equal(target.received.length, COUNT);

    // Each acknowledged id carries its own payload.
    for (const request of target.received) {
      const { i } = verifySignature(request, endpoint.secret) as { i: number };
      assert.equal(request.headers['webhook-id'], ids[i]);
    }
  });
});
