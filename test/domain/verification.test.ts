import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Endpoint } from '../../src/domain/types.js';
import { NO_VERIFICATION, pendingVerification, verificationAfter, verificationAfterAttempt } from '../../src/domain/verification.js';
import { judgeHandshake } from '../../src/pipeline/handshake.js';

const NOW = 1_800_000_000_000;
const endpoint = (over: Partial<Endpoint>): Endpoint => ({ url: 'https://hooks.example.com/a', destination: null, verification: { ...NO_VERIFICATION }, ...over }) as Endpoint;
const verified = { mode: 'challenge' as const, state: 'verified' as const, attempts: 2, lastAttemptAt: NOW - 1000, nextAttemptAt: null, reason: null };

describe('registration handshake state (domain/verification.ts)', () => {
  it('starts a handshake on create with challenge, on switching to challenge and on a URL change; keeps it otherwise', () => {
    assert.deepEqual(verificationAfter(null, 'challenge', 'https://a.example', false, NOW), pendingVerification(NOW));
    assert.deepEqual(verificationAfter(null, undefined, 'https://a.example', false, NOW), NO_VERIFICATION);
    assert.deepEqual(verificationAfter(endpoint({}), 'challenge', 'https://hooks.example.com/a', false, NOW), pendingVerification(NOW));
    const challenged = endpoint({ verification: verified });
    assert.equal(verificationAfter(challenged, undefined, 'https://hooks.example.com/a', false, NOW), undefined);
    assert.equal(verificationAfter(challenged, 'challenge', 'https://hooks.example.com/a', false, NOW), undefined);
    assert.deepEqual(verificationAfter(challenged, undefined, 'https://hooks.example.com/b', false, NOW), pendingVerification(NOW, NOW - 1000));
    assert.deepEqual(verificationAfter(challenged, 'none', 'https://hooks.example.com/a', false, NOW), NO_VERIFICATION);
    assert.equal(verificationAfter(endpoint({}), 'none', 'https://hooks.example.com/a', false, NOW), undefined);
  });

  it('retries on the schedule, fails when it runs out or at once on a fatal result, and verifies on an echo', () => {
    const schedule = [5_000, 30_000];
    const first = verificationAfterAttempt(pendingVerification(NOW), { kind: 'retry', reason: 'status 503' }, schedule, NOW);
    assert.deepEqual(first, { mode: 'challenge', state: 'pending', attempts: 1, lastAttemptAt: NOW, nextAttemptAt: NOW + 5_000, reason: 'status 503' });
    const second = verificationAfterAttempt(first, { kind: 'retry', reason: 'wrong challenge' }, schedule, NOW + 5_000);
    assert.equal(second.nextAttemptAt, NOW + 35_000);
    const third = verificationAfterAttempt(second, { kind: 'retry', reason: 'timed out after 15000 ms' }, schedule, NOW + 35_000);
    assert.deepEqual(third, { mode: 'challenge', state: 'failed', attempts: 3, lastAttemptAt: NOW + 35_000, nextAttemptAt: null, reason: 'timed out after 15000 ms' });
    const refused = verificationAfterAttempt(pendingVerification(NOW), { kind: 'fatal', reason: 'refused: 10.0.0.5 is a private address' }, schedule, NOW);
    assert.equal(refused.state, 'failed');
    assert.equal(refused.attempts, 1);
    const ok = verificationAfterAttempt(first, { kind: 'verified' }, schedule, NOW + 5_000);
    assert.deepEqual(ok, { mode: 'challenge', state: 'verified', attempts: 2, lastAttemptAt: NOW + 5_000, nextAttemptAt: null, reason: null });
  });

  it('judges answers: only a 2xx echoing the exact challenge as JSON verifies', () => {
    const success = (responseBody: string, statusCode = 200) => ({ kind: 'success' as const, statusCode, responseBody });
    assert.deepEqual(judgeHandshake(success('{"challenge":"abc"}'), 'abc'), { kind: 'verified' });
    assert.deepEqual(judgeHandshake(success('{"challenge":"abc","extra":1}', 204), 'abc'), { kind: 'verified' });
    assert.deepEqual(judgeHandshake(success('{"challenge":"abd"}'), 'abc'), { kind: 'retry', reason: 'wrong challenge' });
    assert.deepEqual(judgeHandshake(success('{"challenge":"ab"}'), 'abc'), { kind: 'retry', reason: 'wrong challenge' });
    for (const body of ['abc', '"abc"', '["abc"]', '{"challenge":123}', 'null', '']) {
      assert.equal(judgeHandshake(success(body), 'abc').kind, 'retry', body);
    }
    assert.deepEqual(judgeHandshake({ kind: 'retry', statusCode: 500, responseBody: '{"challenge":"abc"}', error: null, retryAfterMs: null }, 'abc'), { kind: 'retry', reason: 'status 500' });
    assert.deepEqual(judgeHandshake({ kind: 'retry', statusCode: 0, responseBody: '', error: 'connect timed out', retryAfterMs: null }, 'abc'), { kind: 'retry', reason: 'connect timed out' });
    assert.deepEqual(judgeHandshake({ kind: 'gone', statusCode: 410, responseBody: '' }, 'abc'), { kind: 'retry', reason: 'status 410' });
    assert.deepEqual(judgeHandshake({ kind: 'fatal', statusCode: 0, responseBody: '', error: 'refused: x' }, 'abc'), { kind: 'fatal', reason: 'refused: x' });
  });
});
