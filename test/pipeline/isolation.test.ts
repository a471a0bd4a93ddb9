import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { startReceiver } from '../helpers/receiver.js';
import { startRelay } from '../helpers/relay.js';
import { waitUntil } from '../helpers/wait.js';
import { attemptedMessages, createApp, createEndpoint, sendMany, webhookIds } from './support.js';

describe('per-endpoint isolation', () => {
  it('delivers to a healthy endpoint while a dead one holds only its own maxInFlight slots', async (t) => {
    // Attempts to the dead endpoint would last 20 s: a healthy endpoint queued behind them could not finish within the deadline below.
    const relay = await startRelay({ deliveryTimeout: '20s', shutdownGrace: '200ms' });
    const dead = await startReceiver(() => ({ hang: true }));
    const healthy = await startReceiver(() => ({ status: 200 }));
    t.after(async () => {
      await dead.close();
      await healthy.close();
      await relay.close();
    });
    const appA = await createApp(relay);
    const appB = await createApp(relay);
    const endpointA = await createEndpoint(relay, appA, { url: dead.url, maxInFlight: 4 });
    const endpointB = await createEndpoint(relay, appB, { url: healthy.url });

    await sendMany(relay, appA, 50, 10, (i) => ({ to: 'A', i }));
    const sentToB = await sendMany(relay, appB, 50, 10, (i) => ({ to: 'B', i }));

    await healthy.waitFor(50, 10_000);
    assert.deepEqual(new Set(webhookIds(healthy.received)), new Set(sentToB));
    assert.equal(dead.received.length, 4, `the dead endpoint got ${dead.received.length} requests; its cap is 4`);

    await waitUntil('all of B to be recorded as delivered', async () => (await attemptedMessages(relay, appB, endpointB.id, 0)).length === 50);
    assert.equal((await attemptedMessages(relay, appA, endpointA.id, 3)).length, 4, 'sending to A');
    assert.equal((await attemptedMessages(relay, appA, endpointA.id, 1)).length, 46, 'pending for A');
    assert.equal(dead.received.length, 4);
  });
});
