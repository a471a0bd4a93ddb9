import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Webhook } from 'standardwebhooks';
import { startReceiver, type Receiver } from '../../helpers/receiver.js';
import { startRelay, type TestRelay } from '../../helpers/relay.js';
import { accepted, addEndpoint, createSource, getMessage, headersOf, messageIds, post, refused, tamper } from '../support.js';

// GitLab publishes no signer/verifier library; the secret token is a plain header compare, and the signing token is
// Standard Webhooks, so those requests are signed with the official `standardwebhooks` package.
const whsec = () => 'whsec_' + randomBytes(32).toString('base64');
const pushBody = () => JSON.stringify({ object_kind: 'push', event_name: 'push', ref: 'refs/heads/main', checkout_sha: randomBytes(20).toString('hex'), note: randomUUID() });

function tokenHeaders(token: string, idempotencyKey = randomUUID()): Record<string, string> {
  return { 'content-type': 'application/json', 'x-gitlab-event': 'Push Hook', 'x-gitlab-token': token, 'x-gitlab-event-uuid': randomUUID(), 'idempotency-key': idempotencyKey };
}

/** What GitLab sends for a hook with a signing token: webhook-id is the Idempotency-Key. */
function signedHeaders(signingToken: string, body: string, idempotencyKey = randomUUID(), at = new Date()): Record<string, string> {
  return {
    'content-type': 'application/json',
    'x-gitlab-event': 'Push Hook',
    'idempotency-key': idempotencyKey,
    'webhook-id': idempotencyKey,
    'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
    'webhook-signature': new Webhook(signingToken).sign(idempotencyKey, at, body),
  };
}

describe('gitlab provider', () => {
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

  describe('secret token (X-Gitlab-Token)', () => {
    it('accepts the right token with X-Gitlab-Event as the event type, and refuses a wrong or missing token', async () => {
      const token = 'gl-' + randomUUID();
      const source = await createSource(relay, 'gitlab', { secret: token });
      const id = accepted(await post(source.ingestUrl, pushBody(), tokenHeaders(token)));
      assert.equal((await getMessage(relay, source.appId, id)).eventType, 'Push_Hook');

      assert.match(refused(await post(source.ingestUrl, pushBody(), tokenHeaders(token + 'x'))), /wrong token in X-Gitlab-Token/);
      assert.match(refused(await post(source.ingestUrl, pushBody(), tokenHeaders(token.slice(0, -1)))), /wrong token/);
      const { 'x-gitlab-token': _, ...without } = tokenHeaders(token);
      assert.match(refused(await post(source.ingestUrl, pushBody(), without)), /missing X-Gitlab-Token header/);
      assert.deepEqual(await messageIds(relay, source.appId), [id]);
    });

    it('accepts a token from additionalSecrets during a rotation', async () => {
      const [current, next] = ['gl-current-' + randomUUID(), 'gl-next-' + randomUUID()];
      const source = await createSource(relay, 'gitlab', { secret: current, additionalSecrets: [next] });
      accepted(await post(source.ingestUrl, pushBody(), tokenHeaders(current)));
      accepted(await post(source.ingestUrl, pushBody(), tokenHeaders(next)));
      refused(await post(source.ingestUrl, pushBody(), tokenHeaders('gl-retired')));
    });

    it('drops a retry with the same Idempotency-Key, and falls back to X-Gitlab-Event-UUID without one', async () => {
      const token = 'gl-' + randomUUID();
      const source = await createSource(relay, 'gitlab', { secret: token });
      const key = randomUUID();
      const first = accepted(await post(source.ingestUrl, pushBody(), tokenHeaders(token, key)));
      // GitLab retries keep the Idempotency-Key; the event UUID header is not what dedupe goes by then.
      const retry = await post(source.ingestUrl, pushBody(), tokenHeaders(token, key));
      assert.equal(accepted(retry, true), first);

      const uuid = randomUUID();
      const old = { 'content-type': 'application/json', 'x-gitlab-event': 'Push Hook', 'x-gitlab-token': token, 'x-gitlab-event-uuid': uuid };
      const second = accepted(await post(source.ingestUrl, pushBody(), old));
      assert.equal(accepted(await post(source.ingestUrl, pushBody(), old), true), second);
      assert.equal((await messageIds(relay, source.appId)).length, 2);
    });

    it('forwards the GitLab event headers but never the secret token', async () => {
      const token = 'gl-' + randomUUID();
      const source = await createSource(relay, 'gitlab', { secret: token });
      await addEndpoint(relay, source.id, receiver.url);
      const key = randomUUID();
      accepted(await post(source.ingestUrl, pushBody(), tokenHeaders(token, key)));
      const [delivery] = (await receiver.waitFor(1, 10_000)).filter((r) => r.headers['idempotency-key'] === key);
      assert.ok(delivery, 'the delivery carries the Idempotency-Key');
      const headers = headersOf(delivery);
      assert.equal(headers['x-gitlab-event'], 'Push Hook');
      assert.equal(headers['x-gitlab-token'], undefined);
      assert.ok(!Object.values(headers).includes(token), 'the token appears in no forwarded header');
    });
  });

  describe('signing token (Standard Webhooks headers)', () => {
    it('accepts a request signed with the signing token and refuses a changed byte or another token', async () => {
      const signingToken = whsec();
      const source = await createSource(relay, 'gitlab', { signingToken });
      const body = pushBody();
      const key = randomUUID();
      const id = accepted(await post(source.ingestUrl, body, signedHeaders(signingToken, body, key)));
      assert.equal((await getMessage(relay, source.appId, id)).eventType, 'Push_Hook');
      // A redelivery is the same Idempotency-Key (= webhook-id), signed afresh.
      assert.equal(accepted(await post(source.ingestUrl, body, signedHeaders(signingToken, body, key)), true), id);

      const other = pushBody();
      assert.match(refused(await post(source.ingestUrl, tamper(other), signedHeaders(signingToken, other))), /no signature matches/);
      assert.match(refused(await post(source.ingestUrl, other, signedHeaders(whsec(), other))), /no signature matches/);
      // Without the signature, a source that has a signing token refuses even a request with a token header.
      assert.match(refused(await post(source.ingestUrl, other, tokenHeaders('anything'))), /missing webhook-id, webhook-timestamp or webhook-signature/);
      assert.deepEqual(await messageIds(relay, source.appId), [id]);
    });

    it('refuses a signature timestamp outside the tolerance (old or future), and honours a source tolerance', async () => {
      const signingToken = whsec();
      const source = await createSource(relay, 'gitlab', { signingToken });
      const body = pushBody();
      const old = refused(await post(source.ingestUrl, body, signedHeaders(signingToken, body, randomUUID(), new Date(Date.now() - 400_000))));
      assert.match(old, /old, outside the tolerance of 300 s/);
      const future = refused(await post(source.ingestUrl, body, signedHeaders(signingToken, body, randomUUID(), new Date(Date.now() + 400_000))));
      assert.match(future, /future, outside the tolerance of 300 s/);

      const lenient = await createSource(relay, 'gitlab', { signingToken, tolerance: 600 });
      accepted(await post(lenient.ingestUrl, body, signedHeaders(signingToken, body, randomUUID(), new Date(Date.now() - 400_000))));
    });

    it('accepts a request signed with one of additionalSigningTokens', async () => {
      const [current, next] = [whsec(), whsec()];
      const source = await createSource(relay, 'gitlab', { signingToken: current, additionalSigningTokens: [next] });
      const body = pushBody();
      accepted(await post(source.ingestUrl, body, signedHeaders(next, body)));
      refused(await post(source.ingestUrl, body, signedHeaders(whsec(), body)));
    });

    it('with both a secret token and a signing token, requires both', async () => {
      const token = 'gl-' + randomUUID();
      const signingToken = whsec();
      const source = await createSource(relay, 'gitlab', { secret: token, signingToken });
      const body = pushBody();
      const both = { ...signedHeaders(signingToken, body), 'x-gitlab-token': token };
      accepted(await post(source.ingestUrl, body, both));
      assert.match(refused(await post(source.ingestUrl, body, { ...signedHeaders(signingToken, body), 'x-gitlab-token': 'wrong' })), /wrong token/);
      assert.match(refused(await post(source.ingestUrl, body, tokenHeaders(token))), /missing webhook-id/);
    });
  });

  it('validates the config and never returns the tokens', async () => {
    const none = await relay.api('POST', '/ingest/api/v1/source', { name: 'gl', type: 'gitlab', config: {} });
    assert.equal(none.status, 422, none.text);
    assert.match(none.text, /secret token\), signingToken, or both/);
    const malformed = await relay.api('POST', '/ingest/api/v1/source', { name: 'gl', type: 'gitlab', config: { signingToken: 'not base64!' } });
    assert.equal(malformed.status, 422, malformed.text);
    assert.deepEqual(malformed.body.detail[0].loc, ['body', 'config', 'signingToken']);

    const signingToken = whsec();
    const created = await relay.api('POST', '/ingest/api/v1/source', { name: 'gl', type: 'gitlab', config: { secret: 'gl-token', signingToken, additionalSigningTokens: [whsec()] } });
    assert.equal(created.status, 201, created.text);
    const fetched = await relay.api('GET', `/ingest/api/v1/source/${created.body.id}`);
    for (const text of [created.text, fetched.text]) {
      assert.ok(!text.includes('gl-token') && !text.includes(signingToken.slice(6)), text);
      assert.ok(!/signingToken|additionalSigningTokens/i.test(text), text);
    }
  });
});
