import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { Source } from '../../domain/types.js';
import type { EgressPolicy } from '../../egress/policy.js';
import type { Intake } from '../../pipeline/intake.js';
import type { Store } from '../../store/store.js';
import { BROKER_SOURCE_CONFIGS, defaultGroup, isBrokerSourceType, type BrokerSourceConfig, type BrokerSourceType } from './config.js';
import { pause, RecordIntake, type BrokerConsumer, type BrokerRecord, type ConsumerContext, type ConsumerState, type ConsumerStatus } from './consumer.js';
import { consumeKafka } from './kafka.js';
import { consumeNats, natsError } from './nats.js';
import { consumeRabbitmq } from './rabbitmq.js';
import { consumeRedis } from './redis.js';

const CONSUMERS: Record<BrokerSourceType, BrokerConsumer<any>> = { redis: consumeRedis, nats: consumeNats, kafka: consumeKafka, rabbitmq: consumeRabbitmq };

export interface BrokerSourcesOptions {
  /** How often the sources are read again, to follow changes made through other processes. @default 5000 */
  resyncMs?: number;
  /** Wait before dialling again after a failure, doubled up to `maxBackoffMs`. */
  backoffMs?: number;
  maxBackoffMs?: number;
  now?: () => number;
}

const describeFailure = (type: BrokerSourceType, error: unknown) => (type === 'nats' ? natsError(error) : ((error as Error)?.message ?? String(error)));

/** The consumer group (Kafka `groupId`, Redis `group`, NATS durable `consumer`) a source names, or its default. */
function groupOf(config: BrokerSourceConfig, sourceId: string): string {
  const named = config as { group?: string; groupId?: string; consumer?: string };
  return named.group ?? named.groupId ?? named.consumer ?? defaultGroup(sourceId);
}

const STOP_WAIT_MS = 30_000;

/** One source's consumer: its loop, dialling again after each failure, until stopped. */
class Runner {
  private readonly abort = new AbortController();
  private readonly done: Promise<void>;

  constructor(
    readonly source: Source,
    readonly fingerprint: string,
    private readonly owner: BrokerSources,
    private readonly config: BrokerSourceConfig,
    private readonly options: Required<Omit<BrokerSourcesOptions, 'now'>>,
  ) {
    this.done = this.loop();
  }

  private async loop(): Promise<void> {
    const type = this.source.type as BrokerSourceType;
    const signal = this.abort.signal;
    const log = this.owner.log.child({ sourceId: this.source.id, broker: type });
    let backoff = this.options.backoffMs;
    while (!signal.aborted) {
      this.owner.report(this.source.id, 'starting', null);
      let connected = false;
      const context: ConsumerContext = {
        source: this.source,
        config: this.config,
        group: groupOf(this.config, this.source.id),
        consumerName: this.owner.consumerName,
        egress: this.owner.egress,
        log,
        signal,
        acceptAll: (records, keepAlive) => this.acceptAll(records, keepAlive),
        running: () => {
          connected = true;
          backoff = this.options.backoffMs;
          this.owner.report(this.source.id, 'running', null);
          log.info('broker source consuming');
        },
      };
      try {
        await CONSUMERS[type](context);
      } catch (error) {
        if (signal.aborted) break;
        const message = describeFailure(type, error);
        this.owner.report(this.source.id, 'error', message);
        log.warn({ error: message, retryInMs: backoff, wasConsuming: connected }, 'broker source failed; connecting again');
        await pause(backoff, signal);
        backoff = Math.min(backoff * 2, this.options.maxBackoffMs);
      }
    }
  }

  /**
   * Accepts the records together; a failing store pauses the source (nothing is acked or fetched meanwhile) and the
   * same records are tried again until they are in, or the source stops.
   */
  private async acceptAll(records: BrokerRecord[], keepAlive?: () => Promise<void> | void): Promise<boolean> {
    let wait = 250;
    let pending = records;
    for (;;) {
      const results = await Promise.allSettled(pending.map((r) => this.owner.records.accept(this.source, this.config, r)));
      const failed = pending.filter((_, i) => results[i].status === 'rejected');
      if (failed.length === 0) {
        if (this.owner.stateOf(this.source.id)?.state === 'paused') this.owner.report(this.source.id, 'running', null);
        return true;
      }
      const reason = (results.find((r) => r.status === 'rejected') as PromiseRejectedResult).reason as Error;
      if (this.owner.stateOf(this.source.id)?.state !== 'paused') this.owner.log.error({ err: reason, sourceId: this.source.id }, 'storing broker records failed; the source pauses until the store takes writes');
      this.owner.report(this.source.id, 'paused', `the store cannot take the records: ${reason?.message ?? String(reason)}`);
      pending = failed;
      await pause(wait, this.abort.signal);
      if (this.abort.signal.aborted) return false;
      try {
        await keepAlive?.();
      } catch {
        // A keep-alive that fails (a lost broker) shows up in the consumer's own next request.
      }
      wait = Math.min(wait * 2, 5_000);
    }
  }

  /** Finishes the accept and acknowledgement in hand, then closes the consumer's connection (waiting 30 s at most). */
  async stop(): Promise<void> {
    this.abort.abort();
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), STOP_WAIT_MS)));
    const outcome = await Promise.race([this.done, late]);
    clearTimeout(timer);
    // What was not acknowledged stays with the broker, which hands it out again: nothing is lost by giving up here.
    if (outcome === 'late') this.owner.log.warn({ sourceId: this.source.id }, `the broker source's consumer did not stop within ${STOP_WAIT_MS / 1000} s; leaving it`);
  }
}

/**
 * The consumers of every broker source, in this process: started with hookrelay and stopped with it, and started,
 * restarted or stopped when a source is created, changed, disabled or deleted (through this process's API at once,
 * through another process's within `resyncMs`). Each shows its state on the source.
 */
export class BrokerSources {
  private readonly runners = new Map<string, Runner>();
  private readonly states = new Map<string, ConsumerState>();
  private timer: NodeJS.Timeout | null = null;
  private syncing: Promise<void> = Promise.resolve();
  private stopped = false;
  readonly records: RecordIntake;
  /** This process as a consumer of a Redis group: host, pid and a random part (a restarted process is a new one). */
  readonly consumerName = `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  private readonly options: Required<Omit<BrokerSourcesOptions, 'now'>>;
  private readonly now: () => number;

  constructor(
    private readonly store: Store,
    intake: Intake,
    readonly egress: EgressPolicy,
    readonly log: Logger,
    options: BrokerSourcesOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    this.records = new RecordIntake(intake, this.now);
    this.options = { resyncMs: options.resyncMs ?? 5_000, backoffMs: options.backoffMs ?? 500, maxBackoffMs: options.maxBackoffMs ?? 5_000 };
  }

  async start(): Promise<void> {
    await this.sync();
    this.timer = setInterval(() => void this.sync(), this.options.resyncMs);
    this.timer.unref();
  }

  /** The consumer state of a broker source in this process; null for other sources. */
  stateOf(sourceId: string): ConsumerState | null {
    return this.states.get(sourceId) ?? null;
  }

  report(sourceId: string, state: ConsumerStatus, error: string | null): void {
    const previous = this.states.get(sourceId);
    if (previous && previous.state === state && previous.error === error) return;
    this.states.set(sourceId, { state, error, since: this.now() });
  }

  /** Reads the sources again and starts, restarts or stops consumers to match; runs one at a time. */
  sync(): Promise<void> {
    this.syncing = this.syncing.then(() => this.reconcile()).catch((error) => this.log.warn({ err: error }, 'reading the broker sources failed; the consumers keep running'));
    return this.syncing;
  }

  private async reconcile(): Promise<void> {
    if (this.stopped) return;
    const wanted = new Map<string, Source>();
    let iterator: string | null = null;
    for (;;) {
      const page = await this.store.listSources({ limit: 250, iterator, order: 'ascending' });
      for (const source of page.data) if (isBrokerSourceType(source.type)) wanted.set(source.id, source);
      if (page.done || page.data.length === 0) break;
      iterator = page.iterator;
    }
    if (this.stopped) return;
    const stopping: Promise<void>[] = [];
    for (const [id, runner] of this.runners) {
      const source = wanted.get(id);
      if (source && fingerprintOf(source) === runner.fingerprint) continue;
      this.runners.delete(id);
      stopping.push(runner.stop());
    }
    await Promise.all(stopping);
    if (this.stopped) return;
    for (const id of this.states.keys()) if (!wanted.has(id)) this.states.delete(id);
    for (const [id, source] of wanted) {
      if (this.runners.has(id)) continue;
      const parsed = BROKER_SOURCE_CONFIGS[source.type as BrokerSourceType].safeParse(source.config);
      if (!parsed.success) {
        this.report(id, 'error', `invalid configuration: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
        continue;
      }
      if (parsed.data.disabled) {
        this.report(id, 'disabled', null);
        continue;
      }
      this.runners.set(id, new Runner(source, fingerprintOf(source), this, parsed.data, this.options));
    }
  }

  /** Stops every consumer: each finishes the accept and acknowledgement in hand, then closes its connection. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.syncing;
    const runners = [...this.runners.values()];
    this.runners.clear();
    await Promise.all(runners.map((r) => r.stop()));
  }
}

const fingerprintOf = (source: Source) => JSON.stringify([source.type, source.config, source.appId]);
