import { setMaxListeners } from 'node:events';
import type { Logger } from 'pino';
import { DEFAULT_HEALTH_POLICY, slotFreedOnAnswer, type HealthChange, type HealthPolicy } from '../domain/health.js';
import { ID_PREFIX, newId } from '../domain/ids.js';
import { nextAttemptDelay, type RetryPolicy } from '../domain/retry.js';
import type { Attempt, ClaimedDelivery } from '../domain/types.js';
import type { AttemptOutcome, DeliveryQueue } from '../store/store.js';
import type { Destination, SendResult } from './destinations/destination.js';
import type { Tracing } from '../observability/tracing.js';
import type { PipelineObserver } from './observer.js';
import { SendPacer } from './pacer.js';

const CLAIM_SPACING_MS = 3;
/** Waiting to claim a full batch never delays due work longer than this (attempts stuck on dead endpoints keep the room small). */
const CLAIM_MAX_DELAY_MS = 20;
const OUTCOME_BATCH = 256;
const OUTCOME_DELAY_MS = 1;

export interface DispatcherOptions {
  /** Identifies this dispatcher's leases. */
  owner: string;
  /** Attempts in flight across all endpoints. */
  maxInFlight: number;
  /** Deliveries leased per claim. */
  claimBatch: number;
  /** A lease outlives the attempt timeout; it is renewed while an attempt runs. */
  leaseMs: number;
  /** Longest sleep between claims when nothing wakes the dispatcher. */
  pollMs: number;
  retry: RetryPolicy;
  /** Circuit breaker and auto-disable. */
  health?: HealthPolicy;
  now?: () => number;
  /** Told of every attempt and every recorded batch (metrics, the attempt log, operational webhooks). */
  observer?: PipelineObserver;
  /** A span per attempt, child of its message's accepting span; absent when tracing is off. */
  tracing?: Tracing | null;
}

/**
 * Claims due deliveries, sends each through its destination, and reports the attempts in batches.
 * Claims are woken by accepts and by finished attempts; polling is only the fallback.
 */
export class Dispatcher {
  private readonly inFlight = new Map<number, Promise<void>>();
  /** Aborts attempts still in flight when the shutdown grace period is over. */
  private readonly shutdown = new AbortController();
  private outcomes: AttemptOutcome[] = [];
  private flushing: Promise<void> | null = null;
  /** Outcome batches being written: stop() waits for every one before it releases a lease. */
  private readonly writing = new Set<Promise<void>>();
  private renewing: Promise<void> | null = null;
  private running = false;
  private loop: Promise<void> | null = null;
  private readonly alarm = new Alarm();
  private renewTimer: NodeJS.Timeout | null = null;
  private stopWakeups: (() => void) | null = null;
  private readonly pacer: SendPacer;
  private readonly now: () => number;

  constructor(
    private readonly store: DeliveryQueue,
    private readonly destination: Destination,
    private readonly options: DispatcherOptions,
    private readonly log: Logger,
  ) {
    this.now = options.now ?? Date.now;
    // Every attempt in flight (and every paced send waiting for its slot) listens on this one signal.
    setMaxListeners(0, this.shutdown.signal);
    this.pacer = new SendPacer(this.now, this.shutdown.signal);
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
    this.renewTimer = setInterval(() => this.renewLeases(), Math.max(1000, this.options.leaseMs / 3));
    this.renewTimer.unref();
    // Other processes sharing the store say when they made work due (a hint: the loop polls anyway).
    this.stopWakeups = this.store.onWake?.(() => this.wake()) ?? null;
  }

  /** New work may be due (a message was accepted, a slot freed up): claim again without waiting for the poll. */
  wake(): void {
    this.alarm.ring();
  }

  get inFlightCount(): number {
    return this.inFlight.size;
  }

  /**
   * Stops claiming, lets attempts in flight finish for up to `graceMs`, then aborts the rest and returns their
   * leases, so a restart delivers them without waiting for the lease to expire. Leases are returned only after every
   * outcome is written: a lease released before its delivery's outcome is committed would send that delivery again.
   */
  async stop(graceMs: number): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.stopWakeups?.();
    this.wake();
    await this.loop;
    if (this.renewTimer) clearInterval(this.renewTimer);
    const drained = Promise.all(this.inFlight.values());
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([drained, new Promise((resolve) => (timer = setTimeout(resolve, graceMs)))]);
    clearTimeout(timer);
    if (this.inFlight.size > 0) {
      this.log.warn({ inFlight: this.inFlight.size }, 'grace period over: aborting attempts still in flight');
      this.shutdown.abort();
      await drained;
    }
    await this.flushOutcomes();
    await Promise.all([...this.writing, this.renewing]);
    await this.store.releaseLeases(this.options.owner);
  }

  private async run(): Promise<void> {
    // Under load, claim in batches rather than once per finished attempt: each claim is a transaction.
    const batchRoom = Math.max(1, Math.min(this.options.claimBatch, Math.floor(this.options.maxInFlight / 4)));
    let lastClaimAt = 0;
    // Something may be claimable (a wake-up, or a sleep that ended) and no claim has looked since.
    let wanted = true;
    while (this.running) {
      // take() first: it must clear the alarm on every turn (a `wanted ||=` would skip it while wanted is set).
      wanted = this.alarm.take() || wanted;
      const room = this.options.maxInFlight - this.inFlight.size;
      let claimed: ClaimedDelivery[] = [];
      if (this.inFlight.size > 0) {
        const wait = lastClaimAt + CLAIM_SPACING_MS - this.now();
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      }
      const overdue = wanted && this.now() - lastClaimAt >= CLAIM_MAX_DELAY_MS;
      if (room > 0 && (this.inFlight.size === 0 || room >= batchRoom || overdue)) {
        wanted = false;
        lastClaimAt = this.now();
        this.pacer.claiming(lastClaimAt);
        try {
          claimed = await this.store.claim({
            owner: this.options.owner,
            now: this.now(),
            limit: Math.min(room, this.options.claimBatch),
            leaseMs: this.options.leaseMs,
          });
        } catch (error) {
          this.log.error({ err: error }, 'claiming deliveries failed; backing off');
          await this.alarm.sleep(this.options.pollMs);
          continue;
        }
        // Rate-limited sends take turns per endpoint in the order of their slots.
        if (claimed.some((c) => c.notBefore !== undefined)) claimed.sort((a, b) => (a.notBefore ?? 0) - (b.notBefore ?? 0));
        for (const item of claimed) this.launch(item);
        this.pacer.claimed(claimed);
      }
      if (claimed.length > 0 && claimed.length === Math.min(room, this.options.claimBatch)) {
        await new Promise((resolve) => setImmediate(resolve));
        continue;
      }
      if (this.alarm.rung) continue;
      // Work is waiting for a claim that the batch rule holds back: claim as soon as the rule lets it.
      await this.alarm.sleep(wanted && room > 0 ? Math.max(1, lastClaimAt + CLAIM_MAX_DELAY_MS - this.now()) : await this.untilNextDue());
      wanted = true;
    }
  }

  private async untilNextDue(): Promise<number> {
    // A rate-limited endpoint's next slots may come up before anything else wakes the dispatcher.
    const wait = this.pacer.shorten(this.options.pollMs);
    // With attempts in flight, each finished batch wakes the dispatcher; the poll is only the fallback.
    if (this.inFlight.size > 0) return wait;
    try {
      const due = await this.store.nextDueAt();
      if (due === null) return wait;
      return Math.min(wait, Math.max(due - this.now(), 50));
    } catch {
      return wait;
    }
  }

  private launch(claimed: ClaimedDelivery): void {
    const id = claimed.delivery.id;
    const attempt = (claimed.notBefore === undefined ? this.attempt(claimed) : this.paced(claimed)).finally(() => this.inFlight.delete(id));
    this.inFlight.set(id, attempt);
  }

  /** A rate-limited send waits leased for its turn (pacer.ts); shutdown cuts the wait short (the lease is released in stop()). */
  private async paced(claimed: ClaimedDelivery): Promise<void> {
    await this.pacer.turn(claimed);
    if (!this.shutdown.signal.aborted) await this.attempt(claimed);
  }

  private async attempt(claimed: ClaimedDelivery): Promise<void> {
    const startedAt = this.now();
    const span = this.options.tracing?.attempt(claimed, startedAt) ?? null;
    if (span) claimed.traceparent = span.traceparent;
    let result: SendResult;
    try {
      result = await this.destination.send(claimed, this.shutdown.signal);
    } catch (error) {
      result = { kind: 'retry', statusCode: 0, responseBody: '', error: `destination failed: ${(error as Error).message}`, retryAfterMs: null };
    }
    // Aborted by shutdown: the lease is released in stop(); the attempt does not count against the delivery.
    if (this.shutdown.signal.aborted && result.kind === 'retry') {
      span?.end(result, this.now());
      return;
    }
    const finishedAt = this.now();
    span?.end(result, finishedAt);
    if (slotFreedOnAnswer(claimed.endpoint, result.kind === 'success')) this.store.attemptAnswered?.(claimed.delivery.id, claimed.delivery.endpointId);
    const outcome = this.outcome(claimed, result, startedAt, finishedAt);
    this.options.observer?.attempted?.(claimed, outcome, result);
    this.outcomes.push(outcome);
    // Outcomes are written in batches: one commit (one fsync) for every attempt that finished within ~2 ms.
    if (this.outcomes.length >= OUTCOME_BATCH) void this.flushOutcomes();
    else if (!this.flushing) this.flushing = new Promise((resolve) => setTimeout(resolve, OUTCOME_DELAY_MS)).then(() => this.flushOutcomes());
  }

  private outcome({ delivery, endpoint }: ClaimedDelivery, result: SendResult, startedAt: number, finishedAt: number): AttemptOutcome {
    const attempt: Attempt = {
      id: newId(ID_PREFIX.attempt, startedAt),
      deliveryId: delivery.id,
      messageId: delivery.messageId,
      endpointId: delivery.endpointId,
      appId: delivery.appId,
      url: result.url ?? endpoint.url,
      startedAt,
      durationMs: finishedAt - startedAt,
      statusCode: result.statusCode,
      succeeded: result.kind === 'success',
      responseBody: result.responseBody,
      error: result.kind === 'retry' || result.kind === 'fatal' ? result.error : null,
      trigger: delivery.manual ? 'manual' : 'scheduled',
      request: result.request ?? null,
    };
    const owner = this.options.owner;
    switch (result.kind) {
      case 'success':
        return { owner, attempt, next: { kind: 'succeeded' } };
      case 'gone':
        return { owner, attempt, next: { kind: 'parked' }, disableEndpoint: `the endpoint answered 410 Gone at ${new Date(finishedAt).toISOString()}` };
      case 'fatal':
        return { owner, attempt, next: { kind: 'parked' } };
      case 'retry': {
        const retryIndex = delivery.retryIndex + 1;
        const delay = nextAttemptDelay(this.options.retry, retryIndex, result.retryAfterMs);
        if (delay === null) return { owner, attempt, next: { kind: 'parked' } };
        return { owner, attempt, next: { kind: 'retry', at: finishedAt + delay, retryIndex } };
      }
    }
  }

  private flushOutcomes(): Promise<void> {
    const batch = this.outcomes;
    this.outcomes = [];
    this.flushing = null;
    if (batch.length === 0) return Promise.resolve();
    const write = this.record(batch).finally(() => this.writing.delete(write));
    this.writing.add(write);
    return write;
  }

  private async record(batch: AttemptOutcome[]): Promise<void> {
    try {
      const started = performance.now();
      const changes = await this.store.complete(batch, this.options.health ?? DEFAULT_HEALTH_POLICY);
      this.options.observer?.recorded?.(batch, changes, performance.now() - started);
      for (const outcome of batch) {
        if (outcome.next.kind === 'parked') this.log.info({ messageId: outcome.attempt.messageId, endpointId: outcome.attempt.endpointId }, 'delivery parked as failed');
      }
      for (const change of changes) this.logHealth(change, batch);
    } catch (error) {
      // The attempts happened but could not be recorded; their leases expire and the deliveries are tried again.
      this.log.error({ err: error, attempts: batch.length }, 'recording attempts failed');
    }
    this.wake();
  }

  private logHealth({ endpointId, appId, opened, closed, disabled, consecutiveFailures, openUntil }: HealthChange, batch: AttemptOutcome[]): void {
    // The operator's first question is why: the last failed attempt of the endpoint in this batch says it.
    let last: Attempt | undefined;
    for (const { attempt } of batch) if (attempt.endpointId === endpointId && !attempt.succeeded) last = attempt;
    const lastError = last ? { lastStatus: last.statusCode, lastError: last.error ?? `HTTP ${last.statusCode}` } : {};
    if (opened) {
      const until = new Date(openUntil!).toISOString();
      this.log.warn({ endpointId, appId, consecutiveFailures, openUntil: until, ...lastError }, 'circuit opened: endpoint paused after consecutive failures');
    }
    if (closed) this.log.info({ endpointId, appId }, 'circuit closed: endpoint delivering again');
    if (disabled) this.log.warn({ endpointId, appId, reason: disabled, ...lastError }, 'endpoint disabled');
  }

  private renewLeases(): void {
    if (this.inFlight.size === 0 || this.renewing) return;
    this.renewing = this.store
      .renewLeases(this.options.owner, [...this.inFlight.keys()], this.now() + this.options.leaseMs)
      .catch((error) => this.log.error({ err: error }, 'renewing leases failed'))
      .finally(() => (this.renewing = null));
  }
}

/** A sleep that a ring cuts short; a ring while awake is kept until `take` so that the next turn of the loop sees it. */
class Alarm {
  rung = false;
  private stopSleeping: (() => void) | null = null;

  ring(): void {
    this.rung = true;
    this.stopSleeping?.();
  }

  /** Whether it rang since the last take. */
  take(): boolean {
    const rung = this.rung;
    this.rung = false;
    return rung;
  }

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.stopSleeping = null;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.stopSleeping = done;
    });
  }
}
