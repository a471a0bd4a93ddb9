import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Webhook as StandardWebhook } from 'standardwebhooks';
import { Webhook as SvixWebhook } from 'svix1';
import { createPublicKey, verify } from 'node:crypto';
import {
  constantTimeEqual,
  ed25519Key,
  generateSecret,
  generateSigningKey,
  publicKeyOf,
  schemeOf,
  secretKey,
  shownSecret,
  sign,
  signatureHeaders,
  signingKey,
} from '../../src/signing/standard-webhooks.js';

// Conformance vectors published with the Standard Webhooks reference libraries (JS/Python/Go and Rust suites).
const VECTORS = [
  {
    secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
    id: 'msg_p5jXN8AQM9LWM0D4loKWxJek',
    timestamp: 1614265330,
    payload: '{"test": 2432232314}',
    signature: 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
  },
  {
    secret: 'whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD',
    id: 'msg_27UH4WbU6Z5A5EzD8u03UvzRbpk',
    timestamp: 1649367553,
    payload: '{"email":"test@example.com","username":"test_user"}',
    signature: 'v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=',
  },
];

// The asymmetric (`v1a`, Ed25519) vector published with the Standard Webhooks reference library (Go,
// TestAsymmetricWebhookSign): the key is base64 of the 32-byte seed "TESTSIGNINGKEYDONOTUSETHISFORANY".
const V1A_VECTOR = {
  key: 'whsk_VEVTVFNJR05JTkdLRVlET05PVFVTRVRISVNGT1JBTlk=',
  id: 'msg_p5jXN8AQM9LWM0D4loKWxJek',
  timestamp: 1614265330,
  payload: '{"test": 2432232314}',
  signature: 'v1a,tQ9V2XOqn7jL/DQenEFpqIugdBVtiMmER5mhSkXBNwM0mkATuDe6KYYUuxqtaiHeYGb7KaaBRdM5WqyeFiL8Ag==',
};

/** Node's own Ed25519 verifier, fed the raw 32-byte `whpk_` key as a JWK (nothing of hookrelay's signing code). */
function verifiesWith(publicKey: string, content: string, signature: string): boolean {
  assert.match(publicKey, /^whpk_/);
  assert.match(signature, /^v1a,/);
  const x = Buffer.from(publicKey.slice(5), 'base64');
  assert.equal(x.length, 32);
  const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: x.toString('base64url') }, format: 'jwk' });
  return verify(null, Buffer.from(content), key, Buffer.from(signature.slice(4), 'base64'));
}

describe('Standard Webhooks asymmetric signing (v1a, Ed25519)', () => {
  it('reproduces the published v1a vector', () => {
    assert.equal(sign(signingKey(V1A_VECTOR.key)!, V1A_VECTOR.id, V1A_VECTOR.timestamp, Buffer.from(V1A_VECTOR.payload)), V1A_VECTOR.signature);
  });

  it('publishes a whpk_ key under which Node verifies the vector, and which fails for another body', () => {
    const publicKey = publicKeyOf(V1A_VECTOR.key);
    const content = `${V1A_VECTOR.id}.${V1A_VECTOR.timestamp}.${V1A_VECTOR.payload}`;
    assert.equal(verifiesWith(publicKey, content, V1A_VECTOR.signature), true);
    assert.equal(verifiesWith(publicKey, content.replace('2432232314', '2432232315'), V1A_VECTOR.signature), false);
  });

  it('generates fresh 32-byte seeds, tells the schemes apart, and shows only the public half', () => {
    const [a, b] = [generateSigningKey(), generateSigningKey()];
    assert.notEqual(a, b);
    assert.match(a, /^whsk_[A-Za-z0-9+/]{43}=$/);
    assert.equal(schemeOf(a), 'ed25519');
    assert.equal(schemeOf(generateSecret()), 'hmac');
    assert.equal(shownSecret(a), publicKeyOf(a));
    assert.notEqual(publicKeyOf(a), publicKeyOf(b));
    const hmac = generateSecret();
    assert.equal(shownSecret(hmac), hmac);
    assert.equal(ed25519Key('whsk_c2hvcnQ='), null);
    assert.equal(ed25519Key(hmac), null);
  });

  it('signs over the exact bytes, including bytes that are not UTF-8', () => {
    const key = generateSigningKey();
    const payload = Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d]);
    const signature = sign(signingKey(key)!, 'msg_bytes', 1700000000, payload);
    const x = Buffer.from(publicKeyOf(key).slice(5), 'base64').toString('base64url');
    const pub = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x }, format: 'jwk' });
    assert.equal(verify(null, Buffer.concat([Buffer.from('msg_bytes.1700000000.'), payload]), pub, Buffer.from(signature.slice(4), 'base64')), true);
  });

  it('lists v1 and v1a signatures side by side during a move from HMAC to Ed25519', () => {
    const [hmac, ed] = [generateSecret(), generateSigningKey()];
    const payload = '{"moving":true}';
    const now = Math.floor(Date.now() / 1000);
    const headers = signatureHeaders([signingKey(ed)!, signingKey(hmac)!], 'msg_move', now, Buffer.from(payload));
    const [v1a, v1] = headers['webhook-signature'].split(' ');
    assert.equal(verifiesWith(publicKeyOf(ed), `msg_move.${now}.${payload}`, v1a), true);
    assert.match(v1, /^v1,/);
    assert.deepEqual(new SvixWebhook(hmac).verify(payload, headers), { moving: true });
    assert.equal(headers['svix-signature'], headers['webhook-signature']);
  });
});

describe('Standard Webhooks signing', () => {
  for (const [i, v] of VECTORS.entries()) {
    it(`reproduces conformance vector V${i + 1}`, () => {
      assert.equal(sign(secretKey(v.secret)!, v.id, v.timestamp, Buffer.from(v.payload)), v.signature);
    });
  }

  it('produces headers that the official standardwebhooks and svix libraries accept', () => {
    const secret = generateSecret();
    const payload = Buffer.from(JSON.stringify({ type: 'invoice.paid', data: { amount: 1200, note: 'naïve ✓' } }));
    const now = Math.floor(Date.now() / 1000);
    const headers = signatureHeaders([secretKey(secret)!], 'msg_abc', now, payload);
    assert.deepEqual(new StandardWebhook(secret.slice('whsec_'.length)).verify(payload.toString(), headers), JSON.parse(payload.toString()));
    assert.deepEqual(new SvixWebhook(secret).verify(payload.toString(), headers), JSON.parse(payload.toString()));
  });

  it('signs with every key during a rotation, so receivers holding either secret verify', () => {
    const [oldSecret, newSecret] = [generateSecret(), generateSecret()];
    const payload = Buffer.from('{"a":1}');
    const headers = signatureHeaders([secretKey(newSecret)!, secretKey(oldSecret)!], 'msg_rot', Math.floor(Date.now() / 1000), payload);
    assert.equal(headers['webhook-signature'].split(' ').length, 2);
    for (const secret of [oldSecret, newSecret]) assert.deepEqual(new SvixWebhook(secret).verify('{"a":1}', headers), { a: 1 });
    assert.throws(() => new SvixWebhook(generateSecret()).verify('{"a":1}', headers));
  });

  it('makes receivers reject a changed byte or an old timestamp', () => {
    const secret = generateSecret();
    const payload = Buffer.from('{"amount":100}');
    const fresh = signatureHeaders([secretKey(secret)!], 'msg_x', Math.floor(Date.now() / 1000), payload);
    assert.throws(() => new StandardWebhook(secret.slice(6)).verify('{"amount":101}', fresh));
    const stale = signatureHeaders([secretKey(secret)!], 'msg_x', Math.floor(Date.now() / 1000) - 301, payload);
    assert.throws(() => new StandardWebhook(secret.slice(6)).verify(payload.toString(), stale));
  });

  it('reads secrets with or without the whsec_ prefix and refuses keys that are not 24 to 64 bytes of base64', () => {
    const secret = generateSecret();
    assert.deepEqual(secretKey(secret), secretKey(secret.slice(6)));
    assert.equal(secretKey(secret)!.length, 24);
    assert.equal(secretKey('whsec_c2hvcnQ='), null);
    assert.equal(secretKey('whsec_not base64!'), null);
  });

  it('compares in constant time without throwing on different lengths', () => {
    assert.equal(constantTimeEqual('abc', 'abc'), true);
    assert.equal(constantTimeEqual('abc', 'abd'), false);
    assert.equal(constantTimeEqual('abc', 'abcd'), false);
  });
});
