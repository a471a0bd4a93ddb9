import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { httpRequest, rawHttp, type RawResponse } from '../helpers/raw-http.js';
import { startRelay, type TestRelay } from '../helpers/relay.js';
import { assertWellFormed, budgetMs, fuzz, nastyString, percentEncode, SEED } from './support.js';

/**
 * Property-based fuzzing of `/ingest/{token}` over real sockets, for five verifier types:
 * - arbitrary requests (methods, duplicated and garbage headers, bodies, encodings) never get a 5xx, a dropped
 *   connection, or a 2xx — nothing was signed with the source's secret, so any 2xx would be a forgery;
 * - a request signed with the secret is accepted, and every mutation of it (a body bit, the timestamp, the
 *   signature, the id, the secret, the header it sits in, a stale replay) is refused with 401.
 */

type Headers = [string, string][];

interface Signed {
  headers: Headers;
  body: Buffer;
}

/** A verifier type as a provider signs for it, and how to mutate what it signed. */
interface Scheme {
  type: string;
  config(secret: string): Record<string, unknown>;
  newSecret(): string;
  /** Headers a provider would send for `body` at `timestamp` (unix seconds) with delivery `id`. */
  sign(secret: string, body: Buffer, timestamp: number, id: string): Headers;
  /** The header holding the signature. */
  signatureHeader: string;
  /** The signature header's value with one bit of the signature flipped. */
  tamper(value: string, bit: number): string;
  /** Moves a signed value into a header the verifier does not read for it, or swaps two signed headers. */
  swap(headers: Headers): Headers;
  /** Replaces the signed timestamp (null for schemes without one). */
  retime: ((headers: Headers, timestamp: number) => Headers) | null;
  /** Replaces the signed id (null when the id is not signed). */
  reid: ((headers: Headers, id: string) => Headers) | null;
  tolerance: number | null;
}

const hmac = (algorithm: string, key: string | Buffer, ...parts: (string | Buffer)[]) => {
  const mac = createHmac(algorithm, key);
  for (const part of parts) mac.update(part);
  return mac.digest();
};

const flip = (bytes: Buffer, bit: number) => {
  const out = Buffer.from(bytes);
  const at = bit % (out.length * 8);
  out[at >> 3] ^= 1 << (at & 7);
  return out;
};

const get = (headers: Headers, name: string) => headers.find(([n]) => n === name)?.[1] ?? '';
const set = (headers: Headers, name: string, value: string): Headers => headers.map(([n, v]) => [n, n === name ? value : v]);
const rename = (headers: Headers, from: string, to: string): Headers => headers.map(([n, v]) => [n === from ? to : n, v]);

const stripe: Scheme = {
  type: 'stripe',
  config: (secret) => ({ secret }),
  newSecret: () => 'whsec_' + randomBytes(24).toString('base64'),
  sign: (secret, body, timestamp) => [['stripe-signature', `t=${timestamp},v1=${hmac('sha256', secret, `${timestamp}.`, body).toString('hex')}`]],
  signatureHeader: 'stripe-signature',
  tamper: (value, bit) => value.replace(/v1=([0-9a-f]+)/, (_, hex: string) => `v1=${flip(Buffer.from(hex, 'hex'), bit).toString('hex')}`),
  swap: (headers) => rename(headers, 'stripe-signature', 'stripe-signature-v2'),
  retime: (headers, timestamp) => set(headers, 'stripe-signature', get(headers, 'stripe-signature').replace(/^t=\d+/, `t=${timestamp}`)),
  reid: null,
  tolerance: 300,
};

const github: Scheme = {
  type: 'github',
  config: (secret) => ({ secret }),
  newSecret: () => randomBytes(20).toString('hex'),
  sign: (secret, body, _timestamp, id) => [
    ['x-github-event', 'push'],
    ['x-github-delivery', id],
    ['x-hub-signature-256', `sha256=${hmac('sha256', secret, body).toString('hex')}`],
  ],
  signatureHeader: 'x-hub-signature-256',
  tamper: (value, bit) => `sha256=${flip(Buffer.from(value.slice(7), 'hex'), bit).toString('hex')}`,
  // SHA-1 signatures are only read when the source allows them; this one does not.
  swap: (headers) => rename(headers, 'x-hub-signature-256', 'x-hub-signature').map(([n, v]) => [n, n === 'x-hub-signature' ? v.replace('sha256=', 'sha1=') : v]),
  retime: null,
  reid: null,
  tolerance: null,
};

const standardWebhooks = (type: string, prefix: 'webhook' | 'svix'): Scheme => ({
  type,
  config: (secret) => ({ secret }),
  newSecret: () => 'whsec_' + randomBytes(32).toString('base64'),
  sign: (secret, body, timestamp, id) => {
    const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
    return [
      [`${prefix}-id`, id],
      [`${prefix}-timestamp`, String(timestamp)],
      [`${prefix}-signature`, `v1,${hmac('sha256', key, `${id}.${timestamp}.`, body).toString('base64')}`],
    ];
  },
  signatureHeader: `${prefix}-signature`,
  tamper: (value, bit) => `v1,${flip(Buffer.from(value.slice(3), 'base64'), bit).toString('base64')}`,
  swap: (headers) => {
    const [id, timestamp] = [get(headers, `${prefix}-id`), get(headers, `${prefix}-timestamp`)];
    return set(set(headers, `${prefix}-id`, timestamp), `${prefix}-timestamp`, id);
  },
  retime: (headers, timestamp) => set(headers, `${prefix}-timestamp`, String(timestamp)),
  reid: (headers, id) => set(headers, `${prefix}-id`, id),
  tolerance: 300,
});

const slack: Scheme = {
  type: 'slack',
  config: (secret) => ({ secret }),
  newSecret: () => randomBytes(16).toString('hex'),
  sign: (secret, body, timestamp) => [
    ['x-slack-request-timestamp', String(timestamp)],
    ['x-slack-signature', `v0=${hmac('sha256', secret, `v0:${timestamp}:`, body).toString('hex')}`],
  ],
  signatureHeader: 'x-slack-signature',
  tamper: (value, bit) => `v0=${flip(Buffer.from(value.slice(3), 'hex'), bit).toString('hex')}`,
  swap: (headers) => {
    const [timestamp, signature] = [get(headers, 'x-slack-request-timestamp'), get(headers, 'x-slack-signature')];
    return set(set(headers, 'x-slack-request-timestamp', signature), 'x-slack-signature', timestamp);
  },
  retime: (headers, timestamp) => set(headers, 'x-slack-request-timestamp', String(timestamp)),
  reid: null,
  tolerance: 300,
};

/** The generic verifier, configured like a typical in-house scheme: base64 SHA-512 over `timestamp.body`. */
const generic: Scheme = {
  type: 'hmac',
  config: (secret) => ({ secret, algorithm: 'sha512', encoding: 'base64', header: 'x-signature', prefix: 'sha512=', timestampHeader: 'x-timestamp', template: '{timestamp}.{body}' }),
  newSecret: () => randomBytes(32).toString('base64'),
  sign: (secret, body, timestamp) => [
    ['x-timestamp', String(timestamp)],
    ['x-signature', `sha512=${hmac('sha512', secret, `${timestamp}.`, body).toString('base64')}`],
  ],
  signatureHeader: 'x-signature',
  tamper: (value, bit) => `sha512=${flip(Buffer.from(value.slice(7), 'base64'), bit).toString('base64')}`,
  swap: (headers) => rename(headers, 'x-signature', 'x-signature-256'),
  retime: (headers, timestamp) => set(headers, 'x-timestamp', String(timestamp)),
  reid: null,
  tolerance: 300,
};

const SCHEMES = [stripe, github, standardWebhooks('standard-webhooks', 'webhook'), standardWebhooks('svix', 'svix'), slack, generic];

// ---- arbitraries ----------------------------------------------------------------------------------

const CONTENT_TYPES = [
  'application/json',
  'application/json; charset=utf-8',
  'application/json; charset=latin1',
  'application/x-www-form-urlencoded',
  'text/plain',
  'application/octet-stream',
  'multipart/form-data; boundary=x',
  'application/*+json',
  '',
  ';;;',
  'application/json; charset="',
];

/** Request bodies: JSON, arbitrary bytes (invalid UTF-8 included), unicode text, form posts, gzip that is or is not gzip. */
const body: fc.Arbitrary<Buffer> = fc.oneof(
  fc.json({ maxDepth: 3 }).map((j) => Buffer.from(j)),
  fc.uint8Array({ maxLength: 512 }).map((bytes) => Buffer.from(bytes)),
  fc.string({ unit: 'binary', maxLength: 200 }).map((s) => Buffer.from(s)),
  fc.dictionary(fc.string({ maxLength: 8 }), fc.string({ maxLength: 20 })).map((d) => Buffer.from(new URLSearchParams(d).toString())),
  fc.json({ maxDepth: 2 }).map((j) => gzipSync(j)),
  fc.constant(Buffer.alloc(0)),
  fc.integer({ min: 20_000, max: 200_000 }).map((n) => Buffer.alloc(n, '[')),
  fc.integer({ min: 60, max: 30_000 }).map((n) => Buffer.from('['.repeat(n) + ']'.repeat(n))),
);

/** Header values: printable, latin-1 bytes, UTF-8 bytes, control characters, huge, and signature look-alikes. */
const headerValue: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.string({ maxLength: 60 }) },
  { weight: 2, arbitrary: nastyString.map((s) => Buffer.from(s).toString('latin1').replace(/[\r\n]/g, ' ')) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary-ascii', maxLength: 30 }).map((s) => s.replace(/[\r\n]/g, '')) },
  { weight: 1, arbitrary: fc.integer({ min: 1000, max: 12_000 }).map((n) => 'v'.repeat(n)) },
  { weight: 3, arbitrary: fc.constantFrom('t=1,v1=00', `t=${Math.floor(Date.now() / 1000)},v1=${'ab'.repeat(32)}`, 'v1,AAAA', `v1,${randomBytes(32).toString('base64')}`, 'sha256=zz', `sha256=${'0'.repeat(64)}`, 'v0=', `v0=${'f'.repeat(64)}`, 'sha512=', '9999999999', '-1', '1e3', String(Math.floor(Date.now() / 1000))) },
);

const SIGNATURE_HEADERS = ['stripe-signature', 'x-hub-signature-256', 'x-hub-signature', 'x-github-delivery', 'webhook-id', 'webhook-timestamp', 'webhook-signature', 'svix-id', 'svix-timestamp', 'svix-signature', 'x-slack-signature', 'x-slack-request-timestamp', 'x-signature', 'x-timestamp'];

const headerName: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...SIGNATURE_HEADERS, 'content-type', 'content-encoding', 'transfer-encoding', 'authorization', 'x-github-event', 'content-length') },
  { weight: 1, arbitrary: fc.stringMatching(/^[a-z][a-z0-9-]{0,15}$/) },
);

const headers: fc.Arbitrary<Headers> = fc.array(fc.tuple(headerName, headerValue), { maxLength: 12 }).map((list) =>
  // The request's own framing stays intact (httpRequest writes content-length): the fuzz is about what the relay makes of the rest.
  list.filter(([name]) => name !== 'content-length' && name !== 'transfer-encoding'),
);

const MUTATIONS = ['body-bit', 'body-append', 'body-truncate', 'wrong-secret', 'signature-bit', 'other-body-signature', 'drop-signature', 'swap-headers', 'retime', 'stale', 'reid'] as const;
type Mutation = (typeof MUTATIONS)[number];

// ---- the tests ------------------------------------------------------------------------------------

const headBytes = (request: Buffer) => request.indexOf('\r\n\r\n');

describe('fuzz: /ingest/{token}', () => {
  let relay: TestRelay;
  const sources = new Map<string, { path: string; secret: string }>();
  const appOf = new Map<string, string>();
  let total = 0;

  before(async () => {
    relay = await startRelay();
    for (const scheme of SCHEMES) {
      const secret = scheme.newSecret();
      const response = await relay.api('POST', '/ingest/api/v1/source', { name: `fuzz-${scheme.type}`, type: scheme.type, config: { ...scheme.config(secret), maxBodyBytes: 65_536 } });
      assert.equal(response.status, 201, response.text);
      sources.set(scheme.type, { path: new URL(response.body.ingestUrl).pathname, secret });
      appOf.set(scheme.type, response.body.appId);
    }
  });
  after(() => relay.close());

  const send = (method: string, path: string, list: Headers, payload: Buffer): Promise<RawResponse> => rawHttp(relay.url, httpRequest(method, path, list, payload));

  /** The relay still answers, and still accepts a correctly signed request. */
  async function stillServing(scheme: Scheme): Promise<void> {
    const { path, secret } = sources.get(scheme.type)!;
    const payload = Buffer.from(JSON.stringify({ type: 'alive', id: randomBytes(8).toString('hex') }));
    const response = await send('POST', path, [['content-type', 'application/json'], ...scheme.sign(secret, payload, Math.floor(Date.now() / 1000), `msg_${randomBytes(8).toString('hex')}`)], payload);
    assert.equal(response.status, 200, response.text);
  }

  for (const scheme of SCHEMES) {
    it(`${scheme.type}: arbitrary requests get a well-formed 4xx, never a 2xx or a 5xx`, async (t) => {
      const { path } = sources.get(scheme.type)!;
      const request = fc.record({
        method: fc.constantFrom('POST', 'POST', 'POST', 'PUT', 'PATCH', 'GET', 'DELETE', 'OPTIONS'),
        headers,
        body,
        contentType: fc.option(fc.constantFrom(...CONTENT_TYPES), { nil: null }),
      });
      total += await fuzz(
        t,
        `${scheme.type} arbitrary`,
        request,
        async ({ method, headers: list, body: payload, contentType }) => {
          const sent = httpRequest(method, path, contentType === null ? list : [['content-type', contentType], ...list], payload);
          const response = await rawHttp(relay.url, sent);
          const what = `${method} with ${JSON.stringify(list).slice(0, 300)}`;
          // A header block over the limit is answered 431 and closed; the close may overtake the answer.
          if (response.status === 0 && headBytes(sent) > 16_384) return [0];
          assertWellFormed(response, what);
          assert.ok(response.status >= 400, `${what} was accepted without a signature: ${response.status} ${response.text}`);
          return [response.status];
        },
        { timeMs: budgetMs(2500) },
      );
      await stillServing(scheme);
    });

    it(`${scheme.type}: a signed request is accepted and every mutation of it is refused with 401`, async (t) => {
      const { path, secret } = sources.get(scheme.type)!;
      const applicable = MUTATIONS.filter((m) => (m === 'retime' || m === 'stale' ? scheme.retime : m === 'reid' ? scheme.reid : true));
      const cases = fc.record({
        body: body.filter((b) => b.length <= 65_536),
        other: fc.uint8Array({ minLength: 1, maxLength: 64 }),
        contentType: fc.constantFrom(...CONTENT_TYPES.filter(Boolean)),
        mutations: fc.uniqueArray(fc.constantFrom(...applicable), { minLength: 1, maxLength: 4 }),
        bit: fc.nat(),
        shift: fc.integer({ min: 1, max: 10_000 }).chain((n) => fc.constantFrom(n, -n)),
      });
      let counter = 0;
      total += await fuzz(
        t,
        `${scheme.type} signed + mutated`,
        cases,
        async ({ body: payload, other, contentType, mutations, bit, shift }) => {
          const now = Math.floor(Date.now() / 1000);
          const id = `msg_fuzz${++counter}_${randomBytes(4).toString('hex')}`;
          const signed: Signed = { headers: [['content-type', contentType], ...scheme.sign(secret, payload, now, id)], body: payload };
          const original = await send('POST', path, signed.headers, signed.body);
          assert.equal(original.status, 200, `the signed request was refused: ${original.text}`);
          const statuses = [original.status];
          // What ingest stored, the API can show (a Slack handshake stores nothing).
          if (original.body?.id) {
            const stored = await relay.api('GET', `/api/v1/app/${appOf.get(scheme.type)}/msg/${original.body.id}`);
            assert.equal(stored.status, 200, `the stored message cannot be read: ${stored.status} ${stored.text.slice(0, 300)}`);
          }

          for (const mutation of mutations) {
            const forged = mutate(scheme, secret, signed, mutation as Mutation, { bit, shift, other: Buffer.from(other), now, id });
            const response = await send('POST', path, forged.headers, forged.body);
            assert.equal(response.status, 401, `${mutation}: ${response.status} ${response.text}`);
            assert.equal(response.body?.code, 'verification_failed', `${mutation}: ${response.text}`);
            statuses.push(response.status);
          }
          return statuses;
        },
        { timeMs: budgetMs(3000) },
      );
      await stillServing(scheme);
    });
  }

  it('unknown and malformed ingest tokens get a well-formed 4xx', async (t) => {
    const token = fc.oneof(nastyString.map(percentEncode), fc.stringMatching(/^[A-Za-z0-9_%.~-]{0,600}$/));
    total += await fuzz(
      t,
      'ingest tokens',
      fc.tuple(token, fc.constantFrom('POST', 'HEAD', 'GET')),
      async ([value, method]) => {
        const response = await send(method, `/ingest/${value}`, [['content-type', 'application/json']], Buffer.from('{}'));
        assert.ok(response.status >= 400 && response.status < 500, `${method} /ingest/${value} → ${response.status} ${response.text}`);
        if (method !== 'HEAD') assertWellFormed(response, `${method} /ingest/${value.slice(0, 80)}`);
        return [response.status];
      },
      { timeMs: budgetMs(1500) },
    );
  });

  it('reports the number of cases', (t) => {
    t.diagnostic(`inbound fuzz: ${total} cases in all (seed ${SEED})`);
    assert.ok(total > 0);
  });
});

/** Applies one mutation to a signed request. None of them can be produced without the secret, or is fresh. */
function mutate(scheme: Scheme, secret: string, signed: Signed, mutation: Mutation, p: { bit: number; shift: number; other: Buffer; now: number; id: string }): Signed {
  const { headers, body } = signed;
  const resign = (withSecret: string, payload: Buffer, timestamp: number) => [['content-type', get(headers, 'content-type')], ...scheme.sign(withSecret, payload, timestamp, p.id)] as Headers;
  switch (mutation) {
    case 'body-bit':
      return { headers, body: body.length > 0 ? flip(body, p.bit) : Buffer.from([p.bit & 0xff]) };
    case 'body-append':
      return { headers, body: Buffer.concat([body, Buffer.from([p.bit & 0xff])]) };
    case 'body-truncate':
      return { headers, body: body.length > 0 ? body.subarray(0, body.length - 1 - (p.bit % body.length)) : Buffer.from('x') };
    case 'wrong-secret':
      return { headers: resign(scheme.newSecret(), body, p.now), body };
    case 'signature-bit':
      return { headers: set(headers, scheme.signatureHeader, scheme.tamper(get(headers, scheme.signatureHeader), p.bit)), body };
    case 'other-body-signature': {
      const other = Buffer.concat([body, p.other]);
      return { headers: set(headers, scheme.signatureHeader, get(resign(secret, other, p.now), scheme.signatureHeader)), body };
    }
    case 'drop-signature':
      return { headers: headers.filter(([name]) => name !== scheme.signatureHeader), body };
    case 'swap-headers':
      return { headers: scheme.swap(headers), body };
    case 'retime':
      return { headers: scheme.retime!(headers, p.now + p.shift), body };
    case 'stale': {
      // Signed with the secret, but outside the tolerance: a replay (or a clock far off).
      const off = (scheme.tolerance! + 30 + Math.abs(p.shift)) * Math.sign(p.shift);
      return { headers: resign(secret, body, p.now + off), body };
    }
    case 'reid':
      return { headers: scheme.reid!(headers, `${p.id}x`), body };
  }
}
