import { setMaxListeners } from 'node:events';
import type { Logger } from 'pino';
import { DEFAULT_HEALTH_POLICY, type HealthChange, type HealthPolicy } from '../domain/health.js';
import { ID_PREFIX, newId } from '../domain/ids.js';
import { interval, reclaimAt } from '../domain/rate.js';
import { nextAttemptDelay, type RetryPolicy } from '../domain/retry.js';
import type { Attempt, ClaimedDelivery } from '../domain/types.js';
import type { AttemptOutcome, Store } from '../store/store.js';
import type { Destination, SendResult } from './destinations/destination.js';
import type { Tracing } from '../observability/tracing.js';
import type { PipelineObserver } from './observer.js';

const CLAIM_SPACING_MS = 5;
/** Waiting to claim a full batch never delays due work longer than this (attempts stuck on dead endpoints keep the room small). */
const CLAIM_MAX_DELAY_MS = 20;
const OUTCOME_BATCH = 256;
const OUTCOME_DELAY_MS = 2;

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
  private wakeUp: (() => void) | null = null;
  private woken = false;
  private renewTimer: NodeJS.Timeout | null = null;
  private stopWakeups: (() => void) | null = null;
  /** Rate-limited endpoints this dispatcher reserved slots for, and when to claim again for each (domain/rate.ts). */
  private readonly rateWakes = new Map<string, number>();
  /** Per rate-limited endpoint: when this dispatcher last started a send to it, and the sends waiting for their turn. */
  private readonly pacers = new Map<string, { lastStart: number; queue: Promise<void>; usedAt: number }>();
  private readonly now: () => number;

  constructor(
    private readonly store: Store,
    private readonly destination: Destination,
    private readonly options: DispatcherOptions,
    private readonly log: Logger,
  ) {
    this.now = options.now ?? Date.now;
    // Every attempt in flight (and every paced send waiting for its slot) listens on this one signal.
    setMaxListeners(0, this.shutdown.signal);
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
    this.woken = true;
    this.wakeUp?.();
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
      wanted ||= this.woken;
      this.woken = false;
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
        for (const [endpointId, at] of this.rateWakes) if (at <= lastClaimAt) this.rateWakes.delete(endpointId);
        for (const [endpointId, pacer] of this.pacers) if (pacer.usedAt < lastClaimAt - 60_000) this.pacers.delete(endpointId);
        try {
          claimed = await this.store.claim({
            owner: this.options.owner,
            now: this.now(),
            limit: Math.min(room, this.options.claimBatch),
            leaseMs: this.options.leaseMs,
          });
        } catch (error) {
          this.log.error({ err: error }, 'claiming deliveries failed; backing off');
          await this.sleep(this.options.pollMs);
          continue;
        }
        // Rate-limited sends take turns per endpoint in the order of their slots.
        if (claimed.some((c) => c.notBefore !== undefined)) claimed.sort((a, b) => (a.notBefore ?? 0) - (b.notBefore ?? 0));
        for (const item of claimed) this.launch(item);
        this.notePacing(claimed);
      }
      if (claimed.length > 0 && claimed.length === Math.min(room, this.options.claimBatch)) {
        await new Promise((resolve) => setImmediate(resolve));
        continue;
      }
      if (this.woken) continue;
      // Work is waiting for a claim that the batch rule holds back: claim as soon as the rule lets it.
      await this.sleep(wanted && room > 0 ? Math.max(1, lastClaimAt + CLAIM_MAX_DELAY_MS - this.now()) : await this.untilNextDue());
      wanted = true;
    }
  }

  private async untilNextDue(): Promise<number> {
    // A rate-limited endpoint's next slots may come up before anything else wakes the dispatcher.
    let wait = this.options.pollMs;
    for (const at of this.rateWakes.values()) wait = Math.min(wait, Math.max(at - this.now(), 1));
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

  /** Remembers when to claim again for the rate-limited endpoints of this claim: before their reserved slots run out. */
  private notePacing(claimed: ClaimedDelivery[]): void {
    for (const { endpoint, notBefore } of claimed) {
      if (notBefore === undefined || endpoint.rateLimit === null) continue;
      const at = reclaimAt(notBefore + 1000 / endpoint.rateLimit);
      if (at > (this.rateWakes.get(endpoint.id) ?? -Infinity)) this.rateWakes.set(endpoint.id, at);
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wakeUp = () => {
        this.wakeUp = null;
        done();
      };
    });
  }

  private launch(claimed: ClaimedDelivery): void {
    const id = claimed.delivery.id;
    const attempt = (claimed.notBefore === undefined ? this.attempt(claimed) : this.paced(claimed)).finally(() => this.inFlight.delete(id));
    this.inFlight.set(id, attempt);
  }

  /**
   * A rate-limited send starts at its reserved slot, and never less than 1/rate after the previous send this
   * dispatcher actually started to the endpoint: one that started late (a slow claim, a busy event loop) pushes the
   * next ones back instead of bunching them. It waits leased; shutdown cuts the wait short (the lease is released in
   * stop()).
   */
  private async paced(claimed: ClaimedDelivery): Promise<void> {
    const { endpoint, notBefore } = claimed;
    let pacer = this.pacers.get(endpoint.id);
    if (!pacer) this.pacers.set(endpoint.id, (pacer = { lastStart: -Infinity, queue: Promise.resolve(), usedAt: 0 }));
    const own = pacer;
    own.usedAt = this.now();
    const turn = own.queue.then(async () => {
      await this.hold(Math.max(notBefore!, own.lastStart + interval(endpoint.rateLimit ?? Infinity)) - this.now());
      own.lastStart = this.now();
    });
    own.queue = turn;
    await turn;
    if (!this.shutdown.signal.aborted) await this.attempt(claimed);
  }

  private hold(ms: number): Promise<void> {
    const signal = this.shutdown.signal;
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
