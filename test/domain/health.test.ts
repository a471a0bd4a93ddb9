import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cooldownFor, HEALTHY, nextHealth, slotFreedOnAnswer, summarizeHealth, type HealthPolicy } from '../../src/domain/health.js';
import { reserveSlots, sendQuota, UNLIMITED, RATE_CLAIM_MARGIN_MS, RATE_LOOKAHEAD_MS } from '../../src/domain/rate.js';

const policy: HealthPolicy = { threshold: 3, cooldownMs: 1_000, maxCooldownMs: 5_000, disableAfterMs: 0, disableAfterParked: 0 };

const outcome = (endpointId: string, startedAt: number, succeeded: boolean, next = succeeded ? 'succeeded' : 'retry') => ({
  attempt: { endpointId, succeeded, startedAt, durationMs: 10 },
  next: { kind: next },
});

describe('endpoint health rule', () => {
  it('summarizes a batch per endpoint in finish order: a success forgives what came before it', () => {
    const [a, b] = summarizeHealth([
      outcome('a', 100, false, 'parked'),
      outcome('b', 105, false),
      outcome('a', 110, true),
      outcome('a', 120, false),
      outcome('a', 130, false, 'parked'),
    ]);
    assert.deepEqual(a, { endpointId: 'a', succeeded: true, failures: 2, firstFailureAt: 120, parked: 1, gone: null, at: 140 });
    assert.deepEqual(b, { endpointId: 'b', succeeded: false, failures: 1, firstFailureAt: 105, parked: 0, gone: null, at: 115 });
  });

  it('doubles the cool-down with every trip, up to the maximum', () => {
    assert.deepEqual([0, 1, 2, 3, 50].map((trips) => cooldownFor(trips, policy)), [1_000, 2_000, 4_000, 5_000, 5_000]);
  });

  it('keeps counting while open, but only a failure after the cool-down re-opens it', () => {
    const report = (at: number, failures: number, succeeded = false) => ({ endpointId: 'e', succeeded, failures, firstFailureAt: failures ? at - 10 : null, parked: 0, gone: null, at });
    const opened = nextHealth(HEALTHY, false, report(100, 3), policy);
    assert.equal(opened.opened, true);
    assert.equal(opened.health.openUntil, 1_100);
    const stillOpen = nextHealth(opened.health, false, report(500, 2), policy);
    assert.deepEqual([stillOpen.opened, stillOpen.health.openUntil, stillOpen.health.consecutiveFailures], [false, 1_100, 5]);
    const probeFailed = nextHealth(stillOpen.health, false, report(1_200, 1), policy);
    assert.deepEqual([probeFailed.opened, probeFailed.health.openUntil, probeFailed.health.trips], [true, 3_200, 2]);
    const probeOk = nextHealth(probeFailed.health, false, report(3_300, 0, true), policy);
    assert.equal(probeOk.closed, true);
    assert.deepEqual(probeOk.health, HEALTHY);
    // Off: no trip however many failures.
    assert.equal(nextHealth(HEALTHY, false, report(100, 1_000), { ...policy, threshold: 0 }).opened, false);
  });
});

describe('rate-limit slots', () => {
  it('reserves the slots of the look-ahead window, 1/rate apart, from a margin after now or the next free slot', () => {
    assert.equal(sendQuota(null, null, 0), UNLIMITED);
    const window = Math.floor((RATE_LOOKAHEAD_MS - RATE_CLAIM_MARGIN_MS) / 50) + 1;
    assert.equal(sendQuota(20, null, 1_000), window);
    const { slots, nextSendAt } = reserveSlots(20, null, 1_000, 2);
    assert.deepEqual(slots, [1_000 + RATE_CLAIM_MARGIN_MS, 1_050 + RATE_CLAIM_MARGIN_MS]);
    assert.equal(nextSendAt, 1_100 + RATE_CLAIM_MARGIN_MS);
    assert.equal(sendQuota(1, 5_000, 1_000), 0, 'the next free slot is beyond the window');
    assert.equal(sendQuota(1, 5_000, 5_000 - RATE_LOOKAHEAD_MS), 1);
    // 3/s: slots never come closer than 1/rate, rounding included.
    const thirds = reserveSlots(3, null, 0, 4).slots;
    for (let i = 1; i < thirds.length; i++) assert.ok(thirds[i] - thirds[i - 1] >= 333);
  });
});

describe('when an answered attempt frees its endpoint slot', () => {
  it('at the answer for a success on an unordered endpoint with a closed circuit; otherwise only when its outcome is written', () => {
    assert.equal(slotFreedOnAnswer({ ordering: 'parallel', health: HEALTHY }, true), true);
    assert.equal(slotFreedOnAnswer({ ordering: 'parallel', health: HEALTHY }, false), false, 'a failure may open the circuit: no attempt past the threshold');
    assert.equal(slotFreedOnAnswer({ ordering: 'fifo', health: HEALTHY }, true), false, 'the next of a FIFO queue waits for the outcome of its head');
    assert.equal(slotFreedOnAnswer({ ordering: 'key', health: HEALTHY }, true), false, 'so does the next of a key');
    assert.equal(slotFreedOnAnswer({ ordering: 'parallel', health: { ...HEALTHY, openUntil: 1 } }, true), false, 'a half-open circuit probes once at a time');
  });
});
