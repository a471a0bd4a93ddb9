import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { startRelay, type TestRelay } from '../helpers/relay.js';
import { waitUntil } from '../helpers/wait.js';
import { accepted, addEndpoint, createSource, messageIds, post } from '../inbound/support.js';
import { assertValidation, messageIdOf } from './support.js';

const ORDER_SCHEMA = {
  type: 'object',
  required: ['id', 'items'],
  properties: {
    id: { type: 'string', pattern: '^ord_[0-9a-z]+$' },
    email: { type: 'string', format: 'email' },
    items: { type: 'array', items: { type: 'object', required: ['sku', 'qty'], properties: { sku: { type: 'string' }, qty: { type: 'integer', minimum: 1 } } } },
  },
};

describe('event type schemas', () => {
  let relay: TestRelay;
  let receiver: Receiver;
  before(async () => {
    relay = await startRelay();
    receiver = await startReceiver(() => ({ status: 200 }));
  });
  after(async () => {
    await relay.close();
    await receiver.close();
  });

  const createMessage = (appId: string, eventType: string, payload: unknown) => relay.api('POST', `/api/v1/app/${appId}/msg`, { eventType, payload });

  it('refuses an API message failing its event type’s latest schema with 422 naming the path, when the type opts in', async () => {
    const created = await relay.api('POST', '/api/v1/event-type', { name: 'order.placed', description: 'd', schemas: { '1': ORDER_SCHEMA }, validatePayloads: true });
    assert.equal(created.status, 201, created.text);
    assert.equal(created.body.validatePayloads, true);
    const app = await relay.svix.application.create({ name: 'schemas' });

    const good = await createMessage(app.id, 'order.placed', { id: 'ord_1', email: 'ada@example.com', items: [{ sku: 'A', qty: 2 }] });
    assert.equal(good.status, 202, good.text);
    const cases: [unknown, (string | number)[], RegExp][] = [
      [{ id: 'ord_1', items: [{ sku: 'A', qty: 2 }, { sku: 'B', qty: 0 }] }, ['body', 'payload', 'items', 1, 'qty'], />= 1/],
      [{ id: 'ord_1', items: [{ sku: 'A' }] }, ['body', 'payload', 'items', 0, 'qty'], /required property 'qty'/],
      [{ items: [] }, ['body', 'payload', 'id'], /required property 'id'/],
      [{ id: 'order-1', items: [] }, ['body', 'payload', 'id'], /pattern/],
      [{ id: 'ord_1', email: 'not-an-address', items: [] }, ['body', 'payload', 'email'], /format "email"/],
      [{ id: 7, items: 'none' }, ['body', 'payload', 'id'], /must be string/],
    ];
    for (const [payload, loc, msg] of cases) {
      const response = await createMessage(app.id, 'order.placed', payload);
      assert.equal(response.status, 422, `${JSON.stringify(payload)}: ${response.text}`);
      assertValidation(response.body, loc);
      assert.match(response.body.detail[0].msg, msg);
    }
    const stored = await relay.svix.message.list(app.id);
    assert.deepEqual(stored.data.map((m) => m.id), [good.body.id], 'refused messages are not stored');

    // The latest version judges; a PATCH applies to the next message at once.
    const patched = await relay.api('PATCH', '/api/v1/event-type/order.placed', { schemas: { '1': ORDER_SCHEMA, '2': { type: 'object', required: ['orderId'] } } });
    assert.equal(patched.status, 200, patched.text);
    assert.equal((await createMessage(app.id, 'order.placed', { orderId: 7 })).status, 202);
    assertValidation((await createMessage(app.id, 'order.placed', { id: 'ord_1', items: [] })).body, ['body', 'payload', 'orderId']);
    // Turned off: anything goes again, and types without the switch are never checked.
    await relay.api('PATCH', '/api/v1/event-type/order.placed', { validatePayloads: false });
    assert.equal((await createMessage(app.id, 'order.placed', { anything: true })).status, 202);
    await relay.api('POST', '/api/v1/event-type', { name: 'order.loose', description: 'd', schemas: { '1': ORDER_SCHEMA } });
    assert.equal((await createMessage(app.id, 'order.loose', { anything: true })).status, 202);
  });

  it('refuses a schema that does not compile at save, and runs schema patterns on RE2', async () => {
    const refused = async (schemas: unknown, loc: (string | number)[]) => {
      const response = await relay.api('POST', '/api/v1/event-type', { name: `bad.${randomUUID().slice(0, 8)}`, description: 'd', schemas });
      assert.equal(response.status, 422, response.text);
      assertValidation(response.body, loc);
    };
    await refused({ '1': { type: 'objekt' } }, ['body', 'schemas', '1']);
    await refused({ '1': { type: 'string', pattern: '(a)\\1' } }, ['body', 'schemas', '1']);
    await refused({ '1': { $ref: 'https://schemas.example.com/order.json' } }, ['body', 'schemas', '1']);
    await refused({ '1': { type: 'object' }, '2': 'object' }, ['body', 'schemas', '2']);

    // (a+)+$ on forty a's and a "!" would run for hours on a backtracking engine.
    await relay.api('POST', '/api/v1/event-type', { name: 'text.hostile', description: 'd', schemas: { '1': { type: 'object', properties: { t: { type: 'string', pattern: '(a+)+$' } } } }, validatePayloads: true });
    const app = await relay.svix.application.create({ name: 'hostile-schema' });
    const response = await createMessage(app.id, 'text.hostile', { t: 'a'.repeat(40) + '!' });
    assert.equal(response.status, 422, response.text);
    assertValidation(response.body, ['body', 'payload', 't']);
    assert.equal((await createMessage(app.id, 'text.hostile', { t: 'aaaa' })).status, 202);
  });

  it('lets a source mark or refuse a request whose payload fails its schema, as its schemaValidation says', async () => {
    const schema = { type: 'object', required: ['action'], properties: { action: { type: 'string', enum: ['opened', 'closed'] } } };
    const created = await relay.api('POST', '/api/v1/event-type', { name: 'api-key', description: 'what api-key sources receive', schemas: { '1': schema } });
    assert.equal(created.status, 201, created.text);
    const sources: Record<string, { id: string; appId: string; ingestUrl: string; key: string }> = {};
    for (const mode of ['off', 'mark', 'refuse'] as const) {
      const key = `k_${randomUUID()}`;
      sources[mode] = { ...(await createSource(relay, 'api-key', { secret: key, ...(mode === 'off' ? {} : { schemaValidation: mode }) })), key };
      await addEndpoint(relay, sources[mode].id, receiver.url);
    }
    const send = (mode: string, body: string) => post(sources[mode].ingestUrl, body, { authorization: `Bearer ${sources[mode].key}`, 'content-type': 'application/json' });
    const bad = '{"action":"merged"}';

    // refuse: 422 with the path, nothing stored; a good request passes.
    const refusedResponse = await send('refuse', bad);
    assert.equal(refusedResponse.status, 422, refusedResponse.text);
    assert.equal(refusedResponse.body.code, 'schema_mismatch');
    assert.match(refusedResponse.body.detail, /^payload\.action: must be equal to one of the allowed values/);
    assert.deepEqual(await messageIds(relay, sources.refuse.appId), []);
    const good = accepted(await send('refuse', '{"action":"opened"}'));
    assert.deepEqual(await messageIds(relay, sources.refuse.appId), [good]);
    const notJson = await send('refuse', 'action=opened');
    assert.equal(notJson.status, 422);

    // mark: 200 for the provider, stored and delivered with the schema-invalid tag.
    const marked = accepted(await send('mark', bad));
    const message = await relay.api('GET', `/api/v1/app/${sources.mark.appId}/msg/${marked}`);
    assert.deepEqual(message.body.tags, ['schema-invalid']);
    const fine = accepted(await send('mark', '{"action":"closed"}'));
    assert.equal((await relay.api('GET', `/api/v1/app/${sources.mark.appId}/msg/${fine}`)).body.tags, null);
    const tagged = await relay.api('GET', `/api/v1/app/${sources.mark.appId}/msg?tag=schema-invalid`);
    assert.deepEqual(tagged.body.data.map((m: { id: string }) => m.id), [marked]);
    await waitUntil('the marked delivery', () => receiver.received.some((r) => messageIdOf(r) === marked));

    // off (the default): not checked at all.
    const unchecked = accepted(await send('off', bad));
    assert.equal((await relay.api('GET', `/api/v1/app/${sources.off.appId}/msg/${unchecked}`)).body.tags, null);
  });
});
