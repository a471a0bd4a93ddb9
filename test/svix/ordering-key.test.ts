import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Svix } from 'svix';
import { startRelay } from '../helpers/relay.js';
import { waitUntil } from '../helpers/wait.js';
import { assertKeyOrder, startOrderedReceiver } from '../pipeline/ordering-support.js';

/**
 * The svix SDK's MessageIn has no `orderingKey` (its serializer drops fields it does not know), but its `fetch` option
 * lets a client add it: this wrapper puts `"orderingKey"` first into the JSON body of message create, leaving the
 * SDK's own text — the payload included — as it was. `keyOf` reads the body the SDK wrote and picks the key.
 */
function orderingKeyFetch(keyOf: (messageIn: { eventType: string; payload: any }) => string | null): typeof fetch {
  return (input, init) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    if (init?.method === 'POST' && /^\/api\/v1\/app\/[^/]+\/msg\/?$/.test(url.pathname) && typeof init.body === 'string') {
      const key = keyOf(JSON.parse(init.body));
      if (key !== null) init = { ...init, body: `{"orderingKey":${JSON.stringify(key)},${init.body.slice(1)}` };
    }
    return fetch(input, init);
  };
}

describe('ordering keys through the svix SDK', () => {
  it("passes orderingKey through the SDK's fetch option, and the endpoint delivers each key in order", async (t) => {
    const relay = await startRelay();
    const receiver = await startOrderedReceiver(() => ({ status: 200, delayMs: 5 }));
    t.after(async () => {
      await relay.close();
      await receiver.close();
    });
    const svix = new Svix(relay.adminToken, { serverUrl: relay.url, fetch: orderingKeyFetch((m) => m.payload.key ?? null) });
    const app = await svix.application.create({ name: 'sdk-ordering' });
    // `ordering` is a hookrelay extension the SDK's EndpointIn lacks too: sent as plain JSON.
    const endpoint = await relay.api('POST', `/api/v1/app/${app.id}/endpoint`, { url: receiver.url, ordering: 'key', maxInFlight: 4 });
    assert.equal(endpoint.status, 201, endpoint.text);

    const sent: string[] = [];
    await Promise.all(['k1', 'k2', 'k3'].map(async (key) => {
      for (let seq = 0; seq < 10; seq++) sent.push((await svix.message.create(app.id, { eventType: 'ordered', payload: { key, seq } })).id);
    }));
    await waitUntil('every message', () => receiver.complete(10) === 3, 30_000);
    assertKeyOrder(receiver.arrivals, ['k1', 'k2', 'k3'], 10);
    for (const id of sent) {
      const stored = await relay.api('GET', `/api/v1/app/${app.id}/msg/${id}`);
      assert.equal(stored.body.orderingKey, stored.body.payload.key);
    }
  });
});
