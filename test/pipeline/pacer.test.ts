import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { RATE_LOOKAHEAD_MS } from '../../src/domain/rate.js';
import type { ClaimedDelivery } from '../../src/domain/types.js';
import { SendPacer } from '../../src/pipeline/pacer.js';

/**
 * The pacing rules with an injected clock and Node's mocked timers: exact times, no loopback or scheduler jitter.
 * (test/pipeline/rate-limit.test.ts checks the same limits end to end through real receivers.)
 */

/** Every promise callback that can run now has run (setImmediate is not mocked). */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

function clock(t: TestContext) {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  let now = 0;
  return {
    now: () => now,
    /** Moves the clock and fires the timers due by then, then lets the promises they resolve run. */
    async advance(ms: number) {
      await settle();
      for (let i = 0; i < ms; i++) {
        now++;
        t.mock.timers.tick(1);
        await settle();
      }
    },
  };
}

const claimed = (endpointId: string, rateLimit: number, notBefore: number) => ({ endpoint: { id: endpointId, rateLimit }, notBefore }) as unknown as ClaimedDelivery;

/** Starts each claimed send's turn and records the clock when it came. */
function turns(pacer: SendPacer, now: () => number, items: ClaimedDelivery[]): number[] {
  const started: number[] = [];
  for (const item of items) void pacer.turn(item).then(() => started.push(now()));
  return started;
}

describe('send pacing (injected clock)', () => {
  it('starts each send at its reserved slot, in slot order, 1/rate apart', async (t) => {
    const c = clock(t);
    const pacer = new SendPacer(c.now, new AbortController().signal);
    const started = turns(pacer, c.now, [claimed('e', 10, 50), claimed('e', 10, 150), claimed('e', 10, 250)]);
    await c.advance(400);
    assert.deepEqual(started, [50, 150, 250]);
  });

  it('pushes the next sends back when one started late, instead of bunching them', async (t) => {
    const c = clock(t);
    const pacer = new SendPacer(c.now, new AbortController().signal);
    await c.advance(80);
    // The first slot (0) is already past: it starts now, at 80; the next ones keep 100 ms from it.
    const started = turns(pacer, c.now, [claimed('e', 10, 0), claimed('e', 10, 100), claimed('e', 10, 200)]);
    await c.advance(400);
    assert.deepEqual(started, [80, 180, 280]);
  });

  it('paces each endpoint on its own', async (t) => {
    const c = clock(t);
    const pacer = new SendPacer(c.now, new AbortController().signal);
    const a = turns(pacer, c.now, [claimed('a', 5, 10), claimed('a', 5, 210)]);
    const b = turns(pacer, c.now, [claimed('b', 20, 10), claimed('b', 20, 60)]);
    await c.advance(300);
    assert.deepEqual(a, [10, 210]);
    assert.deepEqual(b, [10, 60]);
  });

  it('lets every waiting send go at once on shutdown', async (t) => {
    const c = clock(t);
    const shutdown = new AbortController();
    const pacer = new SendPacer(c.now, shutdown.signal);
    const started = turns(pacer, c.now, [claimed('e', 1, 1_000), claimed('e', 1, 2_000)]);
    await c.advance(10);
    assert.deepEqual(started, []);
    shutdown.abort();
    await c.advance(1);
    assert.deepEqual(started, [10, 10], 'both went at the moment of the shutdown');
  });

  it('asks to claim again before the reserved slots run out, and forgets wake-ups that have passed', async (t) => {
    const c = clock(t);
    const pacer = new SendPacer(c.now, new AbortController().signal);
    assert.equal(pacer.shorten(5_000), 5_000, 'nothing reserved: the poll interval stands');
    pacer.claimed([claimed('e', 10, 100), claimed('e', 10, 200), { endpoint: { id: 'free', rateLimit: null } } as unknown as ClaimedDelivery]);
    // The last slot is at 200; the next would be at 300: claim again half a look-ahead window before it.
    const wakeAt = 300 - RATE_LOOKAHEAD_MS / 2;
    assert.equal(pacer.shorten(5_000), wakeAt);
    await c.advance(wakeAt + 10);
    assert.equal(pacer.shorten(5_000), 1, 'an overdue wake-up asks for a claim at once');
    pacer.claiming(c.now());
    assert.equal(pacer.shorten(5_000), 5_000, 'the claim took care of it');
  });
});
