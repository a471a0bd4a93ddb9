import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { Source } from '../../domain/types.js';
import type { EgressPolicy } from '../../egress/policy.js';
import type { Intake } from '../../pipeline/intake.js';
import { eventTypeName } from '../ingest.js';
import type { BrokerSourceConfig, EventTypeRule } from './config.js';

/** One record read from a broker, before it is a message. */
export interface BrokerRecord {
  /**
   * What makes the record itself, whatever delivers it (the Kafka topic/partition/offset, the Redis stream entry id,
   * the JetStream stream sequence, the AMQP message-id): the message's eventId and its dedupe key.
   */
  id: string;
  payload: Buffer;
  /** Record headers, names lower-cased. */
  headers: Record<string, string>;
}

/** What a consumer's source looks like now: running, paused by a failing store, or failing itself. */
export type ConsumerStatus = 'starting' | 'running' | 'paused' | 'error' | 'disabled';

export interface ConsumerState {
  state: ConsumerStatus;
  /** The broker's (or the store's) message, for `error` and `paused`. */
  error: string | null;
  since: number;
}

/** What a broker consumer is given: its settings, how to accept records, where to report, and when to stop. */
export interface ConsumerContext<C extends BrokerSourceConfig = BrokerSourceConfig> {
  source: Source;
  config: C;
  /** The consumer group (or durable consumer) name, the configured one or the default. */
  group: string;
  /** This process's name as a consumer (Redis streams name each consumer of a group). */
  consumerName: string;
  egress: EgressPolicy;
  log: Logger;
  signal: AbortSignal;
  /**
   * Accepts every record durably (together, in the store's group commit). A store failure pauses the consumer and
   * retries the same records, calling `keepAlive` while it waits (a Kafka heartbeat, a JetStream in-progress ack);
   * true once all are accepted, false when the consumer stopped first (then nothing may be acknowledged).
   */
  acceptAll(records: BrokerRecord[], keepAlive?: () => Promise<void> | void): Promise<boolean>;
  /** Connected and consuming. */
  running(): void;
}

/** A broker's consumer loop: returns when `signal` aborts (after acknowledging what it accepted), throws when it fails. */
export type BrokerConsumer<C extends BrokerSourceConfig = BrokerSourceConfig> = (context: ConsumerContext<C>) => Promise<void>;

/** A dedupe key as the store keeps it: printable ASCII up to 256 characters, otherwise hashed. */
export const recordKey = (id: string) => (/^[\x21-\x7e]{1,256}$/.test(id) ? id : `id-sha256:${createHash('sha256').update(id).digest('hex')}`);

/** The value at a dotted path of a JSON payload, as an event type, or null. */
function fieldOf(payload: Buffer, path: string): string | null {
  let value: unknown;
  try {
    value = JSON.parse(payload.toString('utf8'));
  } catch {
    return null;
  }
  for (const part of path.split('.')) {
    if (value === null || typeof value !== 'object') return null;
    value = (value as Record<string, unknown>)[part];
  }
  return typeof value === 'string' || typeof value === 'number' ? String(value) : null;
}

export function eventTypeOf(rule: EventTypeRule, record: BrokerRecord): string {
  if ('fixed' in rule) return rule.fixed;
  const raw = 'header' in rule ? record.headers[rule.header] : fieldOf(record.payload, rule.field);
  return raw === undefined || raw === null || raw.trim() === '' ? rule.fallback : eventTypeName(raw);
}

/** Waits `ms`, or less when `signal` aborts. */
export const pause = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });

/**
 * Turns records into messages of the source's app through the intake HTTP sources use: payload bytes as read, the
 * event type by the source's rule, the kept headers, and the record id as eventId and (within the dedupe window) as
 * idempotency key, so a record read again (after a crash between accept and ack, a rebalance, a redelivery) stays
 * one message.
 */
export class RecordIntake {
  constructor(
    private readonly intake: Intake,
    private readonly now: () => number = Date.now,
  ) {}

  async accept(source: Source, config: BrokerSourceConfig, record: BrokerRecord): Promise<void> {
    const key = recordKey(record.id);
    const kept: Record<string, string> = {};
    for (const name of config.keepHeaders) if (record.headers[name] !== undefined) kept[name] = record.headers[name];
    const contentType = record.headers['content-type'] || config.contentType;
    kept['content-type'] = contentType;
    await this.intake.accept(
      {
        appId: source.appId,
        eventType: eventTypeOf(config.eventType, record),
        eventId: key,
        payload: record.payload,
        contentType,
        channels: null,
        tags: null,
        idempotencyKey: `broker:${key}`,
        idempotencyTtlMs: config.dedupeWindowSeconds * 1000,
        now: this.now(),
        // The broker authenticated the connection, not the record: nothing was verified.
        source: { id: source.id, headers: kept, verified: false },
        traceContext: null,
      },
      source.type,
    );
  }
}
