import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startRelay, type TestRelay } from '../helpers/relay.js';
import { assertErrorBody, assertValidation } from './support.js';

/** Cases the property-based fuzz tests (test/fuzz) found, kept as plain tests named after them. */
describe('fuzz regressions', () => {
  let relay: TestRelay;
  let appId: string;

  before(async () => {
    relay = await startRelay();
    appId = (await relay.api('POST', '/api/v1/app', { name: 'regressions' })).body.id;
  });
  after(() => relay.close());

  const secretOf = async (endpointId: string) => (await relay.api('GET', `/api/v1/app/${appId}/endpoint/${endpointId}/secret`)).body.key as string;

  it('PATCH endpoint {"destination":{"type":"temporal"},"secret":…} is refused without rotating the secret', async () => {
    const endpoint = (await relay.api('POST', `/api/v1/app/${appId}/endpoint`, { url: 'https://example.com/a', disabled: true })).body;
    const before = await secretOf(endpoint.id);
    const response = await relay.api('PATCH', `/api/v1/app/${appId}/endpoint/${endpoint.id}`, { destination: { type: 'temporal' }, secret: 'whsec_YhQH1k1ss6p+jHktOK0Cwfx1mR6ewHSj' });
    assert.equal(response.status, 422, response.text);
    assertValidation(response.body, ['body', 'destination', 'address']);
    assert.equal(await secretOf(endpoint.id), before);
  });

  it('PATCH endpoint {"uid": <taken>, "secret": …} is refused with 409 without rotating the secret', async () => {
    await relay.api('POST', `/api/v1/app/${appId}/endpoint`, { url: 'https://example.com/b', uid: 'taken', disabled: true });
    const endpoint = (await relay.api('POST', `/api/v1/app/${appId}/endpoint`, { url: 'https://example.com/c', disabled: true })).body;
    const before = await secretOf(endpoint.id);
    const response = await relay.api('PATCH', `/api/v1/app/${appId}/endpoint/${endpoint.id}`, { uid: 'taken', secret: 'whsec_YhQH1k1ss6p+jHktOK0Cwfx1mR6ewHSj' });
    assert.equal(response.status, 409, response.text);
    assertErrorBody(response.body, 'conflict');
    assert.equal(await secretOf(endpoint.id), before);
    // Without the conflict the same patch rotates.
    assert.equal((await relay.api('PATCH', `/api/v1/app/${appId}/endpoint/${endpoint.id}`, { secret: 'whsec_YhQH1k1ss6p+jHktOK0Cwfx1mR6ewHSj' })).status, 200);
    assert.equal(await secretOf(endpoint.id), 'whsec_YhQH1k1ss6p+jHktOK0Cwfx1mR6ewHSj');
  });

  it('a message ingested as JSON nested 100,000 levels deep reads back as text (GET and the whole list answered 500)', async () => {
    const source = (await relay.api('POST', '/ingest/api/v1/source', { name: 'deep', type: 'none', config: { insecure: true } })).body;
    const body = '['.repeat(100_000) + ']'.repeat(100_000);
    const ingested = await fetch(source.ingestUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    assert.equal(ingested.status, 200);
    const { id } = (await ingested.json()) as { id: string };
    const message = await relay.api('GET', `/api/v1/app/${source.appId}/msg/${id}`);
    assert.equal(message.status, 200, message.text.slice(0, 200));
    assert.equal(message.body.payload, body);
    const list = await relay.api('GET', `/api/v1/app/${source.appId}/msg`);
    assert.equal(list.status, 200, list.text.slice(0, 200));
    assert.deepEqual(list.body.data.map((m: { id: string }) => m.id), [id]);
    // At the limit it is still JSON.
    const shallow = await fetch(source.ingestUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '['.repeat(64) + ']'.repeat(64) });
    const shallowId = ((await shallow.json()) as { id: string }).id;
    assert.deepEqual((await relay.api('GET', `/api/v1/app/${source.appId}/msg/${shallowId}`)).body.payload, JSON.parse('['.repeat(64) + ']'.repeat(64)));
  });

  it('POST /api/v1/app with content-type application/vnd.api+json is parsed as JSON (was 415)', async () => {
    for (const type of ['application/vnd.api+json', 'application/merge-patch+json; charset=utf-8', 'APPLICATION/JSON']) {
      const response = await relay.api('POST', '/api/v1/app', undefined, { rawBody: '{"name":"typed"}', headers: { 'content-type': type } });
      assert.equal(response.status, 201, `${type}: ${response.text}`);
    }
    for (const type of ['application/jsonx', 'text/json', 'application/json-seq']) {
      const response = await relay.api('POST', '/api/v1/app', undefined, { rawBody: '{"name":"typed"}', headers: { 'content-type': type } });
      assert.equal(response.status, 415, `${type}: ${response.text}`);
    }
  });
});
