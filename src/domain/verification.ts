import type { Endpoint, EndpointVerification, VerificationMode } from './types.js';

/**
 * The endpoint registration handshake (docs/api.md#registration-handshake), as data and pure functions: which state an
 * endpoint enters when it is created or changed, and what becomes of it after a handshake attempt. The runner that sends
 * the challenge is pipeline/handshake.ts.
 */

/** Delays before each retry of a handshake that did not verify; the first attempt goes at once. */
export const DEFAULT_VERIFICATION_SCHEDULE_MS = [5_000, 30_000, 120_000, 600_000, 1_800_000, 3_600_000];

/** An endpoint without a handshake: always deliverable. */
export const NO_VERIFICATION: Readonly<EndpointVerification> = Object.freeze({
  mode: 'none',
  state: 'verified',
  attempts: 0,
  lastAttemptAt: null,
  nextAttemptAt: null,
  reason: null,
});

/** A handshake (re)started at `now`: held, first attempt due at once. */
export function pendingVerification(now: number, lastAttemptAt: number | null = null): EndpointVerification {
  return { mode: 'challenge', state: 'pending', attempts: 0, lastAttemptAt, nextAttemptAt: now, reason: null };
}

/**
 * The verification an endpoint gets from a create or an update, or undefined when it stays as it is. Asking for
 * `challenge` (re)starts the handshake when the endpoint had none or its URL changes; `none` ends any handshake and
 * releases what it held. `mode` undefined keeps the endpoint's mode (a change of URL still restarts a challenge).
 */
export function verificationAfter(before: Endpoint | null, mode: VerificationMode | undefined, url: string, hasDestination: boolean, now: number): EndpointVerification | undefined {
  const wanted = mode ?? before?.verification.mode ?? 'none';
  if (wanted === 'none') return before === null || before.verification.mode !== 'none' ? { ...NO_VERIFICATION } : undefined;
  // Only HTTP endpoints have a URL that can answer; the API refuses `challenge` with a destination before this.
  if (hasDestination) return undefined;
  if (before === null || before.verification.mode !== 'challenge' || before.url !== url || before.destination !== null) {
    return pendingVerification(now, before?.verification.lastAttemptAt ?? null);
  }
  return undefined;
}

/** What one handshake attempt found out. */
export type HandshakeResult =
  | { kind: 'verified' }
  /** Worth trying again later (no answer, a non-2xx status, a wrong echo). */
  | { kind: 'retry'; reason: string }
  /** Waiting cannot help (the egress policy refused the address, the URL is unusable). */
  | { kind: 'fatal'; reason: string };

/** The endpoint's verification after an attempt made at `now` (`current.attempts` were made before it). */
export function verificationAfterAttempt(current: EndpointVerification, result: HandshakeResult, scheduleMs: readonly number[], now: number): EndpointVerification {
  const attempts = current.attempts + 1;
  if (result.kind === 'verified') return { mode: 'challenge', state: 'verified', attempts, lastAttemptAt: now, nextAttemptAt: null, reason: null };
  const delay = result.kind === 'retry' ? scheduleMs[attempts - 1] : undefined;
  if (delay === undefined) return { mode: 'challenge', state: 'failed', attempts, lastAttemptAt: now, nextAttemptAt: null, reason: result.reason };
  return { mode: 'challenge', state: 'pending', attempts, lastAttemptAt: now, nextAttemptAt: now + delay, reason: result.reason };
}
