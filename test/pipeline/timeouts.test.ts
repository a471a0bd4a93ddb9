import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { startReceiver } from '../helpers/receiver.js';
import { startRelay } from '../helpers/relay.js';
import { waitUntil } from '../helpers/wait.js';
import { attemptsOf, createApp, createEndpoint, deliveryStatus, send, webhookIds } from './support.js';

describe('delivery timeout', () => {
  it('records a receiver that never answers as a timed-out failure, and retries', async (t) => {
    const relay = await startRelay({ deliveryTimeout: '300ms' });
    t.after(() => relay.close());
    const target = await startReceiver((_, n) => (n === 0 ? { hang: true } : { status: 200 }));
    t.after(() => target.close());
    const appId = await createApp(relay);
    const endpoint = await createEndpoint(relay, appId, { url: target.url });
    const msgId = await send(relay, appId, { slow: true });

    await waitUntil('the retried delivery to succeed', async () => (await deliveryStatus(relay, appId, msgId, endpoint.id))?.status === 0);
    assert.deepEqual(webhookIds(target.received), [msgId, msgId]);
    const [timedOut, retried] = await attemptsOf(relay, appId, msgId);
    assert.equal(timedOut.statusText, 'fail');
    assert.equal(timedOut.responseStatusCode, 0);
    assert.match(timedOut.response, /time(d)?[ -]?out/i);
    assert.ok(timedOut.responseDurationMs >= 250, `the timed-out attempt lasted only ${timedOut.responseDurationMs} ms`);
    assert.equal(retried.statusText, 'success');
  });
});
