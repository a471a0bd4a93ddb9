/**
 * Per-endpoint rate limit (`rateLimit`, messages per second): sends start at least 1/rate apart, with no burst
 * credit for idle time. The endpoint row keeps the earliest start of its next send (`nextSendAt`); a claim reserves
 * the slots that begin within the look-ahead window and moves it on, under the claim's lock on the endpoint, so
 * every process on a shared store draws from one budget. The dispatcher starts each reserved send at its slot.
 */

/** How far ahead a claim reserves slots: long enough to batch claims at high rates, short enough to hold few leases. */
export const RATE_LOOKAHEAD_MS = 250;

/**
 * The earliest slot a claim reserves lies this far after the claim's `now`, so that it is still ahead when the claim
 * has returned and the send can start on time: a first send started late by the claim's own latency would come
 * closer than 1/rate to the next one. It delays the first message after a pause by this much.
 */
export const RATE_CLAIM_MARGIN_MS = 50;

/** More than any batch: the quota of an endpoint without a rate limit. */
export const UNLIMITED = 2 ** 31 - 1;

export const interval = (rate: number) => 1000 / rate;

const firstSlot = (nextSendAt: number | null, now: number) => Math.max(nextSendAt ?? 0, now + RATE_CLAIM_MARGIN_MS);

/** How many sends may be reserved at `now`: the slots from the next free one up to `now + RATE_LOOKAHEAD_MS`. */
export function sendQuota(rate: number | null, nextSendAt: number | null, now: number): number {
  if (rate === null || rate <= 0) return UNLIMITED;
  const first = firstSlot(nextSendAt, now);
  if (first > now + RATE_LOOKAHEAD_MS) return 0;
  return Math.min(UNLIMITED, Math.floor((now + RATE_LOOKAHEAD_MS - first) / interval(rate)) + 1);
}

/** The start times of `count` reserved sends, and the endpoint's next free slot after them. */
export function reserveSlots(rate: number, nextSendAt: number | null, now: number, count: number): { slots: number[]; nextSendAt: number } {
  const first = firstSlot(nextSendAt, now);
  const step = interval(rate);
  const slots = Array.from({ length: count }, (_, i) => Math.ceil(first + i * step));
  return { slots, nextSendAt: Math.ceil(first + count * step) };
}

/** When the dispatcher should claim again for an endpoint whose next free slot is `nextSendAt`: half a window before it. */
export function reclaimAt(nextSendAt: number): number {
  return nextSendAt - RATE_LOOKAHEAD_MS / 2;
}
