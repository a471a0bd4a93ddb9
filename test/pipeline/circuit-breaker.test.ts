import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { startReceiver } from '../helpers/receiver.js';
import { startRelay, type TestRelay } from '../helpers/relay.js';
import { waitUntil } from '../helpers/wait.js';
import { attemptedMessages, createApp, createEndpoint, send, sendMany, webhookIds } from './support.js';

const circuitOf = async (relay: TestRelay, appId: string, endpointId: string) => {
  const response = await relay.api('GET', `/api/v1/app/${appId}/endpoint/${endpointId}`);
  assert.equal(response.status, 200, response.text);
  return response.body.circuit as { state: string; openUntil: string | null; consecutiveFailures: number; failingSince: string | null; parkedMessages: number };
};

// Timer and loopback jitter between hookrelay deciding to send and the receiver stamping the arrival.
const JITTER_MS = 15;

describe('circuit breaker', () => {
  it('pauses an endpoint after the threshold of consecutive failures: it sees no more attempts while messages keep coming, and they do not burn retries', async (t) => {
    // A cool-down far longer than the test: once open, the circuit stays open.
    const relay = await startRelay({ circuitThreshold: '3', circuitCooldown: '1h', circuitMaxCooldown: '1h' });
    const failing = await startReceiver(() => ({ status: 500 }));
    const healthy = await startReceiver(() => ({ status: 200 }));
    t.after(async () => {
      await failing.close();
      await healthy.close();
      await relay.close();
    });
    const appId = await createApp(relay);
    const bad = await createEndpoint(relay, appId, { url: failing.url, maxInFlight: 1 });
    const good = await createEndpoint(relay, appId, { url: healthy.url });

    const first = await sendMany(relay, appId, 5, 5, (i) => ({ i }));
    const circuit = (await waitUntil('the circuit to open', async () => {
      const c = await circuitOf(relay, appId, bad.id);
      return c.state === 'open' ? c : null;
    }))!;
    assert.equal(circuit.consecutiveFailures, 3);
    assert.ok(circuit.failingSince !== null && circuit.openUntil !== null);
    assert.ok(Date.parse(circuit.openUntil) - Date.now() > 30 * 60_000, 'paused for the configured cool-down');
    assert.equal(failing.received.length, 3, 'one attempt per failure up to the threshold, one at a time (maxInFlight 1)');

    // Messages keep arriving: the healthy endpoint gets every one, the paused one nothing.
    const later: string[] = [];
    for (let i = 0; i < 10; i++) later.push(await send(relay, appId, { later: i }));
    await healthy.waitFor(15, 10_000);
    assert.deepEqual(new Set(webhookIds(healthy.received)), new Set([...first, ...later]));
    assert.equal(failing.received.length, 3, 'a paused endpoint was attempted');

    // Everything waits as pending: nothing was parked because the breaker held it, and only the real attempts count.
    await waitUntil('the healthy deliveries to be recorded', async () => (await attemptedMessages(relay, appId, good.id, 0)).length === 15);
    const statuses = (await attemptedMessages(relay, appId, bad.id)).map((m) => m.status);
    assert.equal(statuses.length, 15);
    assert.ok(statuses.every((s) => s === 1), `deliveries of a paused endpoint: ${JSON.stringify(statuses)}`);
    const attempts = await relay.svix.messageAttempt.listByEndpoint(appId, bad.id, { limit: 250 });
    assert.equal(attempts.data.length, 3);
  });

  it('after the cool-down sends one probe (half-open); a failed probe pauses it twice as long, a successful one closes the circuit and the backlog flows', async (t) => {
    const relay = await startRelay({ circuitThreshold: '3', circuitCooldown: '500ms', circuitMaxCooldown: '1h' });
    // Down for the first four requests (three to open the circuit, the first probe), then up.
    const receiver = await startReceiver((_request, n) => ({ status: n < 4 ? 503 : 200 }));
    t.after(async () => {
      await receiver.close();
      await relay.close();
    });
    const appId = await createApp(relay);
    const endpoint = await createEndpoint(relay, appId, { url: receiver.url, maxInFlight: 1 });
    const sent = await sendMany(relay, appId, 8, 8, (i) => ({ i }));

    await waitUntil('the circuit to close again', async () => (await circuitOf(relay, appId, endpoint.id)).state === 'closed' && receiver.received.length > 4, 15_000);
    const at = receiver.received.map((r) => r.at);
    assert.ok(at[3] - at[2] >= 500 - JITTER_MS, `the first probe came ${at[3] - at[2]} ms after the circuit opened, before the 500 ms cool-down`);
    assert.ok(at[4] - at[3] >= 1000 - JITTER_MS, `the second probe came ${at[4] - at[3]} ms after the failed first one, before the doubled cool-down`);

    await waitUntil('every message to be delivered', async () => (await attemptedMessages(relay, appId, endpoint.id, 0)).length === 8);
    const delivered = new Set(webhookIds(receiver.received.slice(4)));
    assert.deepEqual(delivered, new Set(sent));
    assert.equal(receiver.received.length, 4 + 8, 'four failed attempts, then each message once');
    const circuit = await circuitOf(relay, appId, endpoint.id);
    assert.deepEqual(circuit, { state: 'closed', openUntil: null, consecutiveFailures: 0, failingSince: null, parkedMessages: 0 });
  });

  it('opens for endpoints that reset the connection or time out, like for error statuses', async (t) => {
    const relay = await startRelay({ circuitThreshold: '2', circuitCooldown: '1h', circuitMaxCooldown: '1h', deliveryTimeout: '300ms' });
    const reset = await startReceiver(() => ({ destroy: true }));
    const hang = await startReceiver(() => ({ hang: true }));
    t.after(async () => {
      await reset.close();
      await hang.close();
      await relay.close();
    });
    const appId = await createApp(relay);
    const resetting = await createEndpoint(relay, appId, { url: reset.url, maxInFlight: 1 });
    const hanging = await createEndpoint(relay, appId, { url: hang.url, maxInFlight: 1 });
    await sendMany(relay, appId, 6, 6, (i) => ({ i }));
    for (const endpoint of [resetting, hanging]) {
      await waitUntil(`the circuit of ${endpoint.id} to open`, async () => (await circuitOf(relay, appId, endpoint.id)).state === 'open', 10_000);
    }
    assert.equal(reset.received.length, 2);
    assert.equal(hang.received.length, 2);
    const attempts = await relay.svix.messageAttempt.listByEndpoint(appId, hanging.id, { limit: 250 });
    assert.ok(attempts.data.every((a) => /timed out/.test(a.response)), JSON.stringify(attempts.data.map((a) => a.response)));
  });
});
