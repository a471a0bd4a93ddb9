import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { httpRequest, rawHttp } from '../helpers/raw-http.js';
import { ADMIN_TOKEN, startRelay, type ApiResponse, type TestRelay } from '../helpers/relay.js';
import { assertWellFormed, bodyText, budgetMs, canonical, fuzz, jsonObjectText, jsonText, nastyString, percentEncode, plausibleName, SEED, text } from './support.js';

/**
 * Property-based fuzzing of the REST API over real HTTP: hostile JSON bodies (wrong types, NUL and unpaired
 * surrogates, `__proto__` keys, huge and non-finite numbers, deep nesting, extra keys), content types, query strings
 * and path segments. Every answer is well-formed (no 5xx, documented 4xx shapes), a refused write leaves nothing
 * behind, and an accepted message payload is stored exactly as sent.
 */

/** Mostly a valid value, so that validation goes on to the other fields; sometimes an invalid one. */
const mostly = (valid: fc.Arbitrary<string>, invalid: fc.Arbitrary<string>) => fc.oneof({ weight: 5, arbitrary: valid }, { weight: 1, arbitrary: invalid });

const contentType = mostly(
  fc.constantFrom('application/json', 'application/json; charset=utf-8', 'application/vnd.api+json'),
  fc.constantFrom('text/plain', 'application/json; charset=latin1', 'application/x-www-form-urlencoded', ''),
);

/** Header values fetch can send (it refuses control characters and characters above U+00FF). */
const headerValue = nastyString.map((s) => Buffer.from(s).toString('latin1').replace(/[^\t\x20-\x7e\x80-\xff]/g, ''));

const rate = mostly(text(fc.integer({ min: 1, max: 1000 })), fc.constantFrom('null', '0', '-1', '1000001', '1.5', '"10"'));
const metadata = text(fc.dictionary(fc.stringMatching(/^[a-z][a-z0-9_-]{0,11}$/), fc.string({ maxLength: 24 }), { maxKeys: 6 }));
const names = text(fc.array(plausibleName, { minLength: 1, maxLength: 4 }));
const secret = mostly(
  fc.integer({ min: 24, max: 64 }).map((n) => JSON.stringify('whsec_' + randomBytes(n).toString('base64'))),
  fc.integer({ min: 1, max: 100 }).map((n) => JSON.stringify(randomBytes(n).toString('base64url'))),
);
const endpointHeaders = text(fc.dictionary(fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,20}$/), fc.string({ maxLength: 40 }), { maxKeys: 6 }));
const url = mostly(
  fc.oneof(text(fc.webUrl({ validSchemes: ['https', 'http'] })), fc.constantFrom('"https://example.com/hook"', '"http://127.0.0.1:9/x"', '"http://[::1]:9/x"')),
  fc.constantFrom('"javascript:alert(1)"', '"http://"', '"/relative"', '""', `"https://example.com/${'a'.repeat(3000)}"`),
);

const endpointFields = {
  url,
  description: text(fc.string({ maxLength: 40 })),
  disabled: text(fc.boolean()),
  filterTypes: names,
  channels: names,
  metadata,
  uid: text(plausibleName),
  version: mostly(text(fc.integer({ min: 1, max: 10 })), fc.constantFrom('0', '-1', '1.5', '1e999')),
  throttleRate: rate,
  rateLimit: rate,
  ordering: mostly(fc.constantFrom('"parallel"', '"fifo"'), fc.constant('"random"')),
  maxInFlight: mostly(text(fc.integer({ min: 1, max: 100 })), fc.constantFrom('0', '10001', '-5')),
  destination: fc.oneof(fc.constant('null'), text(fc.record({ type: fc.constantFrom('temporal', 'http', 'kafka', '') }, { requiredKeys: [] }))),
  secret,
  headers: endpointHeaders,
};

describe('fuzz: REST API', () => {
  let relay: TestRelay;
  let endpointApp: string;
  let messageApp: string;
  let pathApp: string;
  let endpointId: string;
  let messageId: string;
  let total = 0;

  before(async () => {
    relay = await startRelay();
    const app = async (name: string) => (await relay.api('POST', '/api/v1/app', { name })).body.id as string;
    [endpointApp, messageApp, pathApp] = [await app('endpoints'), await app('messages'), await app('paths')];
    endpointId = (await relay.api('POST', `/api/v1/app/${endpointApp}/endpoint`, { url: 'https://example.com/patched', disabled: true })).body.id;
    messageId = (await relay.api('POST', `/api/v1/app/${messageApp}/msg`, { eventType: 'seed', payload: {} })).body.id;
    // The "nothing was written" checks compare the newest record; ids sort by creation.
    assert.equal(await newest('/api/v1/app'), pathApp);
  });
  after(() => relay.close());

  const send = (method: string, path: string, body: string | null, type: string | null = 'application/json', headers: Record<string, string> = {}): Promise<ApiResponse> =>
    relay.api(method, path, undefined, { rawBody: body ?? undefined, headers: { ...(type ? { 'content-type': type } : {}), ...headers } });

  /** The id of the newest record of a list route. */
  async function newest(path: string): Promise<string | null> {
    const response = await relay.api('GET', `${path}?limit=1&order=descending`);
    assert.equal(response.status, 200, response.text);
    return response.body.data[0]?.id ?? null;
  }

  /** A create route: a refused body leaves the newest record as it was, an accepted one can be read back. */
  async function checkCreate(listPath: string, response: ApiResponse, before: string | null, what: string): Promise<void> {
    assertWellFormed(response, what);
    if (response.status >= 400) assert.equal(await newest(listPath), before, `${what} was refused (${response.status}) but created a record`);
    else assert.match(response.body.id, /^[a-z]+_/, `${what} → ${response.text}`);
  }

  it('POST /api/v1/app with hostile bodies', async (t) => {
    const body = bodyText({ name: text(fc.string({ minLength: 1, maxLength: 30 })), uid: text(plausibleName), metadata, throttleRate: rate, rateLimit: rate });
    const query = fc.constantFrom('', '?get_if_exists=true', '?get_if_exists=yes', '?get_if_exists=true&get_if_exists=false');
    total += await fuzz(
      t,
      'app create',
      fc.tuple(body, contentType, query),
      async ([json, type, q]) => {
        const before = await newest('/api/v1/app');
        const response = await send('POST', `/api/v1/app${q}`, json, type);
        await checkCreate('/api/v1/app', response, before, `POST /api/v1/app${q} ${type} ${json.slice(0, 300)}`);
        return [response.status];
      },
      { timeMs: budgetMs(3000) },
    );
  });

  it('POST /api/v1/app/{app}/endpoint with hostile bodies', async (t) => {
    const list = `/api/v1/app/${endpointApp}/endpoint`;
    total += await fuzz(
      t,
      'endpoint create',
      fc.tuple(bodyText(endpointFields), contentType),
      async ([json, type]) => {
        const before = await newest(list);
        const response = await send('POST', list, json, type);
        await checkCreate(list, response, before, `POST endpoint ${type} ${json.slice(0, 300)}`);
        return [response.status];
      },
      { timeMs: budgetMs(3000) },
    );
  });

  it('PATCH an endpoint and its headers with hostile bodies: a refused patch changes nothing', async (t) => {
    const path = `/api/v1/app/${endpointApp}/endpoint/${endpointId}`;
    const { url: _url, secret: _secret, headers: _headers, ...patchable } = endpointFields;
    const patch = fc.oneof(
      bodyText({ ...patchable, url: text(fc.constantFrom('https://example.com/a', 'https://example.com/b')), secret }).map((json) => ['PATCH', path, json] as const),
      bodyText({ headers: endpointHeaders, deleteHeaders: names }).map((json) => ['PATCH', `${path}/headers`, json] as const),
      bodyText({ headers: endpointHeaders }).map((json) => ['PUT', `${path}/headers`, json] as const),
    );
    const state = async () => {
      const [endpoint, headers] = await Promise.all([relay.api('GET', path), relay.api('GET', `${path}/headers`)]);
      return { endpoint: endpoint.body, headers: headers.body };
    };
    total += await fuzz(
      t,
      'endpoint patch',
      fc.tuple(patch, contentType),
      async ([[method, target, json], type]) => {
        const before = await state();
        const response = await send(method, target, json, type);
        assertWellFormed(response, `${method} ${target} ${type} ${json.slice(0, 300)}`);
        if (response.status >= 400) assert.deepEqual(await state(), before, `${method} ${json.slice(0, 300)} was refused but changed the endpoint`);
        return [response.status];
      },
      { timeMs: budgetMs(3000) },
    );
  });

  it('POST /api/v1/app/{app}/msg with hostile payloads: refused ones store nothing, accepted ones are stored exactly', async (t) => {
    const list = `/api/v1/app/${messageApp}/msg`;
    const body = bodyText({
      eventType: text(plausibleName),
      payload: fc.oneof({ weight: 3, arbitrary: text(fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 8 })) }, { weight: 3, arbitrary: jsonObjectText }, { weight: 1, arbitrary: jsonText }),
      eventId: text(plausibleName),
      channels: names,
      tags: names,
      payloadRetentionPeriod: text(fc.integer({ min: -1, max: 100 })),
    });
    // As sent: HTTP drops leading and trailing whitespace of a header value.
    const idempotencyKey = fc.option(headerValue.map((v) => v.replace(/^[\t ]+|[\t ]+$/g, '')), { nil: null, freq: 4 });
    const firstWithKey = new Map<string, string>();
    total += await fuzz(
      t,
      'message create',
      fc.tuple(body, contentType, idempotencyKey, fc.constantFrom('', '?with_content=false', '?with_content=maybe')),
      async ([json, type, key, query]) => {
        const before = await newest(list);
        const response = await send('POST', list + query, json, type, key === null ? {} : { 'idempotency-key': key });
        const what = `POST msg ${type} ${json.slice(0, 300)}`;
        assertWellFormed(response, what);
        if (response.status >= 400) {
          assert.equal(await newest(list), before, `${what} was refused (${response.status}) but stored a message`);
        } else if (key !== null && firstWithKey.has(key)) {
          // A repeated idempotency key answers with the message it first created.
          assert.equal(response.body.id, firstWithKey.get(key), `${what}: idempotency-key ${JSON.stringify(key)} created a second message`);
        } else {
          if (key !== null) firstWithKey.set(key, response.body.id);
          const stored = await relay.api('GET', `${list}/${response.body.id}`);
          assert.equal(stored.status, 200, stored.text);
          assert.equal(JSON.stringify(stored.body.payload), canonical(JSON.stringify(JSON.parse(json).payload)), `${what}: the payload changed`);
        }
        return [response.status];
      },
      { timeMs: budgetMs(3000) },
    );
  });

  it('POST /ingest/api/v1/source with hostile configs', async (t) => {
    const common = {
      maxBodyBytes: mostly(text(fc.integer({ min: 1, max: 1_000_000 })), fc.constantFrom('0', '-1', '100000000', '"1"')),
      rateLimit: rate,
      dedupeWindowSeconds: mostly(text(fc.integer({ min: 1, max: 86_400 })), fc.constantFrom('0', '99999999')),
      keepHeaders: mostly(text(fc.array(fc.stringMatching(/^[A-Za-z0-9-]{1,20}$/), { maxLength: 4 })), text(fc.array(fc.string({ maxLength: 8 }), { maxLength: 3 }))),
      publicUrl: url,
    };
    const secretField = mostly(text(fc.string({ minLength: 1, maxLength: 40 })), fc.constantFrom('""', '1', `"${'s'.repeat(1025)}"`));
    const tolerance = mostly(text(fc.integer({ min: 1, max: 86_400 })), fc.constantFrom('0', '-1', '1e9'));
    /** Each verifier type with the config fields it takes, so that most sources can be created; the rest are wrong on purpose. */
    const configs: Record<string, Record<string, fc.Arbitrary<string>>> = {
      github: { secret: secretField, allowSha1: text(fc.boolean()) },
      stripe: { secret: secretField, tolerance },
      svix: { secret: secretField, tolerance },
      'standard-webhooks': { secret: secretField, tolerance },
      slack: { secret: secretField, tolerance },
      hmac: {
        secret: secretField,
        header: text(fc.stringMatching(/^x-[a-z-]{1,12}$/)),
        algorithm: mostly(fc.constantFrom('"sha1"', '"sha256"', '"sha512"'), fc.constant('"md5"')),
        encoding: mostly(fc.constantFrom('"hex"', '"base64"'), fc.constant('"utf8"')),
        prefix: text(fc.string({ maxLength: 8 })),
        timestampHeader: text(fc.stringMatching(/^x-[a-z-]{1,12}$/)),
        template: fc.constantFrom('"{body}"', '"{timestamp}.{body}"', '"x"'),
      },
      'api-key': { secret: secretField, header: text(fc.stringMatching(/^x-[a-z-]{1,12}$/)), prefix: text(fc.string({ maxLength: 8 })) },
      none: { insecure: mostly(fc.constant('true'), fc.constant('false')) },
      nope: { secret: secretField },
    };
    const body = fc.constantFrom(...Object.keys(configs)).chain((type) =>
      bodyText({
        name: text(fc.string({ minLength: 1, maxLength: 20 })),
        uid: text(plausibleName),
        type: mostly(fc.constant(JSON.stringify(type)), fc.constantFrom('"__proto__"', '"constructor"', '"generic-webhook"', '""')),
        config: bodyText({ ...configs[type], ...common }),
        metadata,
      }),
    );
    total += await fuzz(
      t,
      'source create',
      fc.tuple(body, contentType),
      async ([json, type]) => {
        const before = await newest('/ingest/api/v1/source');
        const response = await send('POST', '/ingest/api/v1/source', json, type);
        await checkCreate('/ingest/api/v1/source', response, before, `POST source ${type} ${json.slice(0, 300)}`);
        return [response.status];
      },
      { timeMs: budgetMs(2500) },
    );
  });

  it('list routes with garbage query strings', async (t) => {
    const paths = [
      '/api/v1/app',
      `/api/v1/app/${messageApp}/msg`,
      `/api/v1/app/${endpointApp}/endpoint`,
      '/api/v1/event-type',
      `/api/v1/app/${messageApp}/attempt/endpoint/${endpointId}`,
      `/api/v1/app/${messageApp}/attempt/msg/${messageId}`,
      `/api/v1/app/${messageApp}/msg/${messageId}/endpoint`,
      '/ingest/api/v1/source',
    ];
    const key = fc.oneof(
      { weight: 4, arbitrary: fc.constantFrom('limit', 'iterator', 'order', 'before', 'after', 'channel', 'tag', 'event_types', 'with_content', 'status', 'status_code_class', 'include_archived', 'endpoint_id', 'with_msg') },
      { weight: 1, arbitrary: nastyString.map(percentEncode) },
    );
    const value = fc.oneof(
      fc.constantFrom('', '0', '-1', '1', '250', '251', '1e3', '99999999999999999999', 'NaN', 'true', 'ascending', 'descending', '2024-01-01T00:00:00Z', '2024-13-45T99:99:99Z', '-', '%', '%ZZ', '%00', '%FF', '%ED%A0%80', '[]', 'a,b,,c', ','.repeat(300)),
      nastyString.map(percentEncode),
      fc.base64String({ maxLength: 40 }).map(encodeURIComponent),
    );
    const query = fc.array(fc.tuple(key, value), { maxLength: 6 }).map((pairs) => pairs.map(([k, v]) => `${k}=${v}`).join('&'));
    total += await fuzz(
      t,
      'list queries',
      fc.tuple(fc.constantFrom(...paths), query),
      async ([path, q]) => {
        const response = await relay.api('GET', `${path}?${q}`);
        assertWellFormed(response, `GET ${path}?${q}`);
        return [response.status];
      },
      { timeMs: budgetMs(2500) },
    );
  });

  it('every route with hostile path segments and tokens', async (t) => {
    const routes = [
      ['GET', '/api/v1/app/:x'],
      ['PUT', '/api/v1/app/:x'],
      ['PATCH', '/api/v1/app/:x'],
      ['DELETE', '/api/v1/app/:x'],
      ['GET', '/api/v1/event-type/:x'],
      ['PATCH', '/api/v1/event-type/:x'],
      ['GET', `/api/v1/app/${pathApp}/endpoint/:x`],
      ['PATCH', `/api/v1/app/${pathApp}/endpoint/:x`],
      ['DELETE', `/api/v1/app/${pathApp}/endpoint/:x`],
      ['GET', `/api/v1/app/${pathApp}/endpoint/:x/secret`],
      ['POST', `/api/v1/app/${pathApp}/endpoint/:x/secret/rotate`],
      ['PUT', `/api/v1/app/${pathApp}/endpoint/:x/headers`],
      ['POST', `/api/v1/app/${pathApp}/endpoint/:x/recover`],
      ['GET', `/api/v1/app/${pathApp}/msg/:x`],
      ['DELETE', `/api/v1/app/${pathApp}/msg/:x/content`],
      ['GET', `/api/v1/app/${pathApp}/attempt/msg/:x`],
      ['GET', `/api/v1/app/${pathApp}/msg/:x/attempt/:x`],
      ['POST', `/api/v1/app/${pathApp}/msg/:x/endpoint/:x/resend`],
      ['GET', '/ingest/api/v1/source/:x'],
      ['DELETE', '/ingest/api/v1/source/:x'],
      ['POST', '/ingest/api/v1/source/:x/token/rotate'],
      ['GET', '/api/v1/:x'],
      ['GET', '/:x'],
    ] as const;
    const segment = fc.oneof(
      { weight: 3, arbitrary: nastyString.map(percentEncode) },
      { weight: 2, arbitrary: fc.constantFrom('.', '..', '%2e%2e', '%2F', '%00', '%', '%ZZ', '%ED%A0%80', '%C0%AF', 'a'.repeat(513), 'app_', 'ep_x', 'msg_x', '~', '%20', '+') },
      { weight: 1, arbitrary: fc.stringMatching(/^[!$&'()*+,;=:@A-Za-z0-9._~-]{1,30}$/) },
    );
    const token = fc.oneof({ weight: 6, arbitrary: fc.constant(`Bearer ${ADMIN_TOKEN}`) }, { weight: 1, arbitrary: headerValue.map((v) => v.replace(/[^\t\x20-\x7e\x80-\xff]/g, '')) }, { weight: 1, arbitrary: fc.constant(null) });
    total += await fuzz(
      t,
      'path segments',
      fc.tuple(fc.constantFrom(...routes), segment, segment, token, fc.option(jsonText, { nil: null })),
      async ([[method, template], first, second, authorization, json]) => {
        let n = 0;
        const path = template.replace(/:x/g, () => (n++ === 0 ? first : second));
        const headers: [string, string][] = authorization === null ? [] : [['authorization', authorization]];
        if (json !== null) headers.push(['content-type', 'application/json']);
        const response = await rawHttp(relay.url, httpRequest(method, path, headers, json ?? ''));
        assertWellFormed(response, `${method} ${path}`);
        return [response.status];
      },
      { timeMs: budgetMs(3000) },
    );
    assert.equal((await relay.api('GET', `/api/v1/app/${pathApp}`)).status, 200, 'the fuzzed app was deleted');
  });

  it('is still up and consistent, and reports the number of cases', async (t) => {
    assert.equal((await relay.api('GET', '/healthz')).status, 200);
    const created = await relay.api('POST', `/api/v1/app/${messageApp}/msg`, { eventType: 'after.fuzz', payload: { ok: true } });
    assert.equal(created.status, 202, created.text);
    t.diagnostic(`API fuzz: ${total} cases in all (seed ${SEED})`);
  });
});
