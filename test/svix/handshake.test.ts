import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Svix } from 'svix';
import { Webhook as StandardWebhook } from 'standardwebhooks';
import { startReceiver, type Answer, type Received } from '../helpers/receiver.js';
import { startRelay } from '../helpers/relay.js';
import { waitUntil } from '../helpers/wait.js';

/**
 * The registration handshake through the svix SDK: its EndpointIn has no `verification` (its serializer drops fields it
 * does not know), but its `fetch` option lets a client add one to endpoint create. Messages the SDK sends meanwhile are
 * held, then delivered once the receiver has echoed the challenge; the SDK's own calls keep working on the endpoint.
 */
function verificationFetch(): typeof fetch {
  return (input, init) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    if (init?.method === 'POST' && /^\/api\/v1\/app\/[^/]+\/endpoint\/?$/.test(url.pathname) && typeof init.body === 'string') {
      init = { ...init, body: `{"verification":"challenge",${init.body.slice(1)}` };
    }
    return fetch(input, init);
  };
}

const isHandshake = (r: Received) => JSON.parse(r.body.toString()).type === 'endpoint.verification';

describe('registration handshake through the svix SDK', () => {
  it("creates a challenged endpoint through the SDK's fetch option; messages wait for the echo, then arrive in order", async (t) => {
    let echoing = false;
    const receiver = await startReceiver((r): Answer => {
      if (!isHandshake(r)) return { status: 200 };
      if (!echoing) return { status: 503 };
      return { status: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ challenge: JSON.parse(r.body.toString()).challenge }) };
    });
    const relay = await startRelay({ verificationSchedule: '100ms,100ms,200ms,300ms,500ms,1s,1s,1s,1s' });
    t.after(async () => {
      await relay.close();
      await receiver.close();
    });
    const svix = new Svix(relay.adminToken, { serverUrl: relay.url, fetch: verificationFetch() });
    const app = await svix.application.create({ name: 'sdk-handshake' });
    const endpoint = await svix.endpoint.create(app.id, { url: receiver.url, description: 'challenged' });
    const view = await relay.api('GET', `/api/v1/app/${app.id}/endpoint/${endpoint.id}`);
    assert.equal(view.body.verification.state, 'pendingVerification');

    const sent: string[] = [];
    for (let i = 0; i < 4; i++) sent.push((await svix.message.create(app.id, { eventType: 'held.event', payload: { i } })).id);
    await waitUntil('a refused handshake', () => receiver.received.filter(isHandshake).length >= 1);
    assert.equal(receiver.received.filter((r) => !isHandshake(r)).length, 0, 'nothing is delivered before the echo');

    echoing = true;
    await waitUntil('the endpoint to be verified', async () => (await relay.api('GET', `/api/v1/app/${app.id}/endpoint/${endpoint.id}`)).body.verification.state === 'verified', 15_000);
    await receiver.waitFor(receiver.received.filter(isHandshake).length + 4, 15_000);
    const { key } = await svix.endpoint.getSecret(app.id, endpoint.id);
    const verifier = new StandardWebhook(key);
    const deliveries = receiver.received.filter((r) => !isHandshake(r));
    assert.deepEqual(deliveries.map((r) => r.headers['webhook-id']), sent, 'held messages arrive after the echo, in the order sent');
    for (const r of deliveries) verifier.verify(r.body.toString(), r.headers as Record<string, string>);
    const handshake = receiver.received.find(isHandshake)!;
    verifier.verify(handshake.body.toString(), handshake.headers as Record<string, string>);
    // The SDK's own reads and updates keep working on the endpoint.
    assert.equal((await svix.endpoint.get(app.id, endpoint.id)).description, 'challenged');
  });
});
