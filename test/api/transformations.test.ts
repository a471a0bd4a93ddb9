import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { startRelay, type TestRelay } from '../helpers/relay.js';
import { waitUntil } from '../helpers/wait.js';
import { assertValidation, deliveryOf, messageIdOf, verify } from './support.js';

/** A value only the host process has: a transformation must never see it. */
const ENV_SENTINEL = 'env-sentinel-7f3a9c1e-never-in-a-sandbox';

describe('endpoint transformations', () => {
  let relay: TestRelay;
  let receiver: Receiver;
  let other: Receiver;
  let appId: string;
  before(async () => {
    process.env.HOOKRELAY_TEST_SENTINEL = ENV_SENTINEL;
    relay = await startRelay();
    receiver = await startReceiver();
    other = await startReceiver();
  });
  // Each test has its application, so that its messages reach only its endpoints.
  beforeEach(async () => {
    appId = (await relay.svix.application.create({ name: 'transformations' })).id;
  });
  after(async () => {
    delete process.env.HOOKRELAY_TEST_SENTINEL;
    await relay.close();
    await receiver.close();
    await other.close();
  });

  const endpoint = async (url: string, extra: Record<string, unknown> = {}) => {
    const created = await relay.api('POST', `/api/v1/app/${appId}/endpoint`, { url, ...extra });
    assert.equal(created.status, 201, created.text);
    const secret = await relay.api('GET', `/api/v1/app/${appId}/endpoint/${created.body.id}/secret`);
    return { id: created.body.id as string, secret: secret.body.key as string };
  };
  const setCode = (endpointId: string, code: string) => relay.svix.endpoint.transformation.patch(appId, endpointId, { code, enabled: true });
  const attemptsOf = (endpointId: string, msgId: string) => relay.svix.messageAttempt.listByMsg(appId, msgId, { endpointId }).then((p) => p.data);

  it('saves, shows and validates code through the svix SDK routes', async () => {
    const { id } = await endpoint(receiver.url);
    assert.deepEqual(await relay.svix.endpoint.transformation.get(appId, id), { code: null, enabled: false, variables: null, updatedAt: null });
    const code = 'function handler(webhook) { webhook.payload.seen = true; return webhook; }';
    await setCode(id, code);
    const saved = await relay.svix.endpoint.transformation.get(appId, id);
    assert.equal(saved.code, code);
    assert.equal(saved.enabled, true);
    assert.ok(saved.updatedAt instanceof Date);
    await relay.svix.endpoint.transformation.patch(appId, id, { enabled: false });
    assert.deepEqual({ ...(await relay.svix.endpoint.transformation.get(appId, id)), updatedAt: null }, { code, enabled: false, variables: null, updatedAt: null });

    const syntax = await relay.api('PATCH', `/api/v1/app/${appId}/endpoint/${id}/transformation`, { code: 'function handler(webhook) { return webhook' });
    assert.equal(syntax.status, 422, syntax.text);
    assertValidation(syntax.body, ['body', 'code']);
    assert.match(syntax.body.detail[0].msg, /SyntaxError/);
    const noHandler = await relay.api('PATCH', `/api/v1/app/${appId}/endpoint/${id}/transformation`, { code: 'const x = 1;' });
    assert.equal(noHandler.status, 422);
    assert.match(noHandler.body.detail[0].msg, /function named handler/);
    const throwsAtLoad = await relay.api('PATCH', `/api/v1/app/${appId}/endpoint/${id}/transformation`, { code: 'throw new Error("boom at load")' });
    assert.equal(throwsAtLoad.status, 422);
    assert.match(throwsAtLoad.body.detail[0].msg, /boom at load/);
    // The refused patches changed nothing.
    assert.equal((await relay.svix.endpoint.transformation.get(appId, id)).code, code);

    // The older svix 1.x call patches the same route.
    await relay.svix1.endpoint.transformationPartialUpdate(appId, id, { code: 'function handler(w) { return w; }', enabled: true });
    assert.equal((await relay.svix.endpoint.transformation.get(appId, id)).code, 'function handler(w) { return w; }');
    // A PUT of the endpoint keeps its transformation, as in Svix.
    await relay.api('PUT', `/api/v1/app/${appId}/endpoint/${id}`, { url: receiver.url, description: 'replaced' });
    assert.equal((await relay.svix.endpoint.transformation.get(appId, id)).enabled, true);
  });

  it('reshapes method, URL, headers and payload; the receiver verifies the signature over the bytes sent', async () => {
    const { id, secret } = await endpoint(receiver.url, { headers: { 'x-team': 'billing' } });
    await setCode(
      id,
      `function handler(webhook) {
        webhook.method = 'PUT';
        webhook.url = webhook.url.replace('${new URL(receiver.url).port}', '${new URL(other.url).port}') + '?type=' + webhook.eventType;
        webhook.headers['x-amount'] = String(webhook.payload.amount);
        webhook.payload = { text: 'Invoice ' + webhook.payload.id + ' paid', team: webhook.headers['x-team'] };
        return webhook;
      }`,
    );
    const msg = await relay.svix.message.create(appId, { eventType: 'invoice.paid', payload: { id: 'in_1', amount: 1200 } });
    const request = await deliveryOf(other, msg.id);
    assert.equal(request.method, 'PUT');
    assert.equal(request.path, '/webhook?type=invoice.paid');
    assert.equal(request.headers['x-amount'], '1200');
    assert.equal(request.headers['x-team'], 'billing');
    assert.equal(request.headers['content-type'], 'application/json');
    assert.deepEqual(verify(secret, request), { text: 'Invoice in_1 paid', team: 'billing' });
    assert.equal(receiver.received.filter((r) => messageIdOf(r) === msg.id).length, 0);
    // The attempt shows where it went.
    const [attempt] = (await waitUntil('the attempt', async () => ((await attemptsOf(id, msg.id)).length > 0 ? attemptsOf(id, msg.id) : null)))!;
    assert.equal(attempt.url, `${other.url}?type=invoice.paid`);
  });

  it('sends the stored bytes unchanged when the handler leaves the payload alone', async () => {
    const { id, secret } = await endpoint(receiver.url);
    await setCode(id, `function handler(webhook) { webhook.headers['x-touched'] = 'yes'; return webhook; }`);
    const raw = '{"id":  "big",\n "n": 12345678901234567890, "f": 1.50}';
    const created = await relay.api('POST', `/api/v1/app/${appId}/msg`, undefined, { rawBody: `{"eventType": "raw.sent", "payload": ${raw}}`, headers: { 'content-type': 'application/json' } });
    assert.equal(created.status, 202, created.text);
    const request = await deliveryOf(receiver, created.body.id);
    assert.equal(request.headers['x-touched'], 'yes');
    assert.equal(request.body.toString('utf8'), raw);
    verify(secret, request);
  });

  it('cancels a delivery when the handler sets cancel: nothing is sent and the attempt says why', async () => {
    const { id } = await endpoint(receiver.url);
    await setCode(id, 'function handler(webhook) { webhook.cancel = webhook.payload.test === true; return webhook; }');
    const cancelled = await relay.svix.message.create(appId, { eventType: 'order.created', payload: { test: true } });
    const sent = await relay.svix.message.create(appId, { eventType: 'order.created', payload: { test: false } });
    await deliveryOf(receiver, sent.id);
    const [attempt] = (await waitUntil('the cancelled attempt', async () => ((await attemptsOf(id, cancelled.id)).length > 0 ? attemptsOf(id, cancelled.id) : null)))!;
    assert.equal(attempt.status, 0);
    assert.match(attempt.response, /canceled by the endpoint transformation/);
    assert.equal(receiver.received.filter((r) => messageIdOf(r) === cancelled.id).length, 0);
  });

  it('stops an infinite loop, a memory bomb and endless recursion at their limits; the process and other deliveries go on', async () => {
    const plain = await endpoint(other.url);
    const hostile = {
      loop: await endpoint(receiver.url),
      memory: await endpoint(receiver.url),
      recursion: await endpoint(receiver.url),
      throws: await endpoint(receiver.url),
      badReturn: await endpoint(receiver.url),
    };
    await setCode(hostile.loop.id, 'function handler(webhook) { for (;;) {} }');
    await setCode(hostile.memory.id, 'function handler(webhook) { const a = []; for (;;) a.push([a.length, webhook]); }');
    await setCode(hostile.recursion.id, 'function handler(webhook) { function f(n) { return f(n + 1) + 1; } return f(0); }');
    await setCode(hostile.throws.id, 'function handler(webhook) { throw new TypeError("no amount on " + webhook.eventType); }');
    await setCode(hostile.badReturn.id, 'function handler(webhook) { return { url: 42 }; }');

    const msgs: { id: string }[] = [];
    for (let i = 0; i < 3; i++) msgs.push(await relay.svix.message.create(appId, { eventType: 'order.created', payload: { i } }));
    for (const msg of msgs) await deliveryOf(other, msg.id);
    const expected: Record<keyof typeof hostile, RegExp> = {
      loop: /transformation failed: timed out/,
      memory: /transformation failed: out of memory/,
      recursion: /transformation failed: .*stack overflow/,
      throws: /transformation failed: TypeError: no amount on order\.created/,
      badReturn: /transformation failed: bad return value: url must be a string/,
    };
    for (const [name, { id }] of Object.entries(hostile) as [keyof typeof hostile, { id: string }][]) {
      const attempts = (await waitUntil(`a failed attempt of ${name}`, async () => {
        const list = await attemptsOf(id, msgs[0].id);
        return list.length > 0 ? list : null;
      }, 20_000))!;
      assert.equal(attempts[0].status, 2, `${name} failed`);
      assert.match(attempts[0].response ?? '', expected[name], name);
    }
    assert.equal(receiver.received.filter((r) => msgs.some((m) => m.id === messageIdOf(r))).length, 0, 'nothing reached the hostile endpoints');

    // Still serving: the API answers and a good transformation runs after the hostile ones.
    assert.equal((await relay.api('GET', '/api/v1/health')).status, 204);
    await setCode(plain.id, 'function handler(webhook) { webhook.payload.after = true; return webhook; }');
    const later = await relay.svix.message.create(appId, { eventType: 'order.created', payload: { i: 99 } });
    assert.deepEqual(verify(plain.secret, await deliveryOf(other, later.id)), { i: 99, after: true });
  });

  it('gives a transformation nothing of the host: no process, require, timers, environment or other endpoints’ secrets', async () => {
    const victim = await endpoint(other.url);
    const { id } = await endpoint(receiver.url);
    await setCode(
      id,
      `function handler(webhook) {
        const probe = (f) => { try { return f(); } catch (e) { return 'threw ' + e.name; } };
        webhook.payload = {
          process: typeof process, require: typeof require, setTimeout: typeof setTimeout, fetch: typeof fetch,
          importMeta: probe(() => typeof globalThis.std + typeof globalThis.os),
          globals: Object.getOwnPropertyNames(globalThis).sort(),
          input: JSON.stringify(webhook),
        };
        return webhook;
      }`,
    );
    const msg = await relay.svix.message.create(appId, { eventType: 'probe.run', payload: {} });
    const seen = JSON.parse((await deliveryOf(receiver, msg.id)).body.toString('utf8'));
    assert.equal(seen.process, 'undefined');
    assert.equal(seen.require, 'undefined');
    assert.equal(seen.setTimeout, 'undefined');
    assert.equal(seen.fetch, 'undefined');
    assert.equal(seen.importMeta, 'undefinedundefined');
    for (const name of seen.globals) assert.ok(!/^(process|require|module|Buffer|setTimeout|setInterval|fetch|std|os|console)$/.test(name), `unexpected global ${name}`);
    const text = JSON.stringify(seen);
    assert.ok(!text.includes(ENV_SENTINEL), 'the environment is not visible');
    assert.ok(!text.includes(victim.secret.replace(/^whsec_/, '')), 'another endpoint’s secret is not visible');
    assert.ok(!text.includes('whsec_'), 'no signing secret is visible, not even its own');
  });

  it('simulates a transformation on a sample payload without saving or sending anything', async () => {
    const quiet = await startReceiver();
    const { id } = await endpoint(quiet.url, { headers: { 'x-team': 'ops' } });
    const code = `function handler(webhook) { webhook.method = 'PATCH'; webhook.payload = { hello: webhook.payload.name, type: webhook.eventType }; webhook.headers['x-sim'] = '1'; return webhook; }`;
    const simulated = await relay.api('POST', `/api/v1/app/${appId}/endpoint/${id}/transformation/simulate`, { code, eventType: 'user.created', payload: { name: 'Ada' } });
    assert.equal(simulated.status, 200, simulated.text);
    assert.deepEqual(simulated.body, { method: 'PATCH', url: quiet.url, payload: '{"hello":"Ada","type":"user.created"}', headers: { 'x-team': 'ops', 'x-sim': '1' }, cancel: false });
    assert.equal((await relay.svix.endpoint.transformation.get(appId, id)).code, null, 'nothing saved');
    assert.equal(quiet.received.length, 0, 'nothing sent');

    const failing = await relay.api('POST', `/api/v1/app/${appId}/endpoint/${id}/transformation/simulate`, { code: 'function handler(w) { while (true) {} }', eventType: 'user.created', payload: {} });
    assert.equal(failing.status, 422);
    assert.match(failing.body.detail[0].msg, /timed out/);
    // A transformed URL is held to the egress policy: the cloud metadata address is refused.
    const metadata = await relay.api('POST', `/api/v1/app/${appId}/endpoint/${id}/transformation/simulate`, { code: "function handler(w) { w.url = 'http://169.254.169.254/latest/meta-data'; return w; }", eventType: 'user.created', payload: {} });
    assert.equal(metadata.status, 422, metadata.text);
    await quiet.close();
  });

  it('refuses at delivery a transformed URL the egress policy forbids', async () => {
    const { id } = await endpoint(receiver.url);
    await setCode(id, "function handler(w) { w.url = 'http://169.254.169.254/latest/meta-data'; return w; }");
    const msg = await relay.svix.message.create(appId, { eventType: 'order.created', payload: {} });
    const [attempt] = (await waitUntil('the refused attempt', async () => ((await attemptsOf(id, msg.id)).length > 0 ? attemptsOf(id, msg.id) : null)))!;
    assert.equal(attempt.status, 2);
    assert.match(attempt.response ?? '', /169\.254\.169\.254|not allowed|refused/i);
  });

  it('serves the same routes for a source’s endpoints', async () => {
    const source = await relay.api('POST', '/ingest/api/v1/source', { name: 'transforming source', type: 'github', config: { secret: 'a-source-secret-xyz' } });
    assert.equal(source.status, 201, source.text);
    const ep = await relay.api('POST', `/ingest/api/v1/source/${source.body.id}/endpoint`, { url: receiver.url });
    assert.equal(ep.status, 201, ep.text);
    await relay.svix.ingest.endpoint.transformation.patch(source.body.id, ep.body.id, { code: 'function handler(w) { return w; }', enabled: true });
    assert.equal((await relay.svix.ingest.endpoint.transformation.get(source.body.id, ep.body.id)).enabled, true);
  });
});
