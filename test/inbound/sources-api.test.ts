import { sign as githubSign } from '@octokit/webhooks-methods';
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import Stripe from 'stripe';
import { ApiException, Svix } from 'svix1';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { startRelay, type TestRelay } from '../helpers/relay.js';
import { waitUntil } from '../helpers/wait.js';
import { accepted, messageIds, post, refused, verifyDelivery } from './support.js';

/** An SDK call's rejection: its HTTP status and parsed body. */
async function rejection(call: Promise<unknown>): Promise<{ status: number; body: any }> {
  try {
    await call;
  } catch (error) {
    assert.ok(error instanceof ApiException, `expected ApiException, got ${String(error)}`);
    return { status: error.code, body: error.body };
  }
  assert.fail('the call succeeded');
}

/** The two provider types the svix SDK and hookrelay share, with how each signs a request. */
const providers = [
  {
    type: 'github' as const,
    secret: () => 'gh-secret-' + randomUUID(),
    async headers(secret: string, body: string) {
      return { 'content-type': 'application/json', 'x-github-event': 'ping', 'x-github-delivery': randomUUID(), 'x-hub-signature-256': await githubSign(secret, body) };
    },
  },
  {
    type: 'stripe' as const,
    secret: () => 'whsec_' + randomBytes(18).toString('hex'),
    async headers(secret: string, body: string) {
      return { 'content-type': 'application/json', 'stripe-signature': Stripe.webhooks.generateTestHeaderString({ payload: body, secret }) };
    },
  },
];

describe('sources API through the official svix SDK (svix.ingest)', () => {
  let relay: TestRelay;
  let receiver: Receiver;
  let svix: Svix;
  /** Every response body the SDK received, to prove no secret ever leaves the server. */
  const responses: string[] = [];
  before(async () => {
    relay = await startRelay();
    receiver = await startReceiver(() => ({ status: 200 }));
    const recording: typeof fetch = async (input, init) => {
      const response = await fetch(input, init);
      responses.push(await response.clone().text());
      return response;
    };
    svix = new Svix(relay.adminToken, { serverUrl: relay.url, fetch: recording });
  });
  after(async () => {
    await relay.close();
    await receiver.close();
  });

  for (const provider of providers) {
    it(`${provider.type}: source create/get/list/update/rotateToken/delete, and the ingest URL works`, async () => {
      const secret = provider.secret();
      const uid = `${provider.type}-src-${randomUUID().slice(0, 8)}`;
      const body = () => `{"id":"evt_${randomBytes(6).toString('hex')}","type":"ping.sent","zen":"Keep it logically awesome."}`;
      responses.length = 0;

      const created = await svix.ingest.source.create({ name: `${provider.type} source`, uid, type: provider.type, config: { secret } });
      assert.match(created.id, /^src_/);
      assert.equal(created.type, provider.type);
      assert.equal(created.uid, uid);
      assert.equal(created.name, `${provider.type} source`);
      assert.ok(created.ingestUrl!.startsWith(`${relay.url}/ingest/`), created.ingestUrl!);
      assert.ok(created.createdAt.getTime() > Date.now() - 60_000);

      assert.equal((await svix.ingest.source.get(created.id)).ingestUrl, created.ingestUrl);
      assert.equal((await svix.ingest.source.get(uid)).id, created.id);
      const listed = await svix.ingest.source.list({ limit: 250 });
      assert.ok(listed.data.some((s) => s.id === created.id && s.type === provider.type));

      // The ingest URL takes a request the provider signs; it becomes a message of the source's app.
      const appId = (await relay.api('GET', `/ingest/api/v1/source/${created.id}`)).body.appId;
      let payload = body();
      const first = accepted(await post(created.ingestUrl!, payload, await provider.headers(secret, payload)));
      assert.deepEqual(await messageIds(relay, appId), [first]);

      // Update: a new name and a new secret, which takes effect at once.
      const newSecret = provider.secret();
      const updated = await svix.ingest.source.update(created.id, { name: 'renamed', uid, type: provider.type, config: { secret: newSecret } });
      assert.equal(updated.name, 'renamed');
      assert.equal(updated.id, created.id);
      payload = body();
      refused(await post(created.ingestUrl!, payload, await provider.headers(secret, payload)));
      accepted(await post(created.ingestUrl!, payload, await provider.headers(newSecret, payload)));

      // Rotating the token moves the ingest URL; the old one is gone at once.
      const rotated = await svix.ingest.source.rotateToken(created.id);
      assert.notEqual(rotated.ingestUrl, created.ingestUrl);
      assert.equal((await svix.ingest.source.get(created.id)).ingestUrl, rotated.ingestUrl);
      payload = body();
      const old = await post(created.ingestUrl!, payload, await provider.headers(newSecret, payload));
      assert.equal(old.status, 404, old.text);
      assert.equal(old.body.code, 'not_found');
      accepted(await post(rotated.ingestUrl, payload, await provider.headers(newSecret, payload)));
      assert.equal((await messageIds(relay, appId)).length, 3);

      for (const text of responses) {
        assert.ok(!text.includes(secret), `a response contained the first secret: ${text}`);
        assert.ok(!text.includes(newSecret), `a response contained the new secret: ${text}`);
      }
      const raw = await relay.api('GET', `/ingest/api/v1/source/${created.id}`);
      assert.ok(!raw.text.includes(newSecret));
      assert.ok(!(await relay.api('GET', '/ingest/api/v1/source?limit=250')).text.includes(newSecret));

      await svix.ingest.source.delete(created.id);
      assert.equal((await rejection(svix.ingest.source.get(created.id))).status, 404);
      assert.ok(!(await svix.ingest.source.list({ limit: 250 })).data.some((s) => s.id === created.id));
      payload = body();
      assert.equal((await post(rotated.ingestUrl, payload, await provider.headers(newSecret, payload))).status, 404);
    });

    it(`${provider.type}: source endpoints create/get/list/update/getSecret/rotateSecret/getHeaders/updateHeaders/delete`, async () => {
      const secret = provider.secret();
      const source = await svix.ingest.source.create({ name: `${provider.type} with endpoints`, type: provider.type, config: { secret } });
      const ingest = async () => {
        const payload = `{"id":"evt_${randomBytes(6).toString('hex')}","type":"ping.sent"}`;
        return accepted(await post(source.ingestUrl!, payload, await provider.headers(secret, payload)));
      };
      const delivered = (id: string) => waitUntil(`delivery of ${id}`, () => receiver.received.find((r) => r.headers['webhook-id'] === id));

      const endpoint = await svix.ingest.endpoint.create(source.id, { url: receiver.url, uid: `ep-${randomUUID().slice(0, 8)}`, description: 'forwarder', metadata: { team: 'billing' } });
      assert.match(endpoint.id, /^ep_/);
      assert.equal(endpoint.url, receiver.url);
      assert.equal(endpoint.description, 'forwarder');
      assert.deepEqual(endpoint.metadata, { team: 'billing' });
      assert.equal((await svix.ingest.endpoint.get(source.id, endpoint.id)).uid, endpoint.uid);
      assert.deepEqual(
        (await svix.ingest.endpoint.list(source.id)).data.map((e) => e.id),
        [endpoint.id],
      );

      const { key: firstKey } = await svix.ingest.endpoint.getSecret(source.id, endpoint.id);
      assert.match(firstKey, /^whsec_/);
      verifyDelivery(firstKey, (await delivered(await ingest()))!);

      await svix.ingest.endpoint.rotateSecret(source.id, endpoint.id);
      const { key: secondKey } = await svix.ingest.endpoint.getSecret(source.id, endpoint.id);
      assert.notEqual(secondKey, firstKey);
      verifyDelivery(secondKey, (await delivered(await ingest()))!);

      await svix.ingest.endpoint.updateHeaders(source.id, endpoint.id, { headers: { 'X-Team': 'payments' } });
      const headers = await svix.ingest.endpoint.getHeaders(source.id, endpoint.id);
      assert.equal(headers.headers['X-Team'], 'payments');
      assert.equal((await delivered(await ingest()))!.headers['x-team'], 'payments');

      const updated = await svix.ingest.endpoint.update(source.id, endpoint.id, { url: receiver.url + '?v=2', description: 'moved' });
      assert.equal(updated.url, receiver.url + '?v=2');
      assert.equal(updated.description, 'moved');
      const moved = await ingest();
      assert.equal((await delivered(moved))!.path, '/webhook?v=2');

      await svix.ingest.endpoint.delete(source.id, endpoint.id);
      assert.equal((await rejection(svix.ingest.endpoint.get(source.id, endpoint.id))).status, 404);
      assert.deepEqual((await svix.ingest.endpoint.list(source.id)).data, []);
      // Endpoints of a source are reachable only under that source.
      const otherSource = await svix.ingest.source.create({ name: 'other', type: provider.type, config: { secret } });
      const foreign = await svix.ingest.endpoint.create(otherSource.id, { url: receiver.url });
      assert.equal((await rejection(svix.ingest.endpoint.get(source.id, foreign.id))).status, 404);
    });
  }

  describe('refusals', () => {
    it('invalid config is 422 naming the field', async () => {
      const hmacWithoutHeader = await relay.api('POST', '/ingest/api/v1/source', { name: 'bad', type: 'hmac', config: { secret: 's' } });
      assert.equal(hmacWithoutHeader.status, 422, hmacWithoutHeader.text);
      assert.ok(hmacWithoutHeader.body.detail.some((d: { loc: string[] }) => d.loc.join('.') === 'body.config.header'), hmacWithoutHeader.text);

      const badLimit = await relay.api('POST', '/ingest/api/v1/source', { name: 'bad', type: 'stripe', config: { secret: 'whsec_x', maxBodyBytes: 0 } });
      assert.equal(badLimit.status, 422, badLimit.text);
      assert.ok(badLimit.body.detail.some((d: { loc: string[] }) => d.loc.join('.') === 'body.config.maxBodyBytes'), badLimit.text);

      const typo = await relay.api('POST', '/ingest/api/v1/source', { name: 'bad', type: 'stripe', config: { secrett: 'whsec_x' } });
      assert.equal(typo.status, 422, typo.text);
      assert.match(typo.text, /secret/);

      const templateWithoutTimestamp = await relay.api('POST', '/ingest/api/v1/source', { name: 'bad', type: 'hmac', config: { secret: 's', header: 'x-sig', template: '{timestamp}.{body}' } });
      assert.equal(templateWithoutTimestamp.status, 422, templateWithoutTimestamp.text);
      assert.ok(templateWithoutTimestamp.body.detail.some((d: { loc: string[] }) => d.loc.join('.') === 'body.config.template'), templateWithoutTimestamp.text);

      // Through the SDK: a Stripe source needs its secret.
      const { status, body } = await rejection(svix.ingest.source.create({ name: 'no secret', type: 'stripe', config: {} as { secret: string } }));
      assert.equal(status, 422);
      assert.ok(body.detail.some((d: { loc: string[] }) => d.loc.join('.') === 'body.config.secret'), JSON.stringify(body));

      // A refused update leaves the source as it was.
      const source = await svix.ingest.source.create({ name: 'keep me', type: 'stripe', config: { secret: 'whsec_keep' } });
      const refusedUpdate = await rejection(svix.ingest.source.update(source.id, { name: 'changed', type: 'stripe', config: {} as { secret: string } }));
      assert.equal(refusedUpdate.status, 422);
      assert.equal((await svix.ingest.source.get(source.id)).name, 'keep me');
    });

    it('an unknown type is 422 listing the known types', async () => {
      const response = await relay.api('POST', '/ingest/api/v1/source', { name: 'bad', type: 'carrier-pigeon', config: {} });
      assert.equal(response.status, 422, response.text);
      const issue = response.body.detail.find((d: { loc: string[] }) => d.loc.join('.') === 'body.type');
      assert.ok(issue, response.text);
      for (const known of ['github', 'stripe', 'svix', 'standard-webhooks', 'hmac', 'basic-auth', 'api-key', 'generic-webhook']) assert.match(issue.msg, new RegExp(`\\b${known}\\b`));
    });

    it('a duplicate uid is 409', async () => {
      const uid = `dup-${randomUUID().slice(0, 8)}`;
      await svix.ingest.source.create({ name: 'first', uid, type: 'github', config: { secret: 'a' } });
      const { status, body } = await rejection(svix.ingest.source.create({ name: 'second', uid, type: 'stripe', config: { secret: 'whsec_b' } }));
      assert.equal(status, 409);
      assert.equal(body.code, 'conflict');
      assert.equal((await svix.ingest.source.list({ limit: 250 })).data.filter((s) => s.uid === uid).length, 1);
    });

    it('without a valid token every source call is 401, and nothing is created', async () => {
      const before = (await svix.ingest.source.list({ limit: 250 })).data.length;
      for (const token of [null, 'wrong-token']) {
        for (const [method, path, body] of [
          ['GET', '/ingest/api/v1/source'],
          ['POST', '/ingest/api/v1/source', { name: 'x', type: 'github', config: { secret: 'x' } }],
          ['GET', '/ingest/api/v1/source/src_anything'],
          ['POST', '/ingest/api/v1/source/src_anything/token/rotate'],
          ['GET', '/ingest/api/v1/source/src_anything/endpoint'],
        ] as [string, string, unknown?][]) {
          const response = await relay.api(method, path, body, { token });
          assert.equal(response.status, 401, `${method} ${path} without a valid token: ${response.text}`);
          assert.equal(response.body.code, 'unauthorized');
        }
      }
      const anonymous = new Svix('not-the-admin-token', { serverUrl: relay.url });
      assert.equal((await rejection(anonymous.ingest.source.list())).status, 401);
      assert.equal((await svix.ingest.source.list({ limit: 250 })).data.length, before);
    });
  });
});
