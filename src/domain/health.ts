import type { Endpoint } from './types.js';

/**
 * Endpoint health: the circuit breaker and auto-disable. The state lives in the endpoint's row, so it survives
 * restarts and is shared by every process on a PostgreSQL store; it is updated once per endpoint per batch of
 * attempt outcomes. `nextHealth` is the rule; the PostgreSQL store applies the same rule in SQL (one statement per
 * batch) and the conformance suite holds both stores to it.
 */

export interface HealthPolicy {
  /** Consecutive failed attempts that open the circuit; 0 turns the breaker off. */
  threshold: number;
  /** Pause after the first trip; doubled on every trip that follows a failed probe. */
  cooldownMs: number;
  maxCooldownMs: number;
  /** Disable an endpoint whose attempts have all failed for this long (since its last success); 0 = never. */
  disableAfterMs: number;
  /** Disable an endpoint that had this many messages parked since its last success; 0 = never. */
  disableAfterParked: number;
}

export const DEFAULT_HEALTH_POLICY: HealthPolicy = {
  threshold: 5,
  cooldownMs: 30_000,
  maxCooldownMs: 600_000,
  disableAfterMs: 5 * 86_400_000,
  disableAfterParked: 1000,
};

export interface EndpointHealth {
  /** Failed attempts since the last successful one. */
  consecutiveFailures: number;
  /** When the first of those failures happened; null after a success. */
  failingSince: number | null;
  /** Messages parked (retries exhausted) since the last success. */
  parked: number;
  /** Set while the circuit is open: no delivery is claimed before then; after it, one probe at a time (half-open). */
  openUntil: number | null;
  /** Trips since the circuit was last closed; each one doubles the cool-down. */
  trips: number;
}

export const HEALTHY: EndpointHealth = { consecutiveFailures: 0, failingSince: null, parked: 0, openUntil: null, trips: 0 };

export type CircuitState = 'closed' | 'open' | 'half-open';

export function circuitState(health: EndpointHealth, now: number): CircuitState {
  if (health.openUntil === null) return 'closed';
  return health.openUntil > now ? 'open' : 'half-open';
}

/** What one batch of outcomes says about one endpoint, in the order the attempts finished. */
export interface HealthReport {
  endpointId: string;
  /** Some attempt succeeded: what came before it in the batch (and before the batch) is forgiven. */
  succeeded: boolean;
  /** Failed attempts after the batch's last success (all of them when none succeeded). */
  failures: number;
  /** When the first of those failed attempts started. */
  firstFailureAt: number | null;
  /** Deliveries parked after the batch's last success. */
  parked: number;
  /** Set when an attempt asked for the endpoint to be disabled (410 Gone). */
  gone: string | null;
  /** When the batch's last attempt finished: the clock of every decision. */
  at: number;
}

interface OutcomeLike {
  attempt: { endpointId: string; succeeded: boolean; startedAt: number; durationMs: number };
  next: { kind: string };
  disableEndpoint?: string;
}

/** One report per endpoint of the batch, outcomes taken in the order given (the order the attempts finished). */
export function summarizeHealth(outcomes: readonly OutcomeLike[]): HealthReport[] {
  const reports = new Map<string, HealthReport>();
  for (const { attempt, next, disableEndpoint } of outcomes) {
    let report = reports.get(attempt.endpointId);
    if (!report) {
      report = { endpointId: attempt.endpointId, succeeded: false, failures: 0, firstFailureAt: null, parked: 0, gone: null, at: 0 };
      reports.set(attempt.endpointId, report);
    }
    report.at = Math.max(report.at, attempt.startedAt + attempt.durationMs);
    if (disableEndpoint && report.gone === null) report.gone = disableEndpoint;
    if (attempt.succeeded) {
      Object.assign(report, { succeeded: true, failures: 0, firstFailureAt: null, parked: 0 });
      continue;
    }
    report.failures++;
    report.firstFailureAt ??= attempt.startedAt;
    if (next.kind === 'parked') report.parked++;
  }
  return [...reports.values()];
}

/** Whether a report can change a row in this state (a healthy endpoint that only succeeded is left unwritten). */
export function mayChange(health: EndpointHealth, report: HealthReport): boolean {
  return report.failures > 0 || report.gone !== null || health.consecutiveFailures > 0 || health.failingSince !== null || health.parked > 0 || health.openUntil !== null;
}

export function cooldownFor(trips: number, policy: HealthPolicy): number {
  return Math.min(policy.maxCooldownMs, policy.cooldownMs * 2 ** Math.min(trips, 30));
}

export interface HealthStep {
  health: EndpointHealth;
  /** The circuit opened (or re-opened after a failed probe) with this batch. */
  opened: boolean;
  /** The circuit was open or half-open and a success closed it. */
  closed: boolean;
  /** Why the endpoint is to be disabled now; null when it stays as it is (or already was disabled). */
  disable: string | null;
}

/**
 * The rule. Successes reset the counts; failures add to them. A closed circuit opens when the consecutive failures
 * reach the threshold. While open, failures of attempts that were already in flight change nothing; once the
 * cool-down is over (half-open) a failed attempt re-opens it for twice as long (up to the maximum), a success closes it.
 */
export function nextHealth(health: EndpointHealth, disabled: boolean, report: HealthReport, policy: HealthPolicy): HealthStep {
  const { succeeded, failures, at } = report;
  const consecutiveFailures = succeeded ? failures : health.consecutiveFailures + failures;
  const failingSince = succeeded ? report.firstFailureAt : (health.failingSince ?? report.firstFailureAt);
  const parked = succeeded ? report.parked : health.parked + report.parked;
  let openUntil = succeeded ? null : health.openUntil;
  let trips = succeeded ? 0 : health.trips;
  const trip = policy.threshold > 0 && failures > 0 && consecutiveFailures >= policy.threshold && (openUntil === null || openUntil <= at);
  if (trip) {
    openUntil = at + cooldownFor(trips, policy);
    trips++;
  }
  let disable: string | null = null;
  if (!disabled) {
    if (report.gone !== null) disable = report.gone;
    else if (policy.disableAfterMs > 0 && failingSince !== null && at - failingSince >= policy.disableAfterMs) disable = failingReason(policy);
    else if (policy.disableAfterParked > 0 && parked >= policy.disableAfterParked) disable = parkedReason(policy);
  }
  return {
    health: { consecutiveFailures, failingSince, parked, openUntil, trips },
    opened: trip,
    closed: health.openUntil !== null && succeeded && !trip,
    disable,
  };
}

export const failingReason = (policy: HealthPolicy) =>
  `every attempt failed for ${formatDuration(policy.disableAfterMs)} since the last successful delivery (HOOKRELAY_DISABLE_AFTER); re-enable with {"disabled": false}`;

export const parkedReason = (policy: HealthPolicy) =>
  `${policy.disableAfterParked} messages were parked since the last successful delivery (HOOKRELAY_DISABLE_AFTER_PARKED); re-enable with {"disabled": false}`;

function formatDuration(ms: number): string {
  for (const [unit, size] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

/** A change worth telling the operator about, as the store reports it after writing a batch. */
export interface HealthChange {
  endpointId: string;
  appId: string;
  opened: boolean;
  closed: boolean;
  disabled: string | null;
  consecutiveFailures: number;
  openUntil: number | null;
}

/**
 * Whether an attempt's slot of its endpoint's `maxInFlight` is free as soon as the receiver answered, before the
 * outcome is written: only for a success, on an unordered endpoint whose circuit is closed. Not after a failure (its
 * outcome may open the circuit, which must stop further attempts at the threshold), not for FIFO or key-ordered
 * endpoints (the next delivery of the queue or key waits for the outcome of the one before), nor for a half-open
 * circuit (one probe at a time, until its outcome has moved the circuit).
 */
export function slotFreedOnAnswer(endpoint: Pick<Endpoint, 'ordering' | 'health'>, succeeded: boolean): boolean {
  return succeeded && endpoint.ordering === 'parallel' && endpoint.health.openUntil === null;
}
