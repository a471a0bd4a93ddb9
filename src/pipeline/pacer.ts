import { interval, reclaimAt } from '../domain/rate.js';
import type { ClaimedDelivery } from '../domain/types.js';

/** A pacer nobody sent through for this long is forgotten. */
const IDLE_MS = 60_000;

/**
 * The dispatcher's side of endpoint rate limits (the store reserves send slots, domain/rate.ts). A rate-limited send
 * starts at its reserved slot, and never less than 1/rate after the previous send this dispatcher actually started
 * to the endpoint: one that started late (a slow claim, a busy event loop) pushes the next ones back instead of
 * bunching them. It also remembers when to claim again for each endpoint, before its reserved slots run out.
 */
export class SendPacer {
  /** Per endpoint: when to claim again for it. */
  private readonly wakes = new Map<string, number>();
  /** Per endpoint: when the last send started, the sends waiting for their turn, and when it was last used. */
  private readonly lanes = new Map<string, { lastStart: number; queue: Promise<void>; usedAt: number }>();

  constructor(
    private readonly now: () => number,
    /** Cuts every wait short (shutdown). */
    private readonly signal: AbortSignal,
  ) {}

  /** At each claim: wake-ups that are due have done their work; lanes unused for a minute go. */
  claiming(at: number): void {
    for (const [endpointId, wakeAt] of this.wakes) if (wakeAt <= at) this.wakes.delete(endpointId);
    for (const [endpointId, lane] of this.lanes) if (lane.usedAt < at - IDLE_MS) this.lanes.delete(endpointId);
  }

  /** Remembers when to claim again for the rate-limited endpoints of this claim: before their reserved slots run out. */
  claimed(claimed: ClaimedDelivery[]): void {
    for (const { endpoint, notBefore } of claimed) {
      if (notBefore === undefined || endpoint.rateLimit === null) continue;
      const at = reclaimAt(notBefore + 1000 / endpoint.rateLimit);
      if (at > (this.wakes.get(endpoint.id) ?? -Infinity)) this.wakes.set(endpoint.id, at);
    }
  }

  /** `wait`, or less when a rate-limited endpoint's next slots come up sooner (at least 1 ms). */
  shorten(wait: number): number {
    for (const at of this.wakes.values()) wait = Math.min(wait, Math.max(at - this.now(), 1));
    return wait;
  }

  /** Resolves when `claimed` (which has a reserved slot) may be sent, or at once on shutdown. */
  turn(claimed: ClaimedDelivery): Promise<void> {
    const { endpoint, notBefore } = claimed;
    let lane = this.lanes.get(endpoint.id);
    if (!lane) this.lanes.set(endpoint.id, (lane = { lastStart: -Infinity, queue: Promise.resolve(), usedAt: 0 }));
    const own = lane;
    own.usedAt = this.now();
    own.queue = own.queue.then(async () => {
      await this.hold(Math.max(notBefore!, own.lastStart + interval(endpoint.rateLimit ?? Infinity)) - this.now());
      own.lastStart = this.now();
    });
    return own.queue;
  }

  private hold(ms: number): Promise<void> {
    const signal = this.signal;
    if (ms <= 0 || signal.aborted) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      signal.addEventListener('abort', done, { once: true });
      function done() {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve();
      }
    });
  }
}
