import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { skipWithoutPostgres } from '../helpers/postgres.js';
import { startRelayOn, type TestRelay, type TestStoreKind } from '../helpers/relay.js';
import { waitUntil } from '../helpers/wait.js';
import { assertKeyOrder, startOrderedReceiver, type Arrival } from './ordering-support.js';
import { createApp, createEndpoint } from './support.js';

const KEYS = 50;
const PER_KEY = 200;

async function sendKeyed(relay: TestRelay, appId: string, key: string | null, seq: number): Promise<string> {
  const response = await relay.api('POST', `/api/v1/app/${appId}/msg`, { eventType: 'ordered', payload: { key: key ?? 'none', seq }, ...(key === null ? {} : { orderingKey: key }) });
  assert.equal(response.status, 202, response.text);
  return response.body.id;
}

/** The state of a message's delivery to an endpoint, as the API reports it (0 success, 1 pending, 2 parked, 3 sending). */
async function deliveryStatus(relay: TestRelay, appId: string, messageId: string, endpointId: string): Promise<number> {
  const response = await relay.api('GET', `/api/v1/app/${appId}/msg/${messageId}/endpoint`);
  assert.equal(response.status, 200, response.text);
  return response.body.data.find((d: { id: string }) => d.id === endpointId).status;
}

const arrivalsOf = (arrivals: Arrival[], key: string) => arrivals.filter((a) => a.key === key).map((a) => a.seq);

function suite(kind: TestStoreKind) {
  it(`delivers ${KEYS} keys × ${PER_KEY} messages in order per key, keys in parallel, with random failures and retries`, { timeout: 300_000 }, async (t) => {
    const relay = await startRelayOn(kind);
    // Each message fails its first or second attempt now and then (never a third: the schedule has three), so every key
    // is held by retries at some point and no message is parked.
    const receiver = await startOrderedReceiver((_key, _seq, attempt) => ({ status: attempt < 2 && Math.random() < 0.1 ? 500 : 200, delayMs: 1 + Math.floor(Math.random() * 6) }));
    t.after(async () => {
      await relay.close();
      await receiver.close();
    });
    const appId = await createApp(relay);
    const endpoint = await createEndpoint(relay, appId, { url: receiver.url, ordering: 'key', maxInFlight: 16 });
    const keys = Array.from({ length: KEYS }, (_, k) => `customer:${k}`);
    // One sender per key, each waiting for its 202 before the next: the acceptance order of a key is its seq order.
    await Promise.all(keys.map(async (key) => {
      for (let seq = 0; seq < PER_KEY; seq++) await sendKeyed(relay, appId, key, seq);
    }));
    await waitUntil('every key to be delivered', () => receiver.complete(PER_KEY) === KEYS, 240_000, 100);

    assertKeyOrder(receiver.arrivals, keys, PER_KEY);
    const retried = receiver.arrivals.filter((a) => !a.ok).length;
    assert.ok(retried > 0, 'no attempt failed: retries were not exercised');
    // Keys progress side by side: many keys had requests open at once (the cap is 16), never two of one key.
    assert.ok(receiver.maxKeysOpen() >= 8, `at most ${receiver.maxKeysOpen()} keys were in flight at once`);
    // The receiver counts an answer once it has sent it; hookrelay stores the outcome once it has read it.
    const stats = () => relay.api('GET', `/api/v1/app/${appId}/endpoint/${endpoint.id}/stats`);
    await waitUntil('every success to be recorded', async () => (await stats()).body.success >= KEYS * PER_KEY, 30_000, 100);
    const attempted = await stats();
    assert.equal(attempted.body.success, KEYS * PER_KEY, attempted.text);
  });

  it('orderingOnPark skip: a parked message lets the next ones of its key go; hold: they wait until it is resent and succeeds', { timeout: 120_000 }, async (t) => {
    const relay = await startRelayOn(kind);
    let healed = false;
    const receiver = await startOrderedReceiver((key, seq) => ({ status: !healed && key.endsWith(':a') && seq === 1 ? 500 : 200, delayMs: 1 }));
    t.after(async () => {
      await relay.close();
      await receiver.close();
    });
    const appId = await createApp(relay);
    const results: Record<string, { endpointId: string; ids: Record<string, string[]> }> = {};
    for (const mode of ['skip', 'hold'] as const) {
      const endpoint = await createEndpoint(relay, appId, { url: receiver.url, ordering: 'key', orderingOnPark: mode, filterTypes: [`ordered.${mode}`] });
      const fetched = await relay.api('GET', `/api/v1/app/${appId}/endpoint/${endpoint.id}`);
      assert.equal(fetched.body.ordering, 'key');
      assert.equal(fetched.body.orderingOnPark, mode);
      const ids: Record<string, string[]> = {};
      for (const key of [`${mode}:a`, `${mode}:b`]) {
        ids[key] = [];
        for (let seq = 0; seq < 4; seq++) {
          const response = await relay.api('POST', `/api/v1/app/${appId}/msg`, { eventType: `ordered.${mode}`, payload: { key, seq }, orderingKey: key });
          assert.equal(response.status, 202, response.text);
          assert.equal(response.body.orderingKey, key);
          ids[key].push(response.body.id);
        }
      }
      results[mode] = { endpointId: endpoint.id, ids };
    }

    // skip: #1 of key a is parked after its three attempts, and #2, #3 follow it.
    await waitUntil('key skip:a to finish past its parked message', () => receiver.arrivals.some((a) => a.key === 'skip:a' && a.seq === 3 && a.ok), 30_000);
    assert.deepEqual(arrivalsOf(receiver.arrivals, 'skip:a'), [0, 1, 1, 1, 2, 3]);
    assert.equal(await deliveryStatus(relay, appId, results.skip.ids['skip:a'][1], results.skip.endpointId), 2);

    // hold: key b is delivered whole; key a stops at its parked #1, and #2, #3 wait as pending without an attempt.
    await waitUntil('key hold:b to be delivered', () => receiver.arrivals.some((a) => a.key === 'hold:b' && a.seq === 3 && a.ok), 30_000);
    await waitUntil('hold:a #1 to be parked', async () => (await deliveryStatus(relay, appId, results.hold.ids['hold:a'][1], results.hold.endpointId)) === 2, 30_000);
    // A message sent after the park, on another key, goes through: the dispatcher has claimed since the park.
    const later = await relay.api('POST', `/api/v1/app/${appId}/msg`, { eventType: 'ordered.hold', payload: { key: 'hold:c', seq: 0 }, orderingKey: 'hold:c' });
    assert.equal(later.status, 202);
    await waitUntil('hold:c to be delivered', () => receiver.arrivals.some((a) => a.key === 'hold:c' && a.ok), 30_000);
    assert.deepEqual(arrivalsOf(receiver.arrivals, 'hold:a'), [0, 1, 1, 1]);
    for (const seq of [2, 3]) assert.equal(await deliveryStatus(relay, appId, results.hold.ids['hold:a'][seq], results.hold.endpointId), 1);

    healed = true;
    const resent = await relay.api('POST', `/api/v1/app/${appId}/msg/${results.hold.ids['hold:a'][1]}/endpoint/${results.hold.endpointId}/resend`);
    assert.equal(resent.status, 202, resent.text);
    await waitUntil('key hold:a to be delivered after the resend', () => receiver.arrivals.some((a) => a.key === 'hold:a' && a.seq === 3 && a.ok), 30_000);
    assert.deepEqual(arrivalsOf(receiver.arrivals, 'hold:a'), [0, 1, 1, 1, 1, 2, 3]);
    assertKeyOrder(receiver.arrivals, ['hold:a', 'hold:b', 'skip:b'], 4);
  });

  it('delivers messages without a key on a key-ordered endpoint unordered, each on its own', { timeout: 60_000 }, async (t) => {
    const relay = await startRelayOn(kind);
    const receiver = await startOrderedReceiver(() => ({ status: 200, delayMs: 20 }));
    t.after(async () => {
      await relay.close();
      await receiver.close();
    });
    const appId = await createApp(relay);
    await createEndpoint(relay, appId, { url: receiver.url, ordering: 'key', maxInFlight: 8 });
    const sent = await Promise.all(Array.from({ length: 40 }, (_, seq) => sendKeyed(relay, appId, null, seq)));
    await waitUntil('every keyless message', () => receiver.arrivals.filter((a) => a.ok).length === 40, 30_000);
    assert.equal(new Set(receiver.arrivals.map((a) => a.seq)).size, 40);
    // Several were in flight at once: they are not serialised behind one another.
    assert.ok(Math.max(...receiver.arrivals.map((a) => a.sameKeyOpen)) >= 2, 'keyless messages were delivered one at a time');
    const message = await relay.api('GET', `/api/v1/app/${appId}/msg/${sent[0]}`);
    assert.equal(message.body.orderingKey, null);
  });
}

describe('ordering keys (SQLite)', () => suite('sqlite'));
describe('ordering keys (PostgreSQL)', { skip: skipWithoutPostgres() }, () => suite('postgres'));

describe('ordering keys: API', () => {
  it('validates orderingKey and the endpoint settings with 422s, and returns them', async (t) => {
    const relay = await startRelayOn('sqlite');
    t.after(() => relay.close());
    const appId = await createApp(relay);
    for (const [orderingKey, msg] of [
      ['', 'too_small'],
      ['has space', 'printable ASCII'],
      ['é', 'printable ASCII'],
      ['k'.repeat(257), 'too_big'],
      [42, 'string'],
    ] as const) {
      const response = await relay.api('POST', `/api/v1/app/${appId}/msg`, { eventType: 'ordered', payload: {}, orderingKey });
      assert.equal(response.status, 422, `${JSON.stringify(orderingKey)}: ${response.text}`);
      assert.deepEqual(response.body.detail[0].loc, ['body', 'orderingKey']);
      assert.ok(JSON.stringify(response.body.detail[0]).includes(msg), response.text);
    }
    const longest = 'k'.repeat(256);
    const ok = await relay.api('POST', `/api/v1/app/${appId}/msg`, { eventType: 'ordered', payload: {}, orderingKey: longest });
    assert.equal(ok.status, 202, ok.text);
    assert.equal((await relay.api('GET', `/api/v1/app/${appId}/msg/${ok.body.id}`)).body.orderingKey, longest);
    const listed = await relay.api('GET', `/api/v1/app/${appId}/msg`);
    assert.equal(listed.body.data[0].orderingKey, longest);

    const bad = await relay.api('POST', `/api/v1/app/${appId}/endpoint`, { url: 'https://example.com/hook', ordering: 'key', orderingOnPark: 'drop' });
    assert.equal(bad.status, 422);
    assert.deepEqual(bad.body.detail[0].loc, ['body', 'orderingOnPark']);
    const created = await relay.api('POST', `/api/v1/app/${appId}/endpoint`, { url: 'https://example.com/hook', ordering: 'key' });
    assert.equal(created.status, 201, created.text);
    assert.equal(created.body.orderingOnPark, 'skip');
    const patched = await relay.api('PATCH', `/api/v1/app/${appId}/endpoint/${created.body.id}`, { orderingOnPark: 'hold' });
    assert.equal(patched.body.ordering, 'key');
    assert.equal(patched.body.orderingOnPark, 'hold');
    // The svix SDK's update sends neither field: both are kept.
    await relay.svix1.endpoint.update(appId, created.body.id, { url: 'https://example.com/hook2' });
    const kept = await relay.api('GET', `/api/v1/app/${appId}/endpoint/${created.body.id}`);
    assert.equal(kept.body.ordering, 'key');
    assert.equal(kept.body.orderingOnPark, 'hold');
  });
});
