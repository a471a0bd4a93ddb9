import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { HealthChange } from '../domain/health.js';
import type { ClaimedDelivery } from '../domain/types.js';
import { destinationKind, type PipelineObserver } from '../pipeline/observer.js';
import { HotCounter, HotHistogram } from './hot-metrics.js';
import type { AcceptResult, AttemptOutcome, PipelineStats } from '../store/store.js';

/**
 * The Prometheus metrics of one hookrelay (`GET /metrics`). Counters and histograms are updated in memory where the
 * pipeline produces its outcomes; the backlog and endpoint gauges are read from the store when scraped, never per
 * delivery. Every label has a bounded set of values (origins are `api` or a source type, destinations a destination
 * kind): no per-message, per-app or per-URL label.
 */
export class Metrics implements PipelineObserver {
  readonly contentType: string;
  private readonly registry = new Registry();
  /** Gauges read from the store: served only when the read succeeded, so a failed read shows as missing, not as 0. */
  private readonly storeRegistry = new Registry();
  // Counted on every accept or attempt: see hot-metrics.ts.
  private readonly acceptedTotal: HotCounter;
  private readonly duplicatesTotal: HotCounter;
  private readonly attemptsTotal: HotCounter;
  private readonly attemptSeconds: HotHistogram;
  private readonly commitSeconds: HotHistogram;
  private readonly verificationFailures: Counter<'source_type'>;
  private readonly circuitsOpened: Counter;
  private readonly endpointsDisabled: Counter;
  private readonly storeReadFailures: Counter;
  private readonly pending: Gauge;
  private readonly due: Gauge;
  private readonly inFlight: Gauge;
  private readonly oldestDueAge: Gauge;
  private readonly endpoints: Gauge<'state'>;

  constructor(
    private readonly stats: (now: number) => Promise<PipelineStats>,
    private readonly now: () => number = Date.now,
  ) {
    const registers = [this.registry];
    this.contentType = this.registry.contentType;
    collectDefaultMetrics({ register: this.registry });
    this.acceptedTotal = new HotCounter({ name: 'hookrelay_messages_accepted_total', help: 'Messages accepted, by origin (api, or the source type of an inbound request).', labelNames: ['origin'], registers });
    this.duplicatesTotal = new HotCounter({ name: 'hookrelay_messages_duplicate_total', help: 'Accepts answered with an existing message (idempotency key or inbound dedupe), by origin.', labelNames: ['origin'], registers });
    this.attemptsTotal = new HotCounter({
      name: 'hookrelay_attempts_total',
      help: 'Delivery attempts by destination kind and what became of the delivery: succeeded, retrying (scheduled again) or parked (failed for good until resent or recovered).',
      labelNames: ['destination', 'outcome'],
      registers,
    });
    this.attemptSeconds = new HotHistogram({
      name: 'hookrelay_attempt_duration_seconds',
      help: 'Duration of delivery attempts, by destination kind.',
      labelNames: ['destination'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30],
      registers,
    });
    this.verificationFailures = new Counter({ name: 'hookrelay_ingest_verification_failures_total', help: 'Inbound requests refused because their signature or credentials did not verify, by source type.', labelNames: ['source_type'], registers });
    this.commitSeconds = new HotHistogram({
      name: 'hookrelay_store_commit_duration_seconds',
      help: 'Time for the store to commit an accept (group commit included) or a batch of attempt outcomes.',
      labelNames: ['operation'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    this.circuitsOpened = new Counter({ name: 'hookrelay_circuit_opened_total', help: 'Times an endpoint circuit opened (paused after consecutive failures, or a failed probe).', registers });
    this.endpointsDisabled = new Counter({ name: 'hookrelay_endpoints_auto_disabled_total', help: 'Endpoints disabled by the dispatcher (410 Gone, failing too long, too many parked messages).', registers });
    this.storeReadFailures = new Counter({ name: 'hookrelay_metrics_store_read_failures_total', help: 'Scrapes whose backlog and endpoint gauges could not be read from the store (they are left out of that scrape).', registers });

    const gauges = [this.storeRegistry];
    this.pending = new Gauge({ name: 'hookrelay_deliveries_pending', help: 'Deliveries waiting for an attempt, due now or scheduled later.', registers: gauges });
    this.due = new Gauge({ name: 'hookrelay_deliveries_due', help: 'Pending deliveries due now on enabled endpoints (an open circuit or a rate limit may still hold them).', registers: gauges });
    this.inFlight = new Gauge({ name: 'hookrelay_deliveries_in_flight', help: 'Deliveries being attempted by any process sharing the store.', registers: gauges });
    this.oldestDueAge = new Gauge({ name: 'hookrelay_oldest_due_delivery_age_seconds', help: 'How long the longest-waiting due delivery has been due (0 when none is).', registers: gauges });
    this.endpoints = new Gauge({ name: 'hookrelay_endpoints', help: 'Endpoints by state: closed, open or half_open circuit (enabled ones), or disabled.', labelNames: ['state'], registers: gauges });
  }

  accepted(origin: string, result: AcceptResult, commitMs: number): void {
    this.commitSeconds.child('accept').observe(commitMs / 1000);
    if (result.kind === 'accepted') this.acceptedTotal.child(origin).inc();
    else if (result.kind === 'duplicate') this.duplicatesTotal.child(origin).inc();
  }

  verificationFailed(sourceType: string): void {
    this.verificationFailures.inc({ source_type: sourceType });
  }

  attempted(claimed: ClaimedDelivery, outcome: AttemptOutcome): void {
    const destination = destinationKind(claimed);
    const next = outcome.next.kind === 'retry' ? 'retrying' : outcome.next.kind;
    this.attemptsTotal.child(destination, next).inc();
    this.attemptSeconds.child(destination).observe(outcome.attempt.durationMs / 1000);
  }

  recorded(_batch: readonly AttemptOutcome[], changes: readonly HealthChange[], commitMs: number): void {
    this.commitSeconds.child('complete').observe(commitMs / 1000);
    for (const change of changes) {
      if (change.opened) this.circuitsOpened.inc();
      if (change.disabled) this.endpointsDisabled.inc();
    }
  }

  /** The exposition text: process and pipeline metrics, and the store's gauges when they could be read. */
  async scrape(onStoreError: (error: unknown) => void): Promise<string> {
    let gauges = '';
    const now = this.now();
    try {
      const stats = await this.stats(now);
      this.pending.set(stats.pending);
      this.due.set(stats.due);
      this.inFlight.set(stats.inFlight);
      this.oldestDueAge.set(stats.oldestDueAt === null ? 0 : Math.max(0, now - stats.oldestDueAt) / 1000);
      this.endpoints.set({ state: 'closed' }, stats.endpoints.closed);
      this.endpoints.set({ state: 'open' }, stats.endpoints.open);
      this.endpoints.set({ state: 'half_open' }, stats.endpoints.halfOpen);
      this.endpoints.set({ state: 'disabled' }, stats.endpoints.disabled);
      gauges = await this.storeRegistry.metrics();
    } catch (error) {
      this.storeReadFailures.inc();
      onStoreError(error);
    }
    return (await this.registry.metrics()) + gauges;
  }
}
