import { sign as githubSign } from '@octokit/webhooks-methods';
import assert from 'node:assert/strict';
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Webhook as StandardWebhook } from 'standardwebhooks';
import Stripe from 'stripe';
import { Svix, Webhook as SvixWebhook } from 'svix';
import { startRelay, type TestRelay } from '../helpers/relay.js';
import { accepted, createSource, getMessage, messageIds, post, refused, tamper } from './support.js';

const whsec = () => 'whsec_' + randomBytes(24).toString('base64');
const nowSec = () => Math.floor(Date.now() / 1000);
let counter = 0;
/** A JSON body no other request in this file has (dedupe on body hash would otherwise interfere). */
const freshBody = (type = 'thing.happened') => `{"type":"${type}","n":${++counter},"note":"unique ${randomUUID()}"}`;

describe('inbound verification', () => {
  let relay: TestRelay;
  before(async () => {
    relay = await startRelay();
  });
  after(async () => {
    await relay.close();
  });

  describe('GitHub', () => {
    const githubHeaders = async (secret: string, body: string) => ({
      'content-type': 'application/json',
      'x-github-event': 'push',
      'x-github-delivery': randomUUID(),
      'x-hub-signature-256': await githubSign(secret, body),
    });
    // @octokit/webhooks-methods only signs SHA-256; GitHub's legacy X-Hub-Signature is HMAC-SHA1 hex of the body.
    const sha1 = (secret: string, body: string) => 'sha1=' + createHmac('sha1', secret).update(body).digest('hex');

    it('accepts a signed request and refuses one changed byte or the wrong secret', async () => {
      const secret = 'gh-' + randomUUID();
      const source = await createSource(relay, 'github', { secret });
      const body = freshBody();
      accepted(await post(source.ingestUrl, body, await githubHeaders(secret, body)));

      const other = freshBody();
      const headers = await githubHeaders(secret, other);
      assert.match(refused(await post(source.ingestUrl, tamper(other), headers)), /no signature matches/);
      refused(await post(source.ingestUrl, other, await githubHeaders('not-the-secret', other)));
      const missing = refused(await post(source.ingestUrl, other, { 'content-type': 'application/json', 'x-github-event': 'push' }));
      assert.match(missing, /X-Hub-Signature-256/);
      assert.equal((await messageIds(relay, source.appId)).length, 1);
    });

    it('accepts any secret of a rotation (additionalSecrets) and refuses others', async () => {
      const [current, next] = ['gh-current-' + randomUUID(), 'gh-next-' + randomUUID()];
      const source = await createSource(relay, 'github', { secret: current, additionalSecrets: [next] });
      for (const secret of [current, next]) {
        const body = freshBody();
        accepted(await post(source.ingestUrl, body, await githubHeaders(secret, body)));
      }
      const body = freshBody();
      refused(await post(source.ingestUrl, body, await githubHeaders('gh-retired', body)));
    });

    it('accepts the SHA-1 signature only when allowSha1 is true', async () => {
      const secret = 'gh-' + randomUUID();
      const strict = await createSource(relay, 'github', { secret });
      const lenient = await createSource(relay, 'github', { secret, allowSha1: true });
      const body = freshBody();
      const headers = { 'content-type': 'application/json', 'x-github-event': 'push', 'x-hub-signature': sha1(secret, body) };

      assert.match(refused(await post(strict.ingestUrl, body, headers)), /X-Hub-Signature-256/);
      accepted(await post(lenient.ingestUrl, body, headers));
      refused(await post(lenient.ingestUrl, tamper(body), headers));
      refused(await post(lenient.ingestUrl, body, { ...headers, 'x-hub-signature': sha1('wrong', body) }));
      assert.equal((await messageIds(relay, strict.appId)).length, 0);
    });
  });

  describe('Stripe', () => {
    const stripeHeaders = (secret: string, body: string, timestamp?: number) => ({
      'content-type': 'application/json; charset=utf-8',
      'stripe-signature': Stripe.webhooks.generateTestHeaderString({ payload: body, secret, timestamp }),
    });
    const event = () => `{"id":"evt_${randomBytes(6).toString('hex')}","object":"event","type":"charge.succeeded"}`;

    it('accepts a signed event and refuses one changed byte or the wrong secret', async () => {
      const secret = whsec();
      const source = await createSource(relay, 'stripe', { secret });
      const body = event();
      const id = accepted(await post(source.ingestUrl, body, stripeHeaders(secret, body)));
      assert.equal((await getMessage(relay, source.appId, id)).eventType, 'charge.succeeded');

      const other = event();
      assert.match(refused(await post(source.ingestUrl, tamper(other), stripeHeaders(secret, other))), /no signature matches/);
      refused(await post(source.ingestUrl, other, stripeHeaders(whsec(), other)));
      refused(await post(source.ingestUrl, other, { 'content-type': 'application/json' }));
      assert.deepEqual(await messageIds(relay, source.appId), [id]);
    });

    it('refuses timestamps older or further in the future than the tolerance, naming which and the tolerance', async () => {
      const secret = whsec();
      const byDefault = await createSource(relay, 'stripe', { secret });
      const strict = await createSource(relay, 'stripe', { secret, tolerance: 30 });

      const body = event();
      const old = refused(await post(byDefault.ingestUrl, body, stripeHeaders(secret, body, nowSec() - 400)));
      assert.match(old, /old/);
      assert.match(old, /tolerance of 300 s/);
      const future = refused(await post(byDefault.ingestUrl, body, stripeHeaders(secret, body, nowSec() + 400)));
      assert.match(future, /future/);
      assert.match(future, /tolerance of 300 s/);
      // 100 s old is inside the default tolerance but outside a source's own 30 s.
      accepted(await post(byDefault.ingestUrl, body, stripeHeaders(secret, body, nowSec() - 100)));
      const strictOld = refused(await post(strict.ingestUrl, body, stripeHeaders(secret, body, nowSec() - 100)));
      assert.match(strictOld, /old/);
      assert.match(strictOld, /tolerance of 30 s/);
    });

    it('accepts an event signed with an additional secret during a rotation', async () => {
      const [current, next] = [whsec(), whsec()];
      const source = await createSource(relay, 'stripe', { secret: current, additionalSecrets: [next] });
      const body = event();
      accepted(await post(source.ingestUrl, body, stripeHeaders(next, body)));
      // While Stripe rolls a secret it sends one v1 per secret; any one of them may match.
      const both = event();
      const t = nowSec();
      const v1Wrong = createHmac('sha256', whsec()).update(`${t}.${both}`).digest('hex');
      const v1Right = createHmac('sha256', current).update(`${t}.${both}`).digest('hex');
      accepted(await post(source.ingestUrl, both, { 'content-type': 'application/json', 'stripe-signature': `t=${t},v1=${v1Wrong},v1=${v1Right}` }));
      const other = event();
      refused(await post(source.ingestUrl, other, stripeHeaders(whsec(), other)));
    });
  });

  /** Standard Webhooks as sent under its own header names and under Svix's (Svix, Clerk). */
  const flavours = [
    { type: 'standard-webhooks', prefix: 'webhook', sign: (secret: string, id: string, at: Date, body: string) => new StandardWebhook(secret.slice(6)).sign(id, at, body) },
    { type: 'svix', prefix: 'svix', sign: (secret: string, id: string, at: Date, body: string) => new SvixWebhook(secret).sign(id, at, body) },
    { type: 'clerk', prefix: 'svix', sign: (secret: string, id: string, at: Date, body: string) => new SvixWebhook(secret).sign(id, at, body) },
  ];
  for (const flavour of flavours) {
    describe(`${flavour.type} (${flavour.prefix}-* headers)`, () => {
      const headersFor = (secret: string, body: string, at = new Date()) => {
        const id = 'msg_' + randomBytes(8).toString('hex');
        return {
          'content-type': 'application/json',
          [`${flavour.prefix}-id`]: id,
          [`${flavour.prefix}-timestamp`]: String(Math.floor(at.getTime() / 1000)),
          [`${flavour.prefix}-signature`]: flavour.sign(secret, id, at, body),
        };
      };

      it('accepts a signed request and refuses one changed byte or the wrong secret', async () => {
        const secret = whsec();
        const source = await createSource(relay, flavour.type, { secret });
        const body = freshBody('user.updated');
        const id = accepted(await post(source.ingestUrl, body, headersFor(secret, body)));
        assert.equal((await getMessage(relay, source.appId, id)).eventType, 'user.updated');

        const other = freshBody();
        assert.match(refused(await post(source.ingestUrl, tamper(other), headersFor(secret, other))), /no signature matches/);
        refused(await post(source.ingestUrl, other, headersFor(whsec(), other)));
        assert.deepEqual(await messageIds(relay, source.appId), [id]);
      });

      it('refuses stale and future timestamps, naming which and the tolerance', async () => {
        const secret = whsec();
        const source = await createSource(relay, flavour.type, { secret });
        const body = freshBody();
        const old = refused(await post(source.ingestUrl, body, headersFor(secret, body, new Date(Date.now() - 400_000))));
        assert.match(old, /old/);
        assert.match(old, /tolerance of 300 s/);
        const future = refused(await post(source.ingestUrl, body, headersFor(secret, body, new Date(Date.now() + 400_000))));
        assert.match(future, /future/);
        assert.match(future, /tolerance of 300 s/);

        const wide = await createSource(relay, flavour.type, { secret, tolerance: 600 });
        accepted(await post(wide.ingestUrl, body, headersFor(secret, body, new Date(Date.now() - 400_000))));
      });

      it('accepts a request signed with an additional secret during a rotation', async () => {
        const [current, next] = [whsec(), whsec()];
        const source = await createSource(relay, flavour.type, { secret: current, additionalSecrets: [next] });
        for (const secret of [current, next]) {
          const body = freshBody();
          accepted(await post(source.ingestUrl, body, headersFor(secret, body)));
        }
        const body = freshBody();
        refused(await post(source.ingestUrl, body, headersFor(whsec(), body)));
      });
    });
  }

  describe('generic verifiers', () => {
    const mac = (alg: string, secret: string, content: string, encoding: 'hex' | 'base64') => createHmac(alg, secret).update(content).digest(encoding);

    const cases = [
      { name: 'sha256 hex after a prefix', config: { algorithm: 'sha256', encoding: 'hex', header: 'X-Signature', prefix: 'sha256=' }, header: 'x-signature', value: (s: string, b: string) => 'sha256=' + mac('sha256', s, b, 'hex') },
      { name: 'sha1 base64', config: { algorithm: 'sha1', encoding: 'base64', header: 'x-sig' }, header: 'x-sig', value: (s: string, b: string) => mac('sha1', s, b, 'base64') },
      { name: 'sha512 hex', config: { algorithm: 'sha512', header: 'x-sig-512' }, header: 'x-sig-512', value: (s: string, b: string) => mac('sha512', s, b, 'hex') },
      { name: 'sha512 base64 after a prefix', config: { algorithm: 'sha512', encoding: 'base64', header: 'x-sig', prefix: 'v1=' }, header: 'x-sig', value: (s: string, b: string) => 'v1=' + mac('sha512', s, b, 'base64') },
    ];
    for (const c of cases) {
      it(`hmac: ${c.name}`, async () => {
        const secret = 'key-' + randomUUID();
        const source = await createSource(relay, 'hmac', { secret, ...c.config, eventTypeField: 'type' });
        const body = freshBody('invoice.created');
        const id = accepted(await post(source.ingestUrl, body, { 'content-type': 'application/json', [c.header]: c.value(secret, body) }));
        assert.equal((await getMessage(relay, source.appId, id)).eventType, 'invoice.created');

        const other = freshBody();
        refused(await post(source.ingestUrl, tamper(other), { 'content-type': 'application/json', [c.header]: c.value(secret, other) }));
        refused(await post(source.ingestUrl, other, { 'content-type': 'application/json', [c.header]: c.value('wrong', other) }));
        assert.match(refused(await post(source.ingestUrl, other, { 'content-type': 'application/json' })), new RegExp(`missing ${c.header}`));
        assert.deepEqual(await messageIds(relay, source.appId), [id]);
      });
    }

    it('hmac: a timestamp header folded in by the template {timestamp}.{body}, with its tolerance', async () => {
      const secret = 'key-' + randomUUID();
      const source = await createSource(relay, 'hmac', { secret, header: 'x-signature', timestampHeader: 'X-Timestamp', template: '{timestamp}.{body}', tolerance: 120 });
      const signed = (body: string, ts: number, key = secret) => ({ 'content-type': 'application/json', 'x-timestamp': String(ts), 'x-signature': mac('sha256', key, `${ts}.${body}`, 'hex') });

      const body = freshBody();
      accepted(await post(source.ingestUrl, body, signed(body, nowSec())));
      const other = freshBody();
      // The body alone, without the timestamp, is not what this source signs.
      refused(await post(source.ingestUrl, other, { 'content-type': 'application/json', 'x-timestamp': String(nowSec()), 'x-signature': mac('sha256', secret, other, 'hex') }));
      // Moving the timestamp breaks the signature.
      refused(await post(source.ingestUrl, other, { ...signed(other, nowSec()), 'x-timestamp': String(nowSec() - 5) }));
      refused(await post(source.ingestUrl, tamper(other), signed(other, nowSec())));
      const old = refused(await post(source.ingestUrl, other, signed(other, nowSec() - 200)));
      assert.match(old, /old/);
      assert.match(old, /tolerance of 120 s/);
      assert.match(refused(await post(source.ingestUrl, other, signed(other, nowSec() + 200))), /future.*tolerance of 120 s/);
      assert.match(refused(await post(source.ingestUrl, other, { 'content-type': 'application/json', 'x-signature': 'ab' })), /x-timestamp/);
      assert.equal((await messageIds(relay, source.appId)).length, 1);
    });

    it('basic-auth: the right user and password are accepted, anything else is 401', async () => {
      const source = await createSource(relay, 'basic-auth', { username: 'hooks', password: 'p@ss:word ✓' });
      const basic = (user: string, password: string) => 'Basic ' + Buffer.from(`${user}:${password}`).toString('base64');
      accepted(await post(source.ingestUrl, freshBody(), { 'content-type': 'application/json', authorization: basic('hooks', 'p@ss:word ✓') }));
      refused(await post(source.ingestUrl, freshBody(), { 'content-type': 'application/json', authorization: basic('hooks', 'p@ss:word') }));
      refused(await post(source.ingestUrl, freshBody(), { 'content-type': 'application/json', authorization: basic('other', 'p@ss:word ✓') }));
      refused(await post(source.ingestUrl, freshBody(), { 'content-type': 'application/json', authorization: 'Bearer hooks' }));
      refused(await post(source.ingestUrl, freshBody(), { 'content-type': 'application/json' }));
      assert.equal((await messageIds(relay, source.appId)).length, 1);
    });

    it('api-key: Authorization Bearer by default, or a custom header without prefix', async () => {
      const key = 'k_' + randomUUID();
      const bearer = await createSource(relay, 'api-key', { secret: key });
      accepted(await post(bearer.ingestUrl, freshBody(), { 'content-type': 'application/json', authorization: `Bearer ${key}` }));
      refused(await post(bearer.ingestUrl, freshBody(), { 'content-type': 'application/json', authorization: `Bearer ${key}x` }));
      refused(await post(bearer.ingestUrl, freshBody(), { 'content-type': 'application/json', authorization: key }));
      refused(await post(bearer.ingestUrl, freshBody(), { 'content-type': 'application/json', 'x-api-key': key }));

      const custom = await createSource(relay, 'api-key', { secret: key, additionalSecrets: ['k_next'], header: 'X-Api-Key', prefix: '' });
      accepted(await post(custom.ingestUrl, freshBody(), { 'content-type': 'application/json', 'x-api-key': key }));
      accepted(await post(custom.ingestUrl, freshBody(), { 'content-type': 'application/json', 'x-api-key': 'k_next' }));
      refused(await post(custom.ingestUrl, freshBody(), { 'content-type': 'application/json', authorization: `Bearer ${key}` }));
      assert.match(refused(await post(custom.ingestUrl, freshBody(), { 'content-type': 'application/json', 'x-api-key': 'k_other' })), /x-api-key/);
    });

    for (const type of ['none', 'generic-webhook']) {
      it(`${type}: refused at creation (422) unless insecure: true, then accepts anything, marked unverified`, async () => {
        for (const config of [{}, { insecure: false }]) {
          const response = await relay.api('POST', '/ingest/api/v1/source', { name: `${type}-refused`, type, config });
          assert.equal(response.status, 422, response.text);
          assert.ok(
            response.body.detail.some((d: { loc: string[] }) => d.loc.join('.') === 'body.config.insecure'),
            response.text,
          );
        }
        const source = await createSource(relay, type, { insecure: true });
        const id = accepted(await post(source.ingestUrl, 'anything at all', { 'content-type': 'text/plain' }));
        assert.equal((await getMessage(relay, source.appId, id)).payload, 'anything at all');
      });
    }

    it('generic-webhook created through the svix SDK (which always sends config {}) is refused with 422', async () => {
      const svix = new Svix(relay.adminToken, { serverUrl: relay.url });
      await assert.rejects(svix.ingest.source.create({ name: 'sdk-generic', type: 'generic-webhook' }), (error: { code?: number; body?: any }) => {
        assert.equal(error.code, 422);
        assert.ok(error.body.detail.some((d: { loc: string[] }) => d.loc.join('.') === 'body.config.insecure'));
        return true;
      });
    });
  });
});
