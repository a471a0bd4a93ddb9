import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { startRelay, type TestRelay } from '../helpers/relay.js';
import { waitUntil } from '../helpers/wait.js';
import { accepted, createSource, post, verifyDelivery } from '../inbound/support.js';
import { assertValidation, messageIdOf, verify } from './support.js';

describe('content filters on endpoints', () => {
  let relay: TestRelay;
  const receivers: Record<string, Receiver> = {};
  before(async () => {
    relay = await startRelay();
    for (const name of ['all', 'big', 'eu', 'vip', 'hostile', 'pushes', 'orders']) receivers[name] = await startReceiver(() => ({ status: 200 }));
  });
  after(async () => {
    await relay.close();
    for (const r of Object.values(receivers)) await r.close();
  });

  const createEndpoint = async (base: string, name: string, filter?: unknown) => {
    const response = await relay.api('POST', base, { url: receivers[name].url, uid: name, filter });
    assert.equal(response.status, 201, response.text);
    const secret = await relay.api('GET', `${base}/${response.body.id}/secret`);
    return { id: response.body.id as string, secret: secret.body.key as string, body: response.body };
  };

  it('delivers each message to exactly the endpoints whose filter matches its payload; unmatched messages are kept', async () => {
    const app = await relay.svix.application.create({ name: 'content-filters' });
    const base = `/api/v1/app/${app.id}/endpoint`;
    const endpoints = {
      all: await createEndpoint(base, 'all'),
      big: await createEndpoint(base, 'big', { body: { 'data.amount': { $gte: 1000 } } }),
      eu: await createEndpoint(base, 'eu', { body: { data: { country: { $in: ['FR', 'DE'] } } } }),
      vip: await createEndpoint(base, 'vip', { body: { $or: [{ 'data.tags': 'vip' }, { 'data.customer.plan': { $regex: '^enterprise' } }] } }),
      // (a+)+$ would take about 2^40 steps per message on a backtracking engine; RE2 answers at once.
      hostile: await createEndpoint(base, 'hostile', { body: { 'data.note': { $regex: '(a+)+$' } } }),
    };
    assert.deepEqual(endpoints.big.body.filter, { body: { 'data.amount': { $gte: 1000 } } });
    assert.equal(endpoints.all.body.filter, null);

    const note = 'a'.repeat(40) + '!';
    const cases = [
      { data: { amount: 1500, country: 'FR', tags: ['vip'], note }, expect: ['all', 'big', 'eu', 'vip'] },
      { data: { amount: 20, country: 'US', customer: { plan: 'enterprise-2' }, note }, expect: ['all', 'vip'] },
      { data: { amount: 999, country: 'DE', tags: [], note: 'aaaa' }, expect: ['all', 'eu', 'hostile'] },
    ];
    const sent: { id: string; expect: string[] }[] = [];
    for (const c of cases) sent.push({ id: (await relay.svix.message.create(app.id, { eventType: 'order.created', payload: { data: c.data } })).id, expect: c.expect });

    const nameOf = (id: string) => Object.entries(endpoints).find(([, e]) => e.id === id)![0];
    for (const { id, expect } of sent) {
      const destinations = (await waitUntil(`every delivery of ${id}`, async () => {
        const page = await relay.svix.messageAttempt.listAttemptedDestinations(app.id, id);
        return page.data.length === expect.length && page.data.every((d) => d.status === 0) ? page.data : null;
      }))!;
      assert.deepEqual(destinations.map((d) => nameOf(d.id)).sort(), [...expect].sort());
    }
    for (const [name, endpoint] of Object.entries(endpoints)) {
      const expected = sent.filter((s) => s.expect.includes(name)).map((s) => s.id);
      assert.deepEqual(receivers[name].received.map(messageIdOf).sort(), expected.sort(), `messages received by ${name}`);
      for (const request of receivers[name].received) verify(endpoint.secret, request);
    }

    // Nothing matches but the message is stored and listed all the same.
    await relay.api('DELETE', `${base}/${endpoints.all.id}`);
    const lonely = await relay.svix.message.create(app.id, { eventType: 'order.created', payload: { data: { amount: 1, country: 'US' } } });
    assert.equal((await relay.svix.messageAttempt.listAttemptedDestinations(app.id, lonely.id)).data.length, 0);
    assert.equal((await relay.svix.message.get(app.id, lonely.id)).id, lonely.id);
    assert.ok((await relay.svix.message.list(app.id)).data.some((m) => m.id === lonely.id));

    // PATCH changes the filter for later messages; null removes it.
    const patched = await relay.api('PATCH', `${base}/${endpoints.big.id}`, { filter: { body: { 'data.amount': { $lt: 10 } } } });
    assert.equal(patched.status, 200, patched.text);
    const small = await relay.svix.message.create(app.id, { eventType: 'order.created', payload: { data: { amount: 5 } } });
    await waitUntil('the small order at big', () => receivers.big.received.some((r) => messageIdOf(r) === small.id));
    const cleared = await relay.api('PATCH', `${base}/${endpoints.big.id}`, { filter: null });
    assert.equal(cleared.body.filter, null);
    // A PUT without `filter` replaces it with none, as it does filterTypes.
    await relay.api('PATCH', `${base}/${endpoints.eu.id}`, { filter: { body: { x: 1 } } });
    const put = await relay.api('PUT', `${base}/${endpoints.eu.id}`, { url: receivers.eu.url, uid: 'eu' });
    assert.equal(put.status, 200, put.text);
    assert.equal(put.body.filter, null);
  });

  it('refuses a bad filter with 422 naming the operator or path, and saves nothing', async () => {
    const app = await relay.svix.application.create({ name: 'bad-filters' });
    const base = `/api/v1/app/${app.id}/endpoint`;
    const refused = async (filter: unknown, loc: (string | number)[], msg?: RegExp) => {
      const response = await relay.api('POST', base, { url: receivers.all.url, filter });
      assert.equal(response.status, 422, response.text);
      assertValidation(response.body, loc);
      if (msg) assert.match(JSON.stringify(response.body.detail), msg);
    };
    await refused({ body: { amount: { $between: [1, 2] } } }, ['body', 'filter', 'body', 'amount', '$between'], /unknown operator/);
    await refused({ body: { 'a..b': 1 } }, ['body', 'filter', 'body', 'a..b']);
    await refused({ body: { $or: [{ a: 1 }, { b: { $in: 'x' } }] } }, ['body', 'filter', 'body', '$or', 1, 'b', '$in']);
    await refused({ body: { name: { $regex: '(\\w+)\\s\\1' } } }, ['body', 'filter', 'body', 'name', '$regex'], /RE2/);
    await refused({ query: { a: 1 } }, ['body', 'filter', 'query']);
    await refused('type=x', ['body', 'filter']);
    assert.equal((await relay.api('GET', `${base}`)).body.data.length, 0);

    const ok = await relay.api('POST', base, { url: receivers.all.url });
    const patch = await relay.api('PATCH', `${base}/${ok.body.id}`, { filter: { body: { a: { $gt: [1] } } } });
    assert.equal(patch.status, 422, patch.text);
    assertValidation(patch.body, ['body', 'filter', 'body', 'a', '$gt']);
    assert.equal((await relay.api('GET', `${base}/${ok.body.id}`)).body.filter, null);
  });

  it('routes a source’s requests by body and kept headers, forwarding the exact bytes', async () => {
    const key = `k_${randomUUID()}`;
    const source = await createSource(relay, 'api-key', { secret: key, keepHeaders: ['x-event-kind'] });
    const headers = (kind: string) => ({ authorization: `Bearer ${key}`, 'content-type': 'application/json', 'x-event-kind': kind });
    const base = `/ingest/api/v1/source/${source.id}/endpoint`;
    const pushes = await createEndpoint(base, 'pushes', { headers: { 'X-Event-Kind': 'push' } });
    const orders = await createEndpoint(base, 'orders', { body: { order: { total: { $gt: 100 } } }, headers: { 'x-event-kind': { $neq: 'push' } } });

    // Big integers, odd spacing and key order: the filter reads a parsed copy, the receiver gets these bytes.
    const bodies = {
      push: '{"ref":"main",  "id": 123456789012345678901234567890}',
      bigOrder: '{ "order" : { "total": 250, "id": 98765432109876543210 } }',
      smallOrder: '{"order":{"total":5}}',
    };
    const ids = {
      push: accepted(await post(source.ingestUrl, bodies.push, headers('push'))),
      bigOrder: accepted(await post(source.ingestUrl, bodies.bigOrder, headers('order'))),
      smallOrder: accepted(await post(source.ingestUrl, bodies.smallOrder, headers('order'))),
    };
    const push = (await waitUntil('the push', () => receivers.pushes.received.find((r) => messageIdOf(r) === ids.push)))!;
    const order = (await waitUntil('the big order', () => receivers.orders.received.find((r) => messageIdOf(r) === ids.bigOrder)))!;
    assert.equal(push.body.toString('utf8'), bodies.push);
    assert.equal(order.body.toString('utf8'), bodies.bigOrder);
    verifyDelivery(pushes.secret, push);
    verifyDelivery(orders.secret, order);
    // The small order matched nothing: stored, with no delivery.
    assert.deepEqual((await relay.api('GET', `/api/v1/app/${source.appId}/msg/${ids.smallOrder}/endpoint`)).body.data, []);
    assert.equal((await relay.api('GET', `/api/v1/app/${source.appId}/msg/${ids.smallOrder}`)).status, 200);
    assert.deepEqual(receivers.pushes.received.map(messageIdOf), [ids.push]);
    assert.deepEqual(receivers.orders.received.map(messageIdOf), [ids.bigOrder]);
  });
});
