import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHmac, generateKeyPairSync } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { compactDecrypt, exportJWK, generateKeyPair, type JWK } from 'jose';
import { startReceiver, type Receiver, type Received } from '../helpers/receiver.js';
import { startRelay, type TestRelay } from '../helpers/relay.js';
import { waitUntil } from '../helpers/wait.js';
import { createApp, headerOf } from './support.js';

/**
 * Endpoints that hold their owner's public keys get the payload as a JWE: decrypted here with `jose` and,
 * independently, with Python's `jwcrypto` (test/pipeline/jwe_decrypt.py, installed by scripts/ci/jwcrypto.sh).
 */

const SCRIPT = fileURLToPath(new URL('../../../test/pipeline/jwe_decrypt.py', import.meta.url));
const IN_CI = process.env.CI === 'true';

function jwcryptoMissing(): string | null {
  const probe = spawnSync('python3', ['-c', 'import jwcrypto.jwe'], { encoding: 'utf8' });
  if (probe.error) return `python3 is not available (${probe.error.message})`;
  if (probe.status !== 0) return 'the Python package `jwcrypto` is not installed (run scripts/ci/jwcrypto.sh)';
  return null;
}
const missing = jwcryptoMissing();

interface OwnerKey {
  kid: string;
  publicJwk: JWK;
  privateJwk: JWK;
  privateKey: Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
}

async function ownerKey(kid: string, alg: 'RSA-OAEP-256' | 'ECDH-ES+A256KW', crv?: 'P-256' | 'X25519'): Promise<OwnerKey> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { crv, extractable: true });
  return { kid, publicJwk: { ...(await exportJWK(publicKey)), kid }, privateJwk: await exportJWK(privateKey), privateKey };
}

function pythonDecrypts(token: string, key: JWK): { header: Record<string, string>; plaintext: Buffer } {
  const run = spawnSync('python3', [SCRIPT], { input: JSON.stringify({ token, key }), encoding: 'utf8', timeout: 20_000 });
  assert.equal(run.status, 0, `jwe_decrypt.py failed: ${run.stderr}`);
  const out = JSON.parse(run.stdout) as { header: Record<string, string>; plaintext: string };
  return { header: out.header, plaintext: Buffer.from(out.plaintext, 'base64') };
}

/** The Standard Webhooks HMAC over what was received, computed here with node:crypto, must be in the signature header. */
function assertSignedOverBody(request: Received, secret: string) {
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  const content = Buffer.concat([Buffer.from(`${headerOf(request, 'webhook-id')}.${headerOf(request, 'webhook-timestamp')}.`), request.body]);
  const expected = 'v1,' + createHmac('sha256', key).update(content).digest('base64');
  assert.ok(headerOf(request, 'webhook-signature').split(' ').includes(expected), 'the signature does not cover the delivered bytes');
}

// Spacing, a non-ASCII string and an integer beyond a double: a re-serialised payload would differ in its bytes.
const PAYLOAD = '{"order" :  1042, "note": "naïve café ☃ 𝄞", "big": 123456789012345678901234567890}';

describe('payload encryption to the endpoint owner\'s public key (JWE)', { skip: !IN_CI && missing ? (console.warn(`# SKIPPING: ${missing}`), missing) : false }, () => {
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

  const endpoint = async (path: string, eventType: string) => {
    const created = await relay.api('POST', `/api/v1/app/${appId}/endpoint`, { url: `${receiver.url}/${path}`, filterTypes: [eventType] });
    assert.equal(created.status, 201, created.text);
    const { key } = await relay.svix.endpoint.getSecret(appId, created.body.id);
    return { id: created.body.id as string, secret: key, keys: `/api/v1/app/${appId}/endpoint/${created.body.id}/encryption-key` };
  };
  const sendRaw = async (eventType: string): Promise<string> => {
    const response = await relay.api('POST', `/api/v1/app/${appId}/msg`, undefined, { rawBody: `{"eventType":"${eventType}","payload":${PAYLOAD}}`, headers: { 'content-type': 'application/json' } });
    assert.equal(response.status, 202, response.text);
    return response.body.id;
  };
  const delivered = async (id: string, path: string): Promise<Received> =>
    (await waitUntil(`delivery of ${id}`, () => receiver.received.find((r) => r.headers['webhook-id'] === id && r.path === `/webhook/${path}`)))!;

  for (const [name, make] of [
    ['RSA-OAEP-256 (RSA 2048)', () => ownerKey('rsa-1', 'RSA-OAEP-256')],
    ['ECDH-ES+A256KW (EC P-256)', () => ownerKey('ec-1', 'ECDH-ES+A256KW', 'P-256')],
    ['ECDH-ES+A256KW (X25519)', () => ownerKey('x-1', 'ECDH-ES+A256KW', 'X25519')],
  ] as const) {
    it(`${name}: the receiver gets a signed JWE that jose and jwcrypto decrypt to the exact payload bytes`, async () => {
      const owner = await make();
      const path = owner.kid;
      const ep = await endpoint(path, `enc.${path}`);
      const added = await relay.api('POST', ep.keys, owner.publicJwk);
      assert.equal(added.status, 201, added.text);
      assert.equal(added.body.kid, owner.kid);
      assert.equal(added.body.current, true);

      const msgId = await sendRaw(`enc.${path}`);
      const request = await delivered(msgId, path);
      assert.equal(request.headers['content-type'], 'application/jose');
      // The attempt shows the request as sent: the JWE's content type, and the signature over the JWE bytes.
      const attempt = await waitUntil('the attempt', async () => (await relay.api('GET', `/api/v1/app/${appId}/attempt/msg/${msgId}`)).body.data[0]);
      const sent = new Map<string, string>(attempt.request.headers);
      assert.equal(sent.get('content-type'), 'application/jose');
      assert.equal(sent.get('webhook-signature'), request.headers['webhook-signature']);
      const token = request.body.toString('ascii');
      assert.equal(token.split('.').length, 5, 'a JWE compact serialisation has five parts');
      assert.ok(!request.body.includes(Buffer.from('naïve')), 'the payload went in clear');
      assertSignedOverBody(request, ep.secret);

      const { plaintext, protectedHeader } = await compactDecrypt(token, owner.privateKey);
      assert.deepEqual(Buffer.from(plaintext), Buffer.from(PAYLOAD));
      assert.deepEqual(protectedHeader, { alg: added.body.alg, enc: 'A256GCM', kid: owner.kid, cty: 'application/json', ...(protectedHeader.epk ? { epk: protectedHeader.epk } : {}) });
      const python = pythonDecrypts(token, owner.privateJwk);
      assert.deepEqual(python.plaintext, Buffer.from(PAYLOAD));
      assert.equal(python.header.kid, owner.kid);
      assert.equal(python.header.cty, 'application/json');
    });
  }

  it('rotation: deliveries use the newest key; the old one can then be removed', async () => {
    const [first, second] = [await ownerKey('old', 'ECDH-ES+A256KW', 'P-256'), await ownerKey('new', 'RSA-OAEP-256')];
    const ep = await endpoint('rotate', 'enc.rotate');
    assert.equal((await relay.api('POST', ep.keys, first.publicJwk)).status, 201);
    const viaFirst = await delivered(await sendRaw('enc.rotate'), 'rotate');
    assert.deepEqual(Buffer.from((await compactDecrypt(viaFirst.body.toString(), first.privateKey)).plaintext), Buffer.from(PAYLOAD));

    assert.equal((await relay.api('POST', ep.keys, second.publicJwk)).status, 201);
    const listed = await relay.api('GET', ep.keys);
    assert.deepEqual(listed.body.data.map((k: { kid: string; current: boolean }) => [k.kid, k.current]), [['new', true], ['old', false]]);
    const viaSecond = await delivered(await sendRaw('enc.rotate'), 'rotate');
    const { protectedHeader } = await compactDecrypt(viaSecond.body.toString(), second.privateKey);
    assert.equal(protectedHeader.kid, 'new');
    await assert.rejects(compactDecrypt(viaSecond.body.toString(), first.privateKey));

    assert.equal((await relay.api('DELETE', `${ep.keys}/old`)).status, 204);
    assert.equal((await relay.api('DELETE', `${ep.keys}/old`)).status, 404);
    assert.deepEqual((await relay.api('GET', ep.keys)).body.data.map((k: { kid: string }) => k.kid), ['new']);

    // With every key removed, payloads go in clear again.
    assert.equal((await relay.api('DELETE', `${ep.keys}/new`)).status, 204);
    const clear = await delivered(await sendRaw('enc.rotate'), 'rotate');
    assert.equal(clear.headers['content-type'], 'application/json');
    assert.deepEqual(clear.body, Buffer.from(PAYLOAD));
  });

  it('refuses private keys, short RSA keys, other curves and garbage with a 422 that says why, and stores nothing', async () => {
    const ep = await endpoint('refused', 'enc.refused');
    const rsa = await ownerKey('rsa', 'RSA-OAEP-256');
    // jose refuses to make a key this short; node:crypto still will.
    const short = { ...generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'jwk' }), kid: 'short' };
    const p384 = await generateKeyPair('ECDH-ES+A256KW', { crv: 'P-384', extractable: true });
    const ed = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
    const cases: [string, unknown, (string | number)[], RegExp][] = [
      ['a private RSA key', { ...rsa.privateJwk, kid: 'p' }, ['body', 'd'], /private key/],
      ['a 1024-bit RSA key', short, ['body', 'n'], /1024-bit.*at least 2048/],
      ['a P-384 key', { ...(await exportJWK(p384.publicKey)), kid: 'p384' }, ['body', 'crv'], /P-256/],
      ['an Ed25519 key', { ...(await exportJWK(ed.publicKey)), kid: 'ed' }, ['body', 'crv'], /cannot encrypt/],
      ['a symmetric key', { kty: 'oct', k: 'c2VjcmV0', kid: 'oct' }, ['body', 'k'], /private key/],
      ['no kid', { ...rsa.publicJwk, kid: undefined }, ['body', 'kid'], /required/],
      ['garbage in n', { ...rsa.publicJwk, n: 'not base64url!' }, ['body', 'n'], /base64url/],
      ['a point off the curve', { kty: 'EC', crv: 'P-256', kid: 'off', x: 'AQ', y: 'AQ' }, ['body'], /not a valid EC public key/],
      ['a signing key', { ...rsa.publicJwk, use: 'sig' }, ['body', 'use'], /enc/],
    ];
    for (const [what, body, loc, msg] of cases) {
      const response = await relay.api('POST', ep.keys, body);
      assert.equal(response.status, 422, `${what}: ${response.text}`);
      assert.deepEqual(response.body.detail[0].loc, loc, what);
      assert.match(response.body.detail[0].msg, msg, what);
    }
    assert.deepEqual((await relay.api('GET', ep.keys)).body.data, []);
    assert.equal((await relay.api('POST', ep.keys, rsa.publicJwk)).status, 201);
    const again = await relay.api('POST', ep.keys, rsa.publicJwk);
    assert.equal(again.status, 422);
    assert.deepEqual(again.body.detail[0].loc, ['body', 'kid']);
    assert.equal((await relay.api('GET', ep.keys)).body.data.length, 1);
    // What is stored and shown is the public key only.
    assert.deepEqual(Object.keys((await relay.api('GET', ep.keys)).body.data[0].jwk).sort(), ['e', 'kid', 'kty', 'n']);
  });
});
