import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createPublicKey, verify } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { SealedStore } from '../../src/secrets/sealed-store.js';
import { startReceiver, type Receiver, type Received } from '../helpers/receiver.js';
import { startRelay, type TestRelay } from '../helpers/relay.js';
import { waitUntil } from '../helpers/wait.js';
import { skipReason } from '../temporal/harness.js';
import { createApp, headerOf, send, verifySignature } from './support.js';

/**
 * Endpoints that sign with Ed25519 (`signing: "ed25519"`, Standard Webhooks `v1a`): real deliveries verified by Node's
 * `crypto.verify` and, independently, by Python's `cryptography` (test/signing/ed25519_check.py), with nothing but the
 * `whpk_` public key the API hands out.
 */

const SCRIPT = fileURLToPath(new URL('../../../test/signing/ed25519_check.py', import.meta.url));

function pythonMissing(): string | null {
  const probe = spawnSync('python3', ['-c', 'import cryptography.hazmat.primitives.asymmetric.ed25519'], { encoding: 'utf8' });
  if (probe.error) return `python3 is not available (${probe.error.message})`;
  if (probe.status !== 0) return 'the Python package `cryptography` is not installed (run scripts/ci/temporal.sh, or `python3 -m pip install cryptography`)';
  return null;
}
const missing = pythonMissing();

/** Whether Node verifies one of the request's v1a signatures with the whpk_ key, over the exact bytes received. */
function nodeVerifies(request: Received, publicKey: string, header = 'webhook-signature'): boolean {
  const x = Buffer.from(publicKey.replace(/^whpk_/, ''), 'base64').toString('base64url');
  const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x }, format: 'jwk' });
  const content = Buffer.concat([Buffer.from(`${headerOf(request, 'webhook-id')}.${headerOf(request, 'webhook-timestamp')}.`), request.body]);
  return headerOf(request, header)
    .split(' ')
    .filter((s) => s.startsWith('v1a,'))
    .some((s) => verify(null, content, key, Buffer.from(s.slice(4), 'base64')));
}

/** For each key, whether Python's `cryptography` verifies one of the request's v1a signatures with it. */
function pythonVerifies(request: Received, publicKeys: string[]): boolean[] {
  const input = { publicKeys, id: headerOf(request, 'webhook-id'), timestamp: headerOf(request, 'webhook-timestamp'), body: request.body.toString('base64'), signature: headerOf(request, 'webhook-signature') };
  const run = spawnSync('python3', [SCRIPT], { input: JSON.stringify(input), encoding: 'utf8', timeout: 20_000 });
  assert.equal(run.status, 0, `ed25519_check.py failed: ${run.stderr}`);
  return (JSON.parse(run.stdout) as { verified: boolean[] }).verified;
}

describe('Ed25519 (v1a) endpoint signatures', { skip: skipReason(missing) }, () => {
  let relay: TestRelay;
  let receiver: Receiver;
  let appId: string;
  before(async () => {
    if (missing) throw new Error(`CI=true and ${missing}`);
    relay = await startRelay();
    receiver = await startReceiver();
    appId = await createApp(relay);
  });
  after(async () => {
    await relay?.close();
    await receiver?.close();
  });

  /** The request of message `id` at `path` (every endpoint here posts to its own path on one receiver). */
  const delivered = async (id: string, path: string): Promise<Received> =>
    (await waitUntil(`delivery of ${id} to ${path}`, () => receiver.received.find((r) => r.headers['webhook-id'] === id && r.path === `/webhook${path}`)))!;

  it('signs deliveries with v1a under both header names; Node and Python verify them with the public key alone', async () => {
    const created = await relay.api('POST', `/api/v1/app/${appId}/endpoint`, { url: `${receiver.url}/first`, signing: 'ed25519', filterTypes: ['first.test'] });
    assert.equal(created.status, 201, created.text);
    assert.equal(created.body.signing, 'ed25519');
    assert.match(created.body.publicKey, /^whpk_[A-Za-z0-9+/]{43}=$/);
    // What the svix SDK reads as the endpoint's secret is the public key: the private half never leaves hookrelay.
    const { key } = await relay.svix.endpoint.getSecret(appId, created.body.id);
    assert.equal(key, created.body.publicKey);

    const payload = { order: 1042, note: 'naïve café ☃ 𝄞' };
    const request = await delivered(await send(relay, appId, payload, 'first.test'), '/first');
    assert.deepEqual(JSON.parse(request.body.toString('utf8')), payload);
    const signature = headerOf(request, 'webhook-signature');
    assert.match(signature, /^v1a,[A-Za-z0-9+/]{86}==$/);
    assert.equal(headerOf(request, 'svix-signature'), signature);
    assert.equal(nodeVerifies(request, key), true);
    assert.deepEqual(pythonVerifies(request, [key]), [true]);

    // A tampered body or another endpoint's key does not verify.
    const other = await relay.api('POST', `/api/v1/app/${appId}/endpoint`, { url: `${receiver.url}/other`, signing: 'ed25519', filterTypes: ['never.sent'] });
    assert.equal(nodeVerifies({ ...request, body: Buffer.from(request.body.toString().replace('1042', '1043')) }, key), false);
    assert.deepEqual(pythonVerifies(request, [other.body.publicKey]), [false]);
  });

  it('keeps the private key sealed at rest: the store holds no whsk_ text', async () => {
    const created = await relay.api('POST', `/api/v1/app/${appId}/endpoint`, { url: `${receiver.url}/sealed`, signing: 'ed25519', filterTypes: ['never.sent'] });
    const inner = (relay.store as SealedStore).inner;
    assert.ok(inner, 'the relay store is the sealing layer');
    const raw = await inner.getEndpoint(appId, created.body.id);
    assert.equal(raw!.secrets.length, 1);
    assert.doesNotMatch(raw!.secrets[0].key, /whsk_/);
    assert.ok(!JSON.stringify(created.body).includes('whsk_'));
  });

  it('rotation: the previous key keeps signing beside the new one, so either public key verifies', async () => {
    const created = await relay.api('POST', `/api/v1/app/${appId}/endpoint`, { url: `${receiver.url}/rotate`, signing: 'ed25519', filterTypes: ['rotate.test'] });
    const oldKey = created.body.publicKey as string;
    const rotated = await relay.api('POST', `/api/v1/app/${appId}/endpoint/${created.body.id}/secret/rotate`, {});
    assert.equal(rotated.status, 200, rotated.text);
    const newKey = rotated.body.key as string;
    assert.match(newKey, /^whpk_/);
    assert.notEqual(newKey, oldKey);
    assert.equal((await relay.svix.endpoint.getSecret(appId, created.body.id)).key, newKey);

    const request = await delivered(await send(relay, appId, { rotated: true }, 'rotate.test'), '/rotate');
    assert.equal(headerOf(request, 'webhook-signature').split(' ').length, 2);
    assert.equal(nodeVerifies(request, oldKey), true);
    assert.equal(nodeVerifies(request, newKey), true);
    assert.deepEqual(pythonVerifies(request, [oldKey, newKey]), [true, true]);
  });

  it('moving an HMAC endpoint to ed25519 signs v1 with the old secret and v1a with the new key during the overlap', async () => {
    const created = await relay.api('POST', `/api/v1/app/${appId}/endpoint`, { url: `${receiver.url}/move`, filterTypes: ['move.test'] });
    assert.equal(created.body.signing, 'hmac');
    assert.equal(created.body.publicKey, null);
    const { key: hmacSecret } = await relay.svix.endpoint.getSecret(appId, created.body.id);
    const patched = await relay.api('PATCH', `/api/v1/app/${appId}/endpoint/${created.body.id}`, { signing: 'ed25519' });
    assert.equal(patched.status, 200, patched.text);
    assert.equal(patched.body.signing, 'ed25519');

    const request = await delivered(await send(relay, appId, { moved: true }, 'move.test'), '/move');
    assert.deepEqual(verifySignature(request, hmacSecret), { moved: true });
    assert.equal(nodeVerifies(request, patched.body.publicKey), true);
    assert.deepEqual(pythonVerifies(request, [patched.body.publicKey]), [true]);
  });

  it('PUT creates an ed25519 endpoint under a new uid, and switches an existing one back to HMAC with the overlap', async () => {
    const put = await relay.api('PUT', `/api/v1/app/${appId}/endpoint/put-made`, { url: `${receiver.url}/put`, uid: 'put-made', signing: 'ed25519', filterTypes: ['put.test'] });
    assert.equal(put.status, 201, put.text);
    assert.equal(put.body.signing, 'ed25519');
    const replaced = await relay.api('PUT', `/api/v1/app/${appId}/endpoint/put-made`, { url: `${receiver.url}/put`, uid: 'put-made', signing: 'hmac', filterTypes: ['put.test'] });
    assert.equal(replaced.status, 200, replaced.text);
    assert.equal(replaced.body.signing, 'hmac');
    assert.equal(replaced.body.publicKey, null);
    const { key: hmacSecret } = await relay.svix.endpoint.getSecret(appId, 'put-made');
    assert.match(hmacSecret, /^whsec_/);
    // A PUT that leaves signing out keeps the scheme (no rotation).
    const again = await relay.api('PUT', `/api/v1/app/${appId}/endpoint/put-made`, { url: `${receiver.url}/put`, uid: 'put-made', filterTypes: ['put.test'] });
    assert.equal(again.body.signing, 'hmac');
    assert.equal((await relay.svix.endpoint.getSecret(appId, 'put-made')).key, hmacSecret);

    const request = await delivered(await send(relay, appId, { put: true }, 'put.test'), '/put');
    assert.deepEqual(verifySignature(request, hmacSecret), { put: true });
    assert.equal(nodeVerifies(request, put.body.publicKey), true, 'the previous Ed25519 key keeps signing for the overlap');
  });

  it('refuses a private key from outside, with a 422 naming the field', async () => {
    const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
    const create = await relay.api('POST', `/api/v1/app/${appId}/endpoint`, { url: receiver.url, signing: 'ed25519', secret });
    assert.equal(create.status, 422, create.text);
    assert.deepEqual(create.body.detail[0].loc, ['body', 'secret']);
    const unknown = await relay.api('POST', `/api/v1/app/${appId}/endpoint`, { url: receiver.url, signing: 'rsa' });
    assert.equal(unknown.status, 422, unknown.text);
    assert.deepEqual(unknown.body.detail[0].loc, ['body', 'signing']);

    const created = await relay.api('POST', `/api/v1/app/${appId}/endpoint`, { url: `${receiver.url}/refuse`, signing: 'ed25519', filterTypes: ['never.sent'] });
    const rotate = await relay.api('POST', `/api/v1/app/${appId}/endpoint/${created.body.id}/secret/rotate`, { key: secret });
    assert.equal(rotate.status, 422, rotate.text);
    assert.deepEqual(rotate.body.detail[0].loc, ['body', 'key']);
    const patch = await relay.api('PATCH', `/api/v1/app/${appId}/endpoint/${created.body.id}`, { signing: 'ed25519', secret });
    assert.equal(patch.status, 422, patch.text);
    // Nothing changed: the same public key.
    assert.equal((await relay.svix.endpoint.getSecret(appId, created.body.id)).key, created.body.publicKey);
  });
});
