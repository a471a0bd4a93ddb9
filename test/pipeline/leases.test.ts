import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ClaimedDelivery } from '../../src/domain/types.js';
import { startRelay } from '../helpers/relay.js';
import { attemptedMessages, createApp, createEndpoint, send } from './support.js';

const perEndpoint = (claimed: ClaimedDelivery[]) => {
  const counts: Record<string, number> = {};
  for (const c of claimed) counts[c.endpoint.id] = (counts[c.endpoint.id] ?? 0) + 1;
  return counts;
};

describe('dispatcher leases (Store contract through relay.store)', () => {
  it('claims within each endpoint cap, and returns released or expired leases to pending', async (t) => {
    const relay = await startRelay();
    t.after(() => relay.close());
    // The test plays the dispatcher: the relay's own must not take the deliveries first.
    await relay.dispatcher.stop(0);
    const store = relay.store;

    const appId = await createApp(relay);
    // Nothing listens on these: the deliveries are only ever claimed here, never sent.
    const capped = await createEndpoint(relay, appId, { url: 'http://127.0.0.1:9/capped', maxInFlight: 3 });
    const fifo = await createEndpoint(relay, appId, { url: 'http://127.0.0.1:9/fifo', ordering: 'fifo' });
    const sent: string[] = [];
    for (let i = 0; i < 10; i++) sent.push(await send(relay, appId, { i }));

    const now = Date.now();
    const first = await store.claim({ owner: 'probe-1', now, limit: 100, leaseMs: 60_000 });
    assert.deepEqual(perEndpoint(first), { [capped.id]: 3, [fifo.id]: 1 });
    assert.deepEqual(first.filter((c) => c.endpoint.id === fifo.id).map((c) => c.message.id), [sent[0]], 'fifo yields its oldest message');
    for (const c of first) {
      assert.equal(c.delivery.status, 'in_flight');
      assert.ok(c.message.payload, 'a claim carries what is needed to send');
    }
    assert.deepEqual(await store.claim({ owner: 'probe-1', now, limit: 100, leaseMs: 60_000 }), [], 'both endpoints are at their cap');
    assert.equal((await attemptedMessages(relay, appId, capped.id, 3)).length, 3);

    assert.equal(await store.releaseLeases('someone-else'), 0, 'only the named owner loses its leases');
    assert.equal(await store.releaseLeases('probe-1'), 4);
    assert.equal((await attemptedMessages(relay, appId, capped.id, 3)).length, 0);
    assert.equal((await attemptedMessages(relay, appId, capped.id, 1)).length, 10);
    assert.equal((await attemptedMessages(relay, appId, fifo.id, 1)).length, 10);

    const again = await store.claim({ owner: 'probe-2', now, limit: 100, leaseMs: 1_000 });
    assert.deepEqual(perEndpoint(again), { [capped.id]: 3, [fifo.id]: 1 });
    assert.deepEqual(
      again.map((c) => c.delivery.id).sort((a, b) => a - b),
      first.map((c) => c.delivery.id).sort((a, b) => a - b),
      'released deliveries are due again, oldest first',
    );

    // probe-2 "dies": once its leases have expired, another owner may claim the same deliveries.
    assert.deepEqual(await store.claim({ owner: 'probe-3', now: now + 500, limit: 100, leaseMs: 60_000 }), [], 'an unexpired lease holds');
    const takeover = await store.claim({ owner: 'probe-3', now: now + 1_001, limit: 100, leaseMs: 60_000 });
    assert.deepEqual(perEndpoint(takeover), { [capped.id]: 3, [fifo.id]: 1 });

    assert.equal(await store.releaseLeases(null), 4, 'null releases every owner\'s leases');
    const limited = await store.claim({ owner: 'probe-4', now, limit: 2, leaseMs: 60_000 });
    assert.equal(limited.length, 2, 'a claim never exceeds its limit');
  });
});
