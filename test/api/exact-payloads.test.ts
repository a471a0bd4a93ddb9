import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Webhook } from 'standardwebhooks';
import { memberSpan } from '../../src/domain/json-text.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { startRelay, type TestRelay } from '../helpers/relay.js';
import { waitUntil } from '../helpers/wait.js';

/** The payload text a JSON answer carries, cut out of the answer's bytes (parsing it would round big integers). */
function payloadText(answer: string): string {
  const bytes = Buffer.from(answer);
  const span = memberSpan(bytes, 'payload');
  assert.ok(span, `no payload in ${answer.slice(0, 200)}`);
  return bytes.subarray(span.start, span.end).toString('utf8');
}

// Each one changes if it goes through JS numbers or JSON.stringify on its way.
const PAYLOADS: Record<string, string> = {
  'integers beyond 2^53 (Shopify, Discord snowflakes)': '{"id":820982911946154508,"order_id":12345678901234567890,"neg":-9007199254740993}',
  'floats as written': '{"f":1.0,"z":-0,"e":1E+2,"small":0.10000000000000000555,"exp":6.02e23}',
  'escapes kept as escapes': '{"s":"caf\\u00e9 \\u2028 \\/ \\"q\\" \\ud83c\\udf89","t":"\\t"}',
  'unicode as bytes': '{"name":"Zoë 日本語 🎉","rtl":"עברית"}',
  'whitespace and key order': '{ "b" : 2 ,\n\t"a":[ 1 , 2 ],  "c" : { } }',
  'repeated keys and __proto__': '{"a":1,"a":2,"__proto__":{"polluted":true}}',
};

describe('message payloads are kept and delivered byte for byte', () => {
  let relay: TestRelay;
  let receiver: Receiver;
  let appId: string;
  let secret: string;

  before(async () => {
    [relay, receiver] = await Promise.all([startRelay({ maxPayloadBytes: String(2 * 1024 * 1024) }), startReceiver()]);
    appId = (await relay.api('POST', '/api/v1/app', { name: 'exact' })).body.id;
    const endpoint = await relay.api('POST', `/api/v1/app/${appId}/endpoint`, { url: receiver.url });
    assert.equal(endpoint.status, 201, endpoint.text);
    secret = (await relay.api('GET', `/api/v1/app/${appId}/endpoint/${endpoint.body.id}/secret`)).body.key;
  });
  after(async () => {
    await relay?.close();
    await receiver?.close();
  });

  async function roundTrip(payload: string) {
    const body = `{"eventType":"exact.test","payload":${payload},"tags":["t"]}`;
    const created = await relay.api('POST', `/api/v1/app/${appId}/msg`, undefined, { rawBody: body, headers: { 'content-type': 'application/json' } });
    assert.equal(created.status, 202, created.text.slice(0, 300));
    assert.equal(payloadText(created.text), payload, '202 answer');
    const id = created.body.id as string;

    const got = await relay.api('GET', `/api/v1/app/${appId}/msg/${id}`);
    assert.equal(payloadText(got.text), payload, 'GET message');
    const list = await relay.api('GET', `/api/v1/app/${appId}/msg?limit=1`);
    assert.equal(list.body.data[0].id, id);
    assert.equal(payloadText(list.text.slice(list.text.indexOf('{', 1))), payload, 'message list');

    const delivered = (await waitUntil(`delivery of ${id}`, () => receiver.received.find((r) => r.headers['webhook-id'] === id) ?? null))!;
    assert.ok(delivered.body.equals(Buffer.from(payload)), 'the receiver got other bytes than were sent');
    // The official library verifies the signature over the bytes received.
    new Webhook(secret).verify(delivered.body.toString('utf8'), delivered.headers as Record<string, string>);
    return id;
  }

  for (const [name, payload] of Object.entries(PAYLOADS)) {
    it(name, async () => {
      await roundTrip(payload);
    });
  }

  it('a 900 kB payload', async () => {
    const items = Array.from({ length: 9000 }, (_, i) => `{"n":${9007199254740993n + BigInt(i)},"v":${i}.50,"s":"é${'x'.repeat(60)}"}`);
    const payload = `{"items":[${items.join(',\n ')}]}`;
    assert.ok(payload.length > 900_000);
    await roundTrip(payload);
  });

  it('the attempts views and the endpoint message view keep the payload too', async () => {
    const payload = PAYLOADS['integers beyond 2^53 (Shopify, Discord snowflakes)'];
    const id = await roundTrip(payload);
    const endpointId = (await relay.api('GET', `/api/v1/app/${appId}/endpoint`)).body.data[0].id;
    const view = await relay.api('GET', `/api/v1/app/${appId}/endpoint/${endpointId}/msg?limit=1&with_content=true`);
    assert.equal(view.status, 200, view.text);
    assert.equal(view.body.data[0].id, id);
    assert.equal(payloadText(view.text.slice(view.text.indexOf('{', 1))), payload);
  });

  it('a retried request with the same idempotency key answers the same bytes', async () => {
    const payload = '{"id":820982911946154508}';
    const send = () =>
      relay.api('POST', `/api/v1/app/${appId}/msg`, undefined, {
        rawBody: `{"eventType":"exact.test","payload":${payload}}`,
        headers: { 'content-type': 'application/json', 'idempotency-key': 'exact-retry-1' },
      });
    const first = await send();
    const second = await send();
    assert.equal(first.status, 202);
    assert.equal(second.body.id, first.body.id);
    assert.equal(payloadText(second.text), payload);
  });
});
