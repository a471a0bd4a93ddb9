import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import type { Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { assertErrorBody, assertValidation } from '../api/support.js';
import { httpRequest, openSocket, rawHttp, readResponse, type RawResponse } from '../helpers/raw-http.js';
import { ADMIN_TOKEN, startRelay, type ApiResponse, type TestRelay } from '../helpers/relay.js';

const json = { 'content-type': 'application/json' };
const nested = (depth: number, inner = '1') => '['.repeat(depth) + inner + ']'.repeat(depth);

/** Streams body bytes (chunked when `head` says so) until the server closes the socket or `maxBytes` were sent; resolves with the answer and the bytes sent. */
async function flood(socket: Socket, head: string, maxBytes: number): Promise<{ response: RawResponse; sent: number }> {
  const response = readResponse(socket, { timeoutMs: 15_000 });
  socket.write(head);
  const chunk = Buffer.alloc(16 * 1024, 'a');
  const framed = /transfer-encoding: chunked/.test(head) ? Buffer.concat([Buffer.from(chunk.length.toString(16) + '\r\n'), chunk, Buffer.from('\r\n')]) : chunk;
  let sent = 0;
  while (!socket.destroyed && sent < maxBytes) {
    const flushed = socket.write(framed);
    sent += chunk.length;
    if (!flushed) await new Promise((resolve) => setTimeout(resolve, 5));
    else await new Promise((resolve) => setImmediate(resolve));
  }
  return { response: await response, sent };
}

describe('request bodies', () => {
  let relay: TestRelay;
  let appId: string;

  before(async () => {
    relay = await startRelay({ maxPayloadBytes: '65536' });
    appId = (await relay.api('POST', '/api/v1/app', { name: 'bodies' })).body.id;
  });
  after(() => relay.close());

  const messageCount = async () => (await relay.api('GET', `/api/v1/app/${appId}/msg?limit=250`)).body.data.length;
  const send = (method: string, path: string, rawBody: string | Buffer, headers: Record<string, string> = json) => relay.api(method, path, undefined, { rawBody, headers });
  const refused = (response: ApiResponse, status: number, code: string) => {
    assert.equal(response.status, status, response.text);
    assertErrorBody(response.body, code);
  };

  it('refuses JSON nested 10,000 levels deep with 400 json_too_deep on every JSON route, storing nothing (was a 500)', async () => {
    const before = await messageCount();
    const deep = nested(10_000);
    const cases: [string, string, string][] = [
      ['POST', `/api/v1/app/${appId}/msg`, `{"eventType":"deep","payload":{"a":${deep}}}`],
      ['POST', '/api/v1/event-type', `{"name":"deep","description":"d","schemas":{"1":${deep}}}`],
      ['POST', `/api/v1/app/${appId}/endpoint`, `{"destination":{"type":"temporal","x":${deep}}}`],
      ['PATCH', `/api/v1/app/${appId}`, `{"metadata":${deep}}`],
      ['POST', '/ingest/api/v1/source', `{"name":"deep","type":"github","config":{"secret":${deep}}}`],
      ['POST', '/api/v1/app', nested(30_000, '{}')],
    ];
    for (const [method, path, body] of cases) {
      const response = await send(method, path, body);
      refused(response, 400, 'json_too_deep');
      assert.match(response.body.detail, /64 levels/);
    }
    assert.equal(await messageCount(), before);
    assert.equal((await relay.api('GET', '/api/v1/event-type/deep')).status, 404);
    assert.equal((await relay.api('GET', '/healthz')).status, 200);
  });

  it('accepts 64 levels and returns the payload exactly; 65 is refused', async () => {
    // The body object and the payload object are two of the levels.
    const fits = `{"eventType":"deep.ok","payload":{"a":${nested(62, '"leaf"')}}}`;
    const accepted = await send('POST', `/api/v1/app/${appId}/msg`, fits);
    assert.equal(accepted.status, 202, accepted.text);
    const stored = await relay.api('GET', `/api/v1/app/${appId}/msg/${accepted.body.id}`);
    assert.deepEqual(stored.body.payload, JSON.parse(fits).payload);
    refused(await send('POST', `/api/v1/app/${appId}/msg`, `{"eventType":"deep.ok","payload":{"a":${nested(63, '"leaf"')}}}`), 400, 'json_too_deep');
  });

  it('counts brackets inside strings as text, not nesting', async () => {
    const payload = { text: '[[[[{{{{'.repeat(100), quote: '\\"[[[[' };
    const response = await relay.api('POST', `/api/v1/app/${appId}/msg`, { eventType: 'brackets', payload });
    assert.equal(response.status, 202, response.text);
    assert.deepEqual(response.body.payload, payload);
  });

  it('keeps "__proto__" and "constructor" keys of a message payload as sent (zod dropped "__proto__")', async () => {
    const text = '{"eventType":"proto","payload":{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}},"n":1}}';
    const response = await send('POST', `/api/v1/app/${appId}/msg`, text);
    assert.equal(response.status, 202, response.text);
    const stored = await relay.api('GET', `/api/v1/app/${appId}/msg/${response.body.id}`);
    assert.equal(JSON.stringify(stored.body.payload), JSON.stringify(JSON.parse(text).payload));
    assert.match(stored.text, /"__proto__":\{"polluted":true\}/);
    assert.equal(({} as { polluted?: boolean }).polluted, undefined);
  });

  it('refuses "__proto__" as a key everywhere else with 422', async () => {
    const cases: [string, string, string, (string | number)[]][] = [
      ['POST', '/api/v1/app', '{"name":"p","metadata":{"__proto__":"x"}}', ['body', 'metadata', '__proto__']],
      ['POST', '/api/v1/app', '{"__proto__":{"name":"p"}}', ['body', '__proto__']],
      ['POST', '/ingest/api/v1/source', '{"name":"p","type":"github","config":{"__proto__":{"secret":"s"}}}', ['body', 'config', '__proto__']],
    ];
    for (const [method, path, body, loc] of cases) {
      const response = await send(method, path, body);
      assert.equal(response.status, 422, response.text);
      assertValidation(response.body, loc);
    }
  });

  it('refuses numbers beyond a 64-bit double with 400 instead of storing them as null', async () => {
    for (const number of ['1e999', '-1e999', '1' + '0'.repeat(400)]) {
      const response = await send('POST', `/api/v1/app/${appId}/msg`, `{"eventType":"big","payload":{"n":${number}}}`);
      refused(response, 400, 'invalid_json');
      assert.match(response.body.detail, /too large/);
    }
    const fine = await send('POST', `/api/v1/app/${appId}/msg`, '{"eventType":"big","payload":{"n":1e308,"m":123456789012345678901234567890,"e":"1e999"}}');
    assert.equal(fine.status, 202, fine.text);
    assert.deepEqual(fine.body.payload, { n: 1e308, m: 123456789012345678901234567890, e: '1e999' });
  });

  it('refuses a body that is not UTF-8 with 400 (it was decoded with replacement characters) and other charsets with 415', async () => {
    const latin1 = Buffer.from('{"name":"caf\xe9"}', 'latin1');
    refused(await send('POST', '/api/v1/app', latin1), 400, 'invalid_json');
    refused(await send('POST', '/api/v1/app', latin1, { 'content-type': 'application/json; charset=iso-8859-1' }), 415, 'unsupported_media_type');
    refused(await send('POST', '/api/v1/app', Buffer.from('\ufeff{"name":"x"}', 'utf16le'), { 'content-type': 'application/json; charset=utf-16' }), 415, 'unsupported_media_type');
    const utf8 = await send('POST', '/api/v1/app', Buffer.from('{"name":"café ✓"}'), { 'content-type': 'application/json; charset=UTF-8' });
    assert.equal(utf8.status, 201, utf8.text);
    assert.equal(utf8.body.name, 'café ✓');
  });

  it('refuses NUL and unpaired surrogates in stored text with 422, naming the field (PostgreSQL answered 500)', async () => {
    const endpointPath = `/api/v1/app/${appId}/endpoint`;
    const cases: [string, string, unknown, (string | number)[]][] = [
      ['POST', '/api/v1/app', { name: 'a\u0000b' }, ['body', 'name']],
      ['POST', '/api/v1/app', { name: 'ok', metadata: { 'k\u0000': 'v' } }, ['body', 'metadata', 'k\u0000']],
      ['POST', '/api/v1/app', { name: 'ok', metadata: { k: '\ud800' } }, ['body', 'metadata', 'k']],
      ['POST', endpointPath, { url: 'https://example.com/x', description: 'd\u0000' }, ['body', 'description']],
      ['POST', '/api/v1/event-type', { name: 'nul', description: 'd', schemas: { 1: { title: '\udc00' } } }, ['body', 'schemas', '1', 'title']],
      ['POST', '/ingest/api/v1/source', { name: 's', type: 'github', config: { secret: 'a\u0000b' } }, ['body', 'config', 'secret']],
    ];
    for (const [method, path, body, loc] of cases) {
      const response = await relay.api(method, path, body);
      assert.equal(response.status, 422, `${method} ${path}: ${response.text}`);
      assertValidation(response.body, loc);
    }
    const query = await relay.api('GET', `/api/v1/app/${appId}/msg?channel=a%00b`);
    assert.equal(query.status, 422, query.text);
    assertValidation(query.body, ['query', 'channel']);
    for (const path of ['/api/v1/app/a%00b', `/api/v1/app/${appId}/msg/m%00`, '/ingest/api/v1/source/%00']) refused(await relay.api('GET', path), 404, 'not_found');
    refused(await relay.api('POST', '/ingest/tok%00en', {}), 404, 'not_found');
  });

  it('keeps NUL and unpaired surrogates inside a message payload, which is stored as bytes', async () => {
    const payload = { 'k\u0000': 'v\u0000', lone: '\ud800' };
    const response = await relay.api('POST', `/api/v1/app/${appId}/msg`, { eventType: 'nul.payload', payload });
    assert.equal(response.status, 202, response.text);
    assert.deepEqual((await relay.api('GET', `/api/v1/app/${appId}/msg/${response.body.id}`)).body.payload, payload);
  });

  it('accepts a signed ingest request whatever its content-type, even a malformed one, and keeps it (Fastify answered 415)', async () => {
    const source = await relay.api('POST', '/ingest/api/v1/source', { name: 'types', type: 'github', config: { secret: 'types-secret' } });
    for (const contentType of ['', ';;;', 'json', 'a/b/c', 'text/plain; charset=ÿ']) {
      const body = `{"contentType":${JSON.stringify(contentType)}}`;
      const signature = 'sha256=' + createHmac('sha256', 'types-secret').update(body).digest('hex');
      const response = await rawHttp(relay.url, httpRequest('POST', new URL(source.body.ingestUrl).pathname, [['content-type', contentType], ['x-hub-signature-256', signature]], body));
      assert.equal(response.status, 200, `${JSON.stringify(contentType)}: ${response.text}`);
      const message = await relay.api('GET', `/api/v1/app/${source.body.appId}/msg/${response.body.id}`);
      // A body that is not declared JSON comes back as text.
      const payload = message.body.payload;
      assert.equal(typeof payload === 'string' ? payload : JSON.stringify(payload), body);
    }
  });

  it('answers an endless chunked API body with 413 and closes the connection instead of reading on', async () => {
    const socket = await openSocket(relay.url);
    const head = `POST /api/v1/app/${appId}/msg HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${ADMIN_TOKEN}\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n`;
    const { response, sent } = await flood(socket, head, 200 * 1024 * 1024);
    assert.equal(response.status, 413, response.text || response.error || 'no answer');
    assert.equal(response.body.code, 'payload_too_large');
    assert.ok(response.closed);
    assert.ok(sent < 50 * 1024 * 1024, `the server kept reading: ${sent} bytes sent`);
  });

  it('answers an oversized ingest body, chunked or with a content-length, with 413 and closes the connection instead of draining it', async () => {
    const source = await relay.api('POST', '/ingest/api/v1/source', { name: 'flood', type: 'github', config: { secret: 's3cret', maxBodyBytes: 4096 } });
    const path = new URL(source.body.ingestUrl).pathname;
    for (const framing of ['transfer-encoding: chunked', `content-length: ${200 * 1024 * 1024}`]) {
      const socket = await openSocket(relay.url);
      const { response, sent } = await flood(socket, `POST ${path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n${framing}\r\n\r\n`, 200 * 1024 * 1024);
      assert.equal(response.status, 413, `${framing}: ${response.text || response.error || 'no answer'}`);
      assert.equal(response.body.code, 'payload_too_large');
      assert.match(response.body.detail, /4096/);
      assert.ok(response.closed);
      assert.ok(sent < 50 * 1024 * 1024, `${framing}: the server kept reading: ${sent} bytes sent`);
    }
  });
});

describe('field limits', () => {
  let relay: TestRelay;
  let appId: string;
  let endpointId: string;

  before(async () => {
    relay = await startRelay();
    appId = (await relay.api('POST', '/api/v1/app', { name: 'fields' })).body.id;
    endpointId = (await relay.api('POST', `/api/v1/app/${appId}/endpoint`, { url: 'https://example.com/hook', disabled: true })).body.id;
  });
  after(() => relay.close());

  const invalidAt = async (method: string, path: string, body: unknown, loc: (string | number)[]) => {
    const response = await relay.api(method, path, body);
    assert.equal(response.status, 422, `${method} ${path}: ${response.text}`);
    assertValidation(response.body, loc);
  };

  it('limits an endpoint URL to 2048 characters', async () => {
    const url = (length: number) => 'https://example.com/' + 'a'.repeat(length - 'https://example.com/'.length);
    const fits = await relay.api('POST', `/api/v1/app/${appId}/endpoint`, { url: url(2048), disabled: true });
    assert.equal(fits.status, 201, fits.text);
    await invalidAt('POST', `/api/v1/app/${appId}/endpoint`, { url: url(2049) }, ['body', 'url']);
    await invalidAt('PATCH', `/api/v1/app/${appId}/endpoint/${endpointId}`, { url: url(70_000) }, ['body', 'url']);
  });

  it('limits metadata to 100 keys, 256-character keys, 4096-character values and 16 KiB, on apps, endpoints and sources', async () => {
    const keys = (count: number, value = 'v') => Object.fromEntries(Array.from({ length: count }, (_, i) => [`k${i}`, value]));
    const ok = await relay.api('PATCH', `/api/v1/app/${appId}`, { metadata: keys(100) });
    assert.equal(ok.status, 200, ok.text);
    await invalidAt('PATCH', `/api/v1/app/${appId}`, { metadata: keys(101) }, ['body', 'metadata']);
    await invalidAt('PATCH', `/api/v1/app/${appId}`, { metadata: { ['k'.repeat(257)]: 'v' } }, ['body', 'metadata', 'k'.repeat(257)]);
    await invalidAt('PATCH', `/api/v1/app/${appId}`, { metadata: { k: 'v'.repeat(4097) } }, ['body', 'metadata', 'k']);
    await invalidAt('PATCH', `/api/v1/app/${appId}`, { metadata: keys(5, 'v'.repeat(4000)) }, ['body', 'metadata']);
    await invalidAt('PATCH', `/api/v1/app/${appId}/endpoint/${endpointId}`, { metadata: keys(101) }, ['body', 'metadata']);
    await invalidAt('POST', '/ingest/api/v1/source', { name: 's', type: 'github', config: { secret: 's' }, metadata: keys(101) }, ['body', 'metadata']);
    assert.equal(Object.keys((await relay.api('GET', `/api/v1/app/${appId}`)).body.metadata).length, 100);
  });

  it('limits custom headers to 50 and 16 KiB, also once a PATCH merges them (a PATCH could grow them without bound)', async () => {
    const set = (count: number, prefix: string, value = 'v') => Object.fromEntries(Array.from({ length: count }, (_, i) => [`x-${prefix}-${i}`, value]));
    const path = `/api/v1/app/${appId}/endpoint/${endpointId}/headers`;
    await invalidAt('PUT', path, { headers: set(51, 'a') }, ['body', 'headers']);
    await invalidAt('PUT', path, { headers: set(5, 'a', 'v'.repeat(4000)) }, ['body', 'headers']);
    // What an HTTP client cannot send would fail every delivery later (undici refuses it), so it is refused now.
    for (const value of ['a\u0001b', 'check ✓', 'line\nbreak']) await invalidAt('PUT', path, { headers: { 'x-a': value } }, ['body', 'headers', 'x-a']);
    assert.equal((await relay.api('PUT', path, { headers: { 'x-latin1': 'café\tok' } })).status, 204);
    assert.equal((await relay.api('PUT', path, { headers: set(30, 'a') })).status, 204);
    await invalidAt('PATCH', path, { headers: set(30, 'b') }, ['body', 'headers']);
    await invalidAt('PATCH', path, { headers: {}, deleteHeaders: Array.from({ length: 101 }, (_, i) => `x-${i}`) }, ['body', 'deleteHeaders']);
    assert.equal(Object.keys((await relay.api('GET', path)).body.headers).length, 30);
    // Replacing within the limit is fine: deleting ten and adding twenty leaves fifty.
    const deleteHeaders = Object.keys(set(10, 'a'));
    assert.equal((await relay.api('PATCH', path, { headers: set(20, 'b'), deleteHeaders })).status, 204);
    assert.equal(Object.keys((await relay.api('GET', path)).body.headers).length, 40);
  });

  it('limits list filters in query strings', async () => {
    const many = Array.from({ length: 101 }, (_, i) => `t${i}`).join(',');
    for (const query of [`event_types=${many}`, `channel=${'c'.repeat(257)}`, `tag=${'t'.repeat(257)}`]) {
      const response = await relay.api('GET', `/api/v1/app/${appId}/msg?${query}`);
      assert.equal(response.status, 422, response.text);
    }
    assert.equal((await relay.api('GET', `/api/v1/app/${appId}/msg?event_types=${many.split(',').slice(0, 100).join(',')}`)).status, 200);
  });
});
