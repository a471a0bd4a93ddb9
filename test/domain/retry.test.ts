import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_RETRY_POLICY, nextAttemptDelay, parseRetryAfter, parseSchedule } from '../../src/domain/retry.js';

describe('retry policy', () => {
  const policy = DEFAULT_RETRY_POLICY;

  it('follows the default schedule (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h) within ±20 % jitter', () => {
    for (let failed = 1; failed < policy.scheduleMs.length; failed++) {
      const base = policy.scheduleMs[failed];
      assert.equal(nextAttemptDelay(policy, failed, null, () => 0), Math.round(base * 0.8));
      assert.equal(nextAttemptDelay(policy, failed, null, () => 1), Math.round(base * 1.2));
      const delay = nextAttemptDelay(policy, failed)!;
      assert.ok(delay >= base * 0.8 && delay <= base * 1.2, `delay ${delay} for attempt ${failed}`);
    }
  });

  it('parks the delivery after the last scheduled attempt', () => {
    assert.equal(policy.scheduleMs.length, 8);
    assert.equal(nextAttemptDelay(policy, 8), null);
  });

  it('lets Retry-After lengthen a delay but never shorten it, and caps it', () => {
    assert.equal(nextAttemptDelay(policy, 1, 60_000, () => 0.5), 60_000);
    assert.equal(nextAttemptDelay(policy, 2, 1_000, () => 0.5), 300_000);
    assert.equal(nextAttemptDelay(policy, 1, 10 * 86_400_000, () => 0.5), policy.maxRetryAfterMs);
  });

  it('reads Retry-After as seconds or as an HTTP date', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    assert.equal(parseRetryAfter('120', now), 120_000);
    assert.equal(parseRetryAfter('Thu, 01 Jan 2026 00:00:30 GMT', now), 30_000);
    assert.equal(parseRetryAfter('soon', now), null);
    assert.equal(parseRetryAfter(undefined, now), null);
  });

  it('parses schedules with units and names a bad entry', () => {
    assert.deepEqual(parseSchedule('0, 500ms, 5s, 5m, 2h, 1d, 3'), [0, 500, 5000, 300_000, 7_200_000, 86_400_000, 3000]);
    assert.throws(() => parseSchedule('5s,soon'), /"soon"/);
  });
});
