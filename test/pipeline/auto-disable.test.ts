import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { startReceiver } from '../helpers/receiver.js';
import { startRelay, type TestRelay } from '../helpers/relay.js';
import { waitUntil } from '../helpers/wait.js';
import { startChild, tempDir } from '../process/child.js';
import { attemptedMessages, createApp, createEndpoint, sendMany, webhookIds } from './support.js';

const endpointOf = async (relay: Pick<TestRelay, 'api'>, appId: string, endpointId: string) => {
  const response = await relay.api('GET', `/api/v1/app/${appId}/endpoint/${endpointId}`);
  assert.equal(response.status, 200, response.text);
  return response.body;
};

describe('auto-disable', () => {
  it('disables an endpoint that parked the configured number of messages without a success; re-enabling resets its health and resumes delivery', async (t) => {
    // One attempt per message (parked at once), no circuit breaker: only the parked count can disable it.
    const relay = await startRelay({ retrySchedule: '0', circuitThreshold: '0', disableAfterParked: '3' });
    let up = false;
    const receiver = await startReceiver(() => ({ status: up ? 200 : 500 }));
    t.after(async () => {
      await receiver.close();
      await relay.close();
    });
    const appId = await createApp(relay);
    const endpoint = await createEndpoint(relay, appId, { url: receiver.url, maxInFlight: 1 });
    const sent = await sendMany(relay, appId, 6, 6, (i) => ({ i }));

    const disabled = await waitUntil('the endpoint to be disabled', async () => {
      const body = await endpointOf(relay, appId, endpoint.id);
      return body.disabled ? body : null;
    });
    assert.match(disabled.disabledReason, /^3 messages were parked since the last successful delivery \(HOOKRELAY_DISABLE_AFTER_PARKED\)/);
    assert.equal(disabled.circuit.parkedMessages, 3);
    assert.equal(receiver.received.length, 3);
    assert.equal((await attemptedMessages(relay, appId, endpoint.id, 2)).length, 3, 'parked');
    assert.equal((await attemptedMessages(relay, appId, endpoint.id, 1)).length, 3, 'the rest wait, unattempted');

    up = true;
    const enabled = await relay.api('PATCH', `/api/v1/app/${appId}/endpoint/${endpoint.id}`, { disabled: false });
    assert.equal(enabled.status, 200, enabled.text);
    assert.equal(enabled.body.disabledReason, null);
    assert.deepEqual(enabled.body.circuit, { state: 'closed', openUntil: null, consecutiveFailures: 0, failingSince: null, parkedMessages: 0 });
    await receiver.waitFor(6, 10_000);
    assert.deepEqual(new Set(webhookIds(receiver.received)), new Set(sent), 'the waiting messages were delivered after re-enabling');
    await waitUntil('the resumed deliveries to be recorded', async () => (await attemptedMessages(relay, appId, endpoint.id, 0)).length === 3);
  });

  it('disables an endpoint that has only failed for the configured period, however few messages it parked', async (t) => {
    const relay = await startRelay({ retrySchedule: '0,100ms,100ms,100ms,100ms,100ms,100ms,100ms,100ms,100ms,100ms,100ms', circuitThreshold: '0', disableAfter: '600ms' });
    const receiver = await startReceiver(() => ({ status: 502 }));
    t.after(async () => {
      await receiver.close();
      await relay.close();
    });
    const appId = await createApp(relay);
    const endpoint = await createEndpoint(relay, appId, { url: receiver.url });
    await sendMany(relay, appId, 1, 1, () => ({ only: 1 }));
    const disabled = await waitUntil('the endpoint to be disabled', async () => {
      const body = await endpointOf(relay, appId, endpoint.id);
      return body.disabled ? body : null;
    });
    assert.match(disabled.disabledReason, /^every attempt failed for 600ms since the last successful delivery \(HOOKRELAY_DISABLE_AFTER\)/);
    // The failing period runs from the first failed attempt to the end of the one that disabled it (the last one).
    const attempts = (await relay.svix.messageAttempt.listByEndpoint(appId, endpoint.id, { limit: 250 })).data;
    assert.equal(attempts.length, receiver.received.length);
    const first = Math.min(...attempts.map((a) => a.timestamp.getTime()));
    const end = Math.max(...attempts.map((a) => a.timestamp.getTime() + a.responseDurationMs));
    assert.equal(Date.parse(disabled.circuit.failingSince), first);
    assert.ok(end - first >= 600, `disabled after ${end - first} ms of failures`);
    assert.equal(disabled.circuit.parkedMessages, 0);
    assert.ok(receiver.received.length < 12, 'the retry schedule was not exhausted');
    assert.equal((await attemptedMessages(relay, appId, endpoint.id, 1)).length, 1, 'its delivery waits as pending, not parked');
  });

  it('logs the disabling once, as a warning naming the endpoint and the reason, without payload or secret', async (t) => {
    const { dir, remove } = tempDir();
    const child = await startChild({
      db: join(dir, 'hookrelay.db'),
      flags: ['--circuit-threshold', '0', '--disable-after-parked', '2'],
      env: { HOOKRELAY_RETRY_SCHEDULE: '0' },
    });
    const receiver = await startReceiver(() => ({ status: 500 }));
    t.after(async () => {
      await child.stop();
      await receiver.close();
      remove();
    });
    const app = await child.svix.application.create({ name: 'logged' });
    const created = await child.api('POST', `/api/v1/app/${app.id}/endpoint`, { url: receiver.url, maxInFlight: 1 });
    assert.equal(created.status, 201, created.text);
    const secret = (await child.svix.endpoint.getSecret(app.id, created.body.id)).key;
    for (let i = 0; i < 3; i++) await child.svix.message.create(app.id, { eventType: 'order.paid', payload: { marker: 'PAYLOAD-MARKER-7731' } });

    const line = await child.waitForLog((l) => l.msg === 'endpoint disabled', 10_000);
    assert.equal(line.level, 40, 'a warning');
    assert.equal(line.endpointId, created.body.id);
    assert.equal(line.appId, app.id);
    assert.match(line.reason, /2 messages were parked/);
    const everything = child.stdoutLines.join('\n');
    assert.ok(!everything.includes('PAYLOAD-MARKER-7731'), 'a payload reached the logs');
    assert.ok(!everything.includes(secret.replace(/^whsec_/, '')), 'the signing secret reached the logs');
    assert.equal(child.logs().filter((l) => l.msg === 'endpoint disabled').length, 1);
  });
});
