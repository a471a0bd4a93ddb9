import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Webhook as StandardWebhook } from 'standardwebhooks';
import { Webhook as SvixWebhook } from 'svix1';
import { constantTimeEqual, generateSecret, secretKey, sign, signatureHeaders } from '../../src/signing/standard-webhooks.js';

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
