import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { startReceiver, type Answer, type Receiver } from '../helpers/receiver.js';
import { startRelay } from '../helpers/relay.js';
import { waitUntil } from '../helpers/wait.js';
import { createApp, createEndpoint, sendMany, webhookIds } from './support.js';

const DELIVERY_TIMEOUT_MS = 8_000;
const THRESHOLD = 3;
const CAP = 4;

/** How each faulty receiver misbehaves: never answers, answers after the delivery timeout, resets, or fails. */
const FAULTS: Record<string, () => Answer> = {
  hang: () => ({ hang: true }),
  timeout: () => ({ status: 200, delayMs: DELIVERY_TIMEOUT_MS + 1_000 }),
  reset: () => ({ destroy: true }),
  error: () => ({ status: 500 }),
};
const STUCK = new Set(['hang', 'timeout']);

describe('fault isolation: 50 endpoints, half of them faulty', () => {
  it('delivers every message to the healthy half while the faulty half is stuck, and the breaker pauses every faulty endpoint', async (t) => {
    const relay = await startRelay({
      deliveryTimeout: `${DELIVERY_TIMEOUT_MS}ms`,
      circuitThreshold: String(THRESHOLD),
      circuitCooldown: '1h',
      circuitMaxCooldown: '1h',
      shutdownGrace: '200ms',
    });
    const healthy: Receiver[] = [];
    const faulty: { kind: string; receiver: Receiver; endpointId: string }[] = [];
    t.after(async () => {
      await Promise.all([...healthy, ...faulty.map((f) => f.receiver)].map((r) => r.close()));
      await relay.close();
    });
    const appId = await createApp(relay);
    const kinds = Object.keys(FAULTS);
    for (let i = 0; i < 25; i++) {
      const good = await startReceiver(() => ({ status: 200 }));
      healthy.push(good);
      await createEndpoint(relay, appId, { url: good.url, maxInFlight: CAP });
      const kind = kinds[i % kinds.length];
      const bad = await startReceiver(FAULTS[kind]);
      faulty.push({ kind, receiver: bad, endpointId: (await createEndpoint(relay, appId, { url: bad.url, maxInFlight: CAP })).id });
    }

    // Every message goes to all 50 endpoints.
    const sent = await sendMany(relay, appId, 20, 10, (i) => ({ i }));
    await Promise.all(healthy.map((r) => r.waitFor(20, DELIVERY_TIMEOUT_MS)));
    // All of that happened while the hanging and slow endpoints still held their first attempts: none has finished.
    for (const { kind, endpointId } of faulty.filter((f) => STUCK.has(f.kind))) {
      const attempts = await relay.svix.messageAttempt.listByEndpoint(appId, endpointId, { limit: 250 });
      assert.equal(attempts.data.length, 0, `a ${kind} endpoint's attempt finished before the healthy deliveries were done`);
    }
    for (const receiver of healthy) assert.deepEqual(new Set(webhookIds(receiver.received)), new Set(sent));

    // Every faulty endpoint's circuit opens: the quick failures at once, the stuck ones when their attempts time out.
    await waitUntil(
      'every faulty endpoint to be paused',
      async () => {
        for (const { endpointId } of faulty) {
          const endpoint = await relay.api('GET', `/api/v1/app/${appId}/endpoint/${endpointId}`);
          if (endpoint.body.circuit.state !== 'open') return false;
        }
        return true;
      },
      DELIVERY_TIMEOUT_MS + 10_000,
      200,
    );
    const seen = faulty.map((f) => f.receiver.received.length);
    for (const [i, { kind }] of faulty.entries()) {
      // At most the threshold, plus what was already in flight when it was reached.
      assert.ok(seen[i] <= THRESHOLD + CAP - 1, `the ${kind} endpoint #${i} got ${seen[i]} requests`);
    }

    // More traffic: the healthy half gets all of it, the paused half nothing.
    const more = await sendMany(relay, appId, 10, 10, (i) => ({ more: i }));
    await Promise.all(healthy.map((r) => r.waitFor(30, 10_000)));
    for (const receiver of healthy) assert.deepEqual(new Set(webhookIds(receiver.received)), new Set([...sent, ...more]));
    assert.deepEqual(
      faulty.map((f) => f.receiver.received.length),
      seen,
      'a paused endpoint was attempted',
    );
  });
});
