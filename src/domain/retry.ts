/** Retry policy: the schedule is data; `nextAttemptDelay` is the one place that reads it. */
export interface RetryPolicy {
  /** Delay before each attempt, in ms; entry 0 is the first attempt (normally 0 = immediately). */
  scheduleMs: number[];
  /** Each delay is spread uniformly over ±jitter (0.2 = ±20 %), so retries after an outage do not arrive in lockstep. */
  jitter: number;
  /** Upper bound on a receiver's `Retry-After`, so a receiver cannot park a delivery for a year. */
  maxRetryAfterMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  scheduleMs: [0, 5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000],
  jitter: 0.2,
  maxRetryAfterMs: 86_400_000,
};

/**
 * Delay before the next attempt after `attemptsMade` failed ones, or null when the schedule is exhausted
 * and the delivery must be parked. A receiver's `Retry-After` can lengthen a delay, never shorten it.
 */
export function nextAttemptDelay(
  policy: RetryPolicy,
  attemptsMade: number,
  retryAfterMs: number | null = null,
  random: () => number = Math.random,
): number | null {
  if (attemptsMade >= policy.scheduleMs.length) return null;
  const base = policy.scheduleMs[attemptsMade];
  const jittered = base * (1 + policy.jitter * (2 * random() - 1));
  const floor = retryAfterMs === null ? 0 : Math.min(retryAfterMs, policy.maxRetryAfterMs);
  return Math.round(Math.max(jittered, floor));
}

/** `Retry-After` as seconds or an HTTP date; null when absent or unreadable. */
export function parseRetryAfter(value: string | string[] | undefined, now: number): number | null {
  const text = Array.isArray(value) ? value[0] : value;
  if (!text) return null;
  if (/^\d+$/.test(text.trim())) return Number(text.trim()) * 1000;
  const date = Date.parse(text);
  return Number.isNaN(date) ? null : Math.max(0, date - now);
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parses `0,5s,5m,30m,2h` (bare numbers are seconds) into ms; throws with the bad entry named. */
export function parseSchedule(text: string): number[] {
  return text.split(',').map((raw) => {
    const entry = raw.trim();
    const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(entry);
    if (!match) throw new Error(`invalid duration ${JSON.stringify(entry)} (use e.g. 0, 500ms, 5s, 5m, 2h)`);
    return Math.round(Number(match[1]) * UNIT_MS[match[2] ?? 's']);
  });
}
