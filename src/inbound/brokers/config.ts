import { z } from 'zod';
import { HookrelayError, type FieldIssue } from '../../domain/errors.js';
import { ADDRESS_PATTERN, hostOf } from '../../pipeline/destinations/broker.js';
import { kafkaSasl } from '../../pipeline/destinations/kafka.js';
import { tlsSetting } from '../../pipeline/destinations/kinds.js';

/**
 * Broker sources: a source whose `type` is a broker (`kafka`, `redis`, `nats`, `rabbitmq`) has no ingest URL that
 * anyone posts to; hookrelay consumes the broker itself and accepts each record as a message of the source's app.
 * This module holds their settings: connection settings as the broker destinations have them, where to consume
 * from, and how a record becomes a message (its event type, the headers kept, the dedupe window).
 */

const tls = tlsSetting();

const address = z.string().regex(ADDRESS_PATTERN, { message: 'must be host:port' });
const headerName = z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,256}$/, { message: 'must be a header name' }).transform((v) => v.toLowerCase());
const eventTypeValue = z.string().regex(/^[A-Za-z0-9\-_.]{1,256}$/, { message: 'must be an event type name (letters, digits, - _ .)' });

/**
 * Where a record's event type comes from: a record header, a field of the JSON payload (a dotted path), or one fixed
 * type for every record. `fallback` names the type of a record without that header or field.
 */
const eventType = z.union([
  z.strictObject({ header: headerName, fallback: eventTypeValue.default('unknown') }),
  z.strictObject({ field: z.string().regex(/^[^.\s]+(\.[^.\s]+)*$/, { message: 'must be a dotted path such as data.type' }).max(256), fallback: eventTypeValue.default('unknown') }),
  z.strictObject({ fixed: eventTypeValue }),
]);

/** Settings every broker source has beside its broker's own. */
const common = {
  /** Where the event type comes from. @default {"header": "event-type"} */
  eventType: eventType.default({ header: 'event-type', fallback: 'unknown' }),
  /** The content type of a record that carries none. @default "application/json" */
  contentType: z.string().min(1).max(256).default('application/json'),
  /** Record headers kept on the message and forwarded with it. */
  keepHeaders: z.array(headerName).max(50).default([]),
  /** How long a record id is remembered to drop a redelivered record, in seconds. @default 86400 */
  dedupeWindowSeconds: z.number().int().min(1).max(30 * 86_400).default(86_400),
  /** A disabled source consumes nothing; its records wait in the broker. @default false */
  disabled: z.boolean().default(false),
  /** Where a new consumer group starts: at the oldest record kept (`earliest`) or at the next one (`latest`). */
  startFrom: z.enum(['earliest', 'latest']).default('earliest'),
  /** Bound on connecting and on each broker request. @default 10000 */
  timeoutMs: z.number().int().min(100).max(60_000).default(10_000),
};

/** Records fetched and accepted together (they are accepted in one group commit, then acknowledged). */
const batchSize = z.number().int().min(1).max(1000).default(100);
const groupName = z.string().regex(/^[A-Za-z0-9._-]{1,200}$/, { message: 'letters, digits, . _ - only' });

export const BROKER_SOURCE_CONFIGS = {
  redis: z.strictObject({
    address,
    username: z.string().min(1).max(256).optional(),
    password: z.string().min(1).max(4096).optional(),
    db: z.number().int().min(0).max(15).default(0),
    tls: tls.optional(),
    /** The stream key (created empty, with the group, when it does not exist). */
    stream: z.string().min(1).max(1000),
    /** The consumer group; every hookrelay process is one consumer of it. @default "hookrelay-<source id>" */
    group: groupName.optional(),
    /** The entry field holding the payload; the other fields are the record's headers. @default "payload" */
    payloadField: z.string().min(1).max(256).default('payload'),
    /** Entries a consumer has not acknowledged for this long are claimed (XAUTOCLAIM) by another: a dead process's. */
    claimIdleMs: z.number().int().min(1_000).max(86_400_000).default(60_000),
    batchSize,
    ...common,
  }),
  nats: z
    .strictObject({
      address,
      user: z.string().min(1).max(256).optional(),
      password: z.string().min(1).max(4096).optional(),
      token: z.string().min(1).max(4096).optional(),
      tls: tls.optional(),
      /** The JetStream stream to consume (it must exist). */
      stream: z.string().regex(/^[^\s.*>]{1,255}$/, { message: 'must be a stream name (no spaces, dots or wildcards)' }),
      /** The durable pull consumer, created when missing. @default "hookrelay-<source id>" */
      consumer: groupName.optional(),
      /** Only the stream's subjects matching this, when the consumer is created. */
      filterSubject: z.string().regex(/^[^\s]{1,1000}$/, { message: 'must be a NATS subject' }).optional(),
      /** How long the server waits for an acknowledgement before redelivering, when the consumer is created. */
      ackWaitMs: z.number().int().min(1_000).max(3_600_000).default(30_000),
      batchSize,
      ...common,
    })
    .refine((c) => (c.user === undefined) === (c.password === undefined), { message: 'user and password go together', path: ['password'] })
    .refine((c) => c.token === undefined || c.user === undefined, { message: 'use a token or a user and password, not both', path: ['token'] }),
  kafka: z.strictObject({
    brokers: z.array(address).min(1).max(32),
    sasl: kafkaSasl.optional(),
    ssl: tls.optional(),
    /** The topic to consume (it must exist). */
    topic: z.string().regex(/^[A-Za-z0-9._-]{1,249}$/, { message: 'must be a Kafka topic name (letters, digits, . _ -)' }),
    /** The consumer group. @default "hookrelay-<source id>" */
    groupId: groupName.optional(),
    batchSize,
    ...common,
  }),
  rabbitmq: z
    .strictObject({
      address,
      vhost: z.string().min(1).max(255).default('/'),
      username: z.string().min(1).max(1024).optional(),
      password: z.string().min(1).max(4096).optional(),
      tls: tls.optional(),
      /** The queue to consume (it must exist). */
      queue: z.string().min(1).max(255),
      /** Unacknowledged messages the broker sends ahead (basic.qos). @default 100 */
      prefetch: z.number().int().min(1).max(10_000).default(100),
      ...common,
    })
    .refine((c) => (c.username === undefined) === (c.password === undefined), { message: 'username and password go together', path: ['password'] }),
} as const;

export type BrokerSourceType = keyof typeof BROKER_SOURCE_CONFIGS;
export type BrokerSourceConfig<T extends BrokerSourceType = BrokerSourceType> = z.output<(typeof BROKER_SOURCE_CONFIGS)[T]>;
export type RedisSourceConfig = BrokerSourceConfig<'redis'>;
export type NatsSourceConfig = BrokerSourceConfig<'nats'>;
export type KafkaSourceConfig = BrokerSourceConfig<'kafka'>;
export type RabbitmqSourceConfig = BrokerSourceConfig<'rabbitmq'>;
export type EventTypeRule = z.output<typeof eventType>;

export const isBrokerSourceType = (type: string): type is BrokerSourceType => Object.hasOwn(BROKER_SOURCE_CONFIGS, type);

/** Secret settings of broker sources, beside the top-level SECRET_FIELDS of every source (`password`, `token`). */
export const BROKER_SECRET_PATHS = ['sasl.password', 'tls.clientKey', 'ssl.clientKey'];

/** Validates a broker source's config (422 naming the field) and returns it with its defaults. */
export function validateBrokerSourceConfig(type: BrokerSourceType, config: Record<string, unknown>): Record<string, unknown> {
  const parsed = BROKER_SOURCE_CONFIGS[type].safeParse(config);
  if (parsed.success) return parsed.data as Record<string, unknown>;
  const issues: FieldIssue[] = parsed.error.issues.map((issue) => ({
    loc: ['body', 'config', ...issue.path.map((p) => (typeof p === 'symbol' ? String(p) : p))],
    msg: issue.message,
    type: issue.code,
  }));
  throw new HookrelayError('validation', `${issues[0].loc.join('.')}: ${issues[0].msg}`, issues);
}

/** The hosts a broker source dials, by setting (`brokers.1` for a list entry), for the egress check at save. */
export function brokerSourceHosts(type: BrokerSourceType, config: Record<string, unknown>): { field: string; host: string }[] {
  if (type === 'kafka') return (config.brokers as string[]).map((broker, i) => ({ field: `brokers.${i}`, host: hostOf(broker) }));
  return [{ field: 'address', host: hostOf(config.address as string) }];
}

/** The default name of a source's consumer group (or durable consumer). */
export const defaultGroup = (sourceId: string) => `hookrelay-${sourceId}`;
