import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_RETRY_POLICY } from '../../src/domain/retry.js';
import { EgressPolicy } from '../../src/egress/policy.js';
import { createLogger } from '../../src/log.js';
import { HttpDestination } from '../../src/pipeline/destinations/http.js';
import { Dispatcher } from '../../src/pipeline/dispatcher.js';
import type { Store } from '../../src/store/store.js';
import { startReceiver } from '../helpers/receiver.js';
import { startRelay } from '../helpers/relay.js';
import { waitUntil } from '../helpers/wait.js';
import { attemptedMessages, createApp, createEndpoint, send } from './support.js';

/** The store, with `complete` held until `open()` and the order of outcome writes and lease releases recorded. */
function slowStore(store: Store) {
  const events: string[] = [];
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  const wrapped = new Proxy(store, {
    get(target, name, receiver) {
      if (name === 'complete') {
        return async (...args: Parameters<Store['complete']>) => {
          events.push('outcomes written: start');
          await gate;
          const result = await target.complete(...args);
          events.push('outcomes written: end');
          return result;
        };
      }
      if (name === 'releaseLeases') {
        return (owner: string | null) => {
          events.push('leases released');
          return target.releaseLeases(owner);
        };
      }
      const value = Reflect.get(target, name, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { store: wrapped, events, open };
}

describe('a graceful stop never re-sends what was delivered', () => {
  it('releases leases only after the outcome batch being written is committed', async (t) => {
    const [relay, receiver] = await Promise.all([startRelay(), startReceiver()]);
    t.after(async () => {
      await relay.close();
      await receiver.close();
    });
    // This test's own dispatcher, on a store whose outcome writes are slow, takes the deliveries.
    await relay.dispatcher.stop(0);
    const appId = await createApp(relay);
    const endpoint = await createEndpoint(relay, appId, { url: receiver.url });
    for (let i = 0; i < 5; i++) await send(relay, appId, { i });

    const slow = slowStore(relay.store);
    const http = new HttpDestination({ timeoutMs: 5000, connectTimeoutMs: 5000, responseBodyLimit: 1000, connectionsPerOrigin: 8, userAgent: 'test', egress: new EgressPolicy({ allowNetworks: ['127.0.0.0/8'] }) });
    t.after(() => http.close());
    const dispatcher = new Dispatcher(slow.store, http, { owner: 'slow-owner', maxInFlight: 16, claimBatch: 16, leaseMs: 60_000, pollMs: 100, retry: DEFAULT_RETRY_POLICY }, createLogger('silent'));
    dispatcher.start();
    await receiver.waitFor(5);
    await waitUntil('an outcome batch held in the store', () => slow.events.includes('outcomes written: start'));

    const stopping = dispatcher.stop(1000);
    // Time for a stop that does not wait to release the leases under the held batch.
    await new Promise((resolve) => setTimeout(resolve, 200));
    slow.open();
    await stopping;

    assert.deepEqual(slow.events.filter((e, i, all) => all.indexOf(e) === i), ['outcomes written: start', 'outcomes written: end', 'leases released']);
    assert.equal(slow.events.lastIndexOf('outcomes written: end') < slow.events.indexOf('leases released'), true, 'every outcome batch was committed before the leases were released');
    assert.equal((await attemptedMessages(relay, appId, endpoint.id, 0)).length, 5, 'all five recorded as delivered');
    assert.deepEqual(await relay.store.claim({ owner: 'after', now: Date.now() + 60_000, limit: 100, leaseMs: 1000 }), [], 'nothing is due to be sent again');
    assert.equal(receiver.received.length, 5);
  });
});
