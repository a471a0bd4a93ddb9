import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ApiException, Svix } from 'svix';
import type { ApiResponse, TestRelay } from '../helpers/relay.js';
import { startRelay } from '../helpers/relay.js';
import { assertErrorBody, assertValidation, collectPages, rejectsWith } from './support.js';

type Init = Parameters<TestRelay['api']>[3];

describe('bad input is refused with a JSON 4xx and changes nothing', () => {
  let relay: TestRelay;
  let appId: string;
  let endpointId: string;
  let messageId: string;

  before(async () => {
    relay = await startRelay({ maxPayloadBytes: '2048' });
    appId = (await relay.svix.application.create({ name: 'errors', uid: 'errors-app' })).id;
    endpointId = (await relay.svix.endpoint.create(appId, { url: 'http://127.0.0.1:9/never', uid: 'errors-ep', disabled: true, headers: { 'X-A': 'a' } })).id;
    messageId = (await relay.svix.message.create(appId, { eventType: 'seed.event', payload: { seed: true } })).id;
    await relay.svix.eventType.create({ name: 'seed.event', description: 'seed' });
  });
  after(() => relay.close());

  /** Everything a rejected write could have touched. */
  async function state() {
    const all = <T>(list: (iterator: string | null) => Promise<{ data: T[]; iterator?: string | null; done: boolean }>) =>
      collectPages(list).then((p) => p.items);
    const apps = await all((iterator) => relay.svix.application.list({ limit: 250, iterator }));
    return {
      apps,
      eventTypes: await all((iterator) => relay.svix.eventType.list({ limit: 250, iterator, includeArchived: true, withContent: true })),
      endpoints: await all((iterator) => relay.svix.endpoint.list(appId, { limit: 250, iterator })),
      secret: await relay.svix.endpoint.getSecret(appId, endpointId),
      headers: await relay.svix.endpoint.getHeaders(appId, endpointId),
      messages: await all((iterator) => relay.svix.message.list(appId, { limit: 250, iterator })),
      otherAppMessages: (await Promise.all(apps.filter((a) => a.id !== appId).map((a) => relay.svix.message.list(a.id)))).flatMap((p) => p.data),
    };
  }

  /** Asserts a JSON error with a 4xx status and the documented shape. */
  function assertError(response: ApiResponse, status: number, code: string): void {
    assert.equal(response.status, status, `${status} expected, got ${response.status}: ${response.text}`);
    assert.match(response.headers.get('content-type') ?? '', /^application\/json/);
    if (status === 422) assert.ok(Array.isArray(response.body.detail), response.text);
    else assertErrorBody(response.body, code);
  }

  /** Sends a write that must be refused, and checks that nothing changed. */
  async function refused(method: string, path: string, body: unknown, status: number, code: string, init?: Init): Promise<ApiResponse> {
    const before = await state();
    const response = await relay.api(method, path, body, init);
    assertError(response, status, code);
    assert.deepEqual(await state(), before, `${method} ${path} changed state although it was refused`);
    return response;
  }

  const json = { 'content-type': 'application/json' };

  it('answers malformed JSON with 400 invalid_json', async () => {
    await refused('POST', '/api/v1/app', undefined, 400, 'invalid_json', { rawBody: '{"name": "x",', headers: json });
    await refused('POST', `/api/v1/app/${appId}/msg`, undefined, 400, 'invalid_json', { rawBody: "{'eventType': 'a'}", headers: json });
    await refused('PUT', `/api/v1/app/${appId}/endpoint/${endpointId}`, undefined, 400, 'invalid_json', { rawBody: 'nul', headers: json });
  });

  it('answers wrong types and missing fields with 422 pointing at the field', async () => {
    const at = async (method: string, path: string, body: unknown, loc: (string | number)[]) =>
      assertValidation((await refused(method, path, body, 422, 'validation')).body, loc);
    await at('POST', '/api/v1/app', { name: 5 }, ['body', 'name']);
    await at('POST', '/api/v1/app', {}, ['body', 'name']);
    await at('POST', '/api/v1/app', { name: 'ok', metadata: { k: 1 } }, ['body', 'metadata', 'k']);
    await at('PATCH', `/api/v1/app/${appId}`, { uid: 'app_reserved' }, ['body', 'uid']);
    await at('POST', '/api/v1/event-type', { name: 'x.y' }, ['body', 'description']);
    await at('POST', '/api/v1/event-type', { name: 'has space', description: '' }, ['body', 'name']);
    await at('POST', `/api/v1/app/${appId}/msg`, { payload: {} }, ['body', 'eventType']);
    await at('POST', `/api/v1/app/${appId}/msg`, { eventType: 'a.b' }, ['body', 'payload']);
    await at('POST', `/api/v1/app/${appId}/msg`, { eventType: 'a.b', payload: {}, channels: 'eu' }, ['body', 'channels']);
    await at('POST', `/api/v1/app/${appId}/endpoint`, { url: 'https://example.com', filterTypes: 'a.b' }, ['body', 'filterTypes']);
    await at('POST', `/api/v1/app/${appId}/endpoint`, { url: 'https://example.com', disabled: 'yes' }, ['body', 'disabled']);
    await at('POST', `/api/v1/app/${appId}/endpoint/${endpointId}/recover`, { since: 'yesterday' }, ['body', 'since']);
    await at('PUT', `/api/v1/app/${appId}/endpoint/${endpointId}/headers`, { headers: { 'bad header': 'x' } }, ['body', 'headers', 'bad header']);

    const query = await relay.api('GET', `/api/v1/app/${appId}/msg?limit=abc`);
    assertError(query, 422, 'validation');
    assertValidation(query.body, ['query', 'limit']);
    assertValidation((await relay.api('GET', `/api/v1/app?limit=100000`)).body, ['query', 'limit']);

    // The SDK surfaces the same body through ApiException.
    const body = await rejectsWith(relay.svix.application.create({ name: '' }), 422);
    assertValidation(body, ['body', 'name']);
  });

  it('refuses an invalid endpoint URL or secret with 422', async () => {
    for (const url of ['not a url', 'ftp://example.com/x', '/relative/path', 'http://', '']) {
      assertValidation((await refused('POST', `/api/v1/app/${appId}/endpoint`, { url }, 422, 'validation')).body, ['body', 'url']);
    }
    assertValidation((await refused('PUT', `/api/v1/app/${appId}/endpoint/${endpointId}`, { url: 'mailto:a@b.c' }, 422, 'validation')).body, ['body', 'url']);
    for (const secret of ['short', 'whsec_' + 'A'.repeat(10), 'whsec_not*base64*at*all*but*long*enough*xx', 'A'.repeat(200)]) {
      assertValidation(
        (await refused('POST', `/api/v1/app/${appId}/endpoint`, { url: 'https://example.com', secret }, 422, 'validation')).body,
        ['body', 'secret'],
      );
    }
    assertValidation((await refused('PATCH', `/api/v1/app/${appId}/endpoint/${endpointId}`, { secret: 'nope' }, 422, 'validation')).body, ['body', 'secret']);
    assertValidation((await refused('POST', `/api/v1/app/${appId}/endpoint/${endpointId}/secret/rotate`, { key: 'nope' }, 422, 'validation')).body, ['body', 'key']);
    const body = await rejectsWith(relay.svix.endpoint.create(appId, { url: 'nope' }), 422);
    assertValidation(body, ['body', 'url']);
  });

  it('answers unknown app, endpoint, message and attempt ids with 404 not_found', async () => {
    for (const path of [
      '/api/v1/app/app_unknown',
      '/api/v1/app/unknown-uid/endpoint',
      `/api/v1/app/${appId}/endpoint/ep_unknown`,
      `/api/v1/app/${appId}/endpoint/ep_unknown/secret`,
      `/api/v1/app/${appId}/msg/msg_unknown`,
      `/api/v1/app/${appId}/attempt/endpoint/ep_unknown`,
      `/api/v1/app/${appId}/attempt/msg/msg_unknown`,
      `/api/v1/app/${appId}/msg/${messageId}/attempt/atmpt_unknown`,
      `/api/v1/app/${appId}/msg/msg_unknown/endpoint`,
      '/api/v1/event-type/unknown.type',
    ]) {
      assertError(await relay.api('GET', path), 404, 'not_found');
    }
    await refused('POST', '/api/v1/app/app_unknown/msg', { eventType: 'a', payload: {} }, 404, 'not_found');
    await refused('POST', `/api/v1/app/${appId}/endpoint/ep_unknown/recover`, { since: new Date(0).toISOString() }, 404, 'not_found');
    await refused('POST', `/api/v1/app/${appId}/msg/${messageId}/endpoint/ep_unknown/resend`, undefined, 404, 'not_found');
    await refused('DELETE', `/api/v1/app/${appId}/endpoint/ep_unknown`, undefined, 404, 'not_found');
    await refused('PATCH', `/api/v1/app/${appId}/endpoint/ep_unknown`, { description: 'x' }, 404, 'not_found');
    await refused('DELETE', '/api/v1/app/app_unknown', undefined, 404, 'not_found');
    assertErrorBody(await rejectsWith(relay.svix.endpoint.get(appId, 'ep_unknown'), 404), 'not_found');
  });

  it('refuses a body over --max-payload-bytes with 413 and stores nothing', async () => {
    const big = { eventType: 'big.event', payload: { blob: 'x'.repeat(3000) } };
    const response = await refused('POST', `/api/v1/app/${appId}/msg`, big, 413, 'payload_too_large');
    assert.match(response.body.detail, /2048/);
    const body = await rejectsWith(relay.svix.message.create(appId, big), 413);
    assertErrorBody(body, 'payload_too_large');
    assert.ok(!(await relay.svix.message.list(appId, { eventTypes: ['big.event'] })).data.length);

    // Just under the limit is accepted.
    const fits = await relay.svix.message.create(appId, { eventType: 'fits.event', payload: { blob: 'x'.repeat(1500) } });
    assert.equal(((await relay.svix.message.get(appId, fits.id, { withContent: true })).payload as { blob: string }).blob.length, 1500);
  });

  it('refuses a missing or wrong token with 401 unauthorized', async () => {
    for (const token of [null, 'wrong_token_0123456789abcdef', '']) {
      assertError(await relay.api('GET', '/api/v1/app', undefined, { token }), 401, 'unauthorized');
      await refused('POST', '/api/v1/app', { name: 'sneaky' }, 401, 'unauthorized', { token });
      await refused('POST', `/api/v1/app/${appId}/msg`, { eventType: 'a', payload: {} }, 401, 'unauthorized', { token });
    }
    assertError(
      await relay.api('GET', '/api/v1/app', undefined, { token: null, headers: { authorization: `Basic ${Buffer.from(`u:${relay.adminToken}`).toString('base64')}` } }),
      401,
      'unauthorized',
    );
    const stranger = new Svix('wrong_token_0123456789abcdef', { serverUrl: relay.url });
    const body = await rejectsWith(stranger.application.list(), 401);
    assertErrorBody(body, 'unauthorized');
  });

  it('refuses a body that is not JSON with 415', async () => {
    await refused('POST', '/api/v1/app', undefined, 415, 'unsupported_media_type', { rawBody: '{"name":"x"}', headers: { 'content-type': 'text/plain' } });
    await refused('POST', `/api/v1/app/${appId}/msg`, undefined, 415, 'unsupported_media_type', {
      rawBody: 'eventType=a&payload=b',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    await refused('PUT', `/api/v1/app/${appId}`, undefined, 415, 'unsupported_media_type', { rawBody: '<app/>', headers: { 'content-type': 'application/xml' } });
  });

  it('answers an unknown route with a JSON 404', async () => {
    for (const [method, path] of [
      ['GET', '/api/v1/nothing-here'],
      ['GET', '/api/v2/app'],
      ['POST', `/api/v1/app/${appId}/msg/${messageId}/teleport`],
      ['PATCH', '/api/v1/app'],
    ]) {
      const response = await relay.api(method, path, method === 'GET' ? undefined : {});
      assertError(response, 404, 'not_found');
    }
  });

  it('never answers bad input with a 5xx', async () => {
    const probes: [string, string, Init][] = [
      ['POST', '/api/v1/app', { rawBody: '[]', headers: json }],
      ['POST', '/api/v1/app', { rawBody: 'null', headers: json }],
      ['POST', '/api/v1/app', { rawBody: '"name"', headers: json }],
      ['POST', '/api/v1/app', { rawBody: '', headers: json }],
      ['POST', `/api/v1/app/${appId}/msg`, { rawBody: '{"eventType":"a","payload":[1,2]}', headers: json }],
      ['POST', `/api/v1/app/${appId}/msg`, { rawBody: '{"eventType":"a","payload":{}}', headers: { ...json, 'idempotency-key': 'x'.repeat(300) } }],
      ['POST', `/api/v1/app/${appId}/endpoint`, { rawBody: '{"url":"https://example.com","secret":null,"headers":{"x":1}}', headers: json }],
      ['GET', `/api/v1/app/${appId}/msg?before=not-a-date`, {}],
      ['GET', `/api/v1/app/${appId}/msg?iterator=${'z'.repeat(600)}`, {}],
      ['GET', `/api/v1/app/${appId}/attempt/endpoint/${endpointId}?status=9`, {}],
      ['GET', `/api/v1/app/${encodeURIComponent('../../etc/passwd')}`, {}],
      ['GET', `/api/v1/event-type/${encodeURIComponent('a b/c')}`, {}],
    ];
    const before = await state();
    for (const [method, path, init] of probes) {
      const response = await relay.api(method, path, undefined, init);
      assert.ok(response.status >= 400 && response.status < 500, `${method} ${path} → ${response.status} ${response.text}`);
      assert.equal(typeof response.body, 'object', `${method} ${path} answered non-JSON: ${response.text}`);
      assert.ok(response.status === 422 ? Array.isArray(response.body.detail) : typeof response.body.code === 'string', response.text);
    }
    assert.deepEqual(await state(), before);
    // The SDK gets ApiException (not a SyntaxError) for every one of these shapes.
    await assert.rejects(relay.svix.message.create(appId, { eventType: 'bad name!', payload: {} }), ApiException);
  });
});
