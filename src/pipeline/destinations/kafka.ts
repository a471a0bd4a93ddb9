import { connect as netConnect, isIP, Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { Kafka, logLevel, type ISocketFactory, type Producer, type SASLOptions } from 'kafkajs';
import { z } from 'zod';
import type { ClaimedDelivery, Endpoint } from '../../domain/types.js';
import { canonicalHost, EgressPolicy, EgressRefusedError } from '../../egress/policy.js';
import { AbortedError, ADDRESS_PATTERN, ConnectionPool, deliveryHeaders, fatal, fingerprintOf, hostOf, payloadBytes, retry, settingsOf, success, TimeoutError, withTimeout, type PooledConnection } from './broker.js';
import type { Destination, SendResult } from './destination.js';
import { defineDestinationKind, tlsSetting } from './kinds.js';
import { renderTemplate } from './temporal.js';

const placeholdersKnown = (s: string) => [...s.matchAll(/\{([^{}]*)\}/g)].every(([, name]) => ['messageId', 'eventType', 'eventId'].includes(name) || /^header\.[A-Za-z0-9!#$%&'*+.^_`|~-]+$/.test(name));
const PLACEHOLDER_HELP = 'unknown placeholder (use {messageId}, {eventType}, {eventId} or {header.NAME})';

/** A SASL login (destinations and sources). */
export const kafkaSasl = z.strictObject({
  mechanism: z.enum(['plain', 'scram-sha-256', 'scram-sha-512']),
  username: z.string().min(1).max(1024),
  password: z.string().min(1).max(4096),
});

const config = z.strictObject({
  /** Bootstrap brokers, host:port each; the cluster's other brokers are learned from them (and checked too). */
  brokers: z.array(z.string().regex(ADDRESS_PATTERN, { message: 'must be host:port' })).min(1).max(32),
  /** The topic; `{eventType}`, `{messageId}`, `{eventId}`, `{header.NAME}` are filled from the message. */
  topic: z
    .string()
    .min(1)
    .max(1000)
    .refine(placeholdersKnown, { message: PLACEHOLDER_HELP })
    .refine((t) => /^[A-Za-z0-9._-]+$/.test(t.replace(/\{[^{}]*\}/g, 'x')), { message: 'must be a Kafka topic name (letters, digits, . _ -)' }),
  /** The record key; default `{appId}`: every message of an app on one partition, in order. */
  key: z
    .string()
    .min(1)
    .max(1000)
    .refine((k) => placeholdersKnown(k.replaceAll('{appId}', '')), { message: 'unknown placeholder (use {appId}, {messageId}, {eventType}, {eventId} or {header.NAME})' })
    .default('{appId}'),
  sasl: kafkaSasl.optional(),
  ssl: tlsSetting().optional(),
  /** Bound on one produce, connecting and the acknowledgement of every in-sync replica included. */
  timeoutMs: z.number().int().min(100).max(60_000).default(10_000),
});

export type KafkaConfig = z.output<typeof config>;

export const kafkaDestinationKind = defineDestinationKind({
  type: 'kafka',
  config,
  secretFields: ['sasl.password', 'ssl.clientKey'],
  describe: (c) => `kafka://${c.brokers.join(',')}/${c.topic}`,
  hosts: (c) => c.brokers.map((broker, i) => ({ field: `brokers.${i}`, host: hostOf(broker) })),
  open: ({ egress }) => new KafkaDestination(egress),
});

class KafkaProducer implements PooledConnection {
  broken = false;
  constructor(readonly producer: Producer) {
    producer.on(producer.events.DISCONNECT, () => (this.broken = true));
  }
  async close(): Promise<void> {
    this.broken = true;
    await this.producer.disconnect().catch(() => undefined);
  }
}

/**
 * Produces one record per delivery with an idempotent producer and acks=all: success is the partition leader's answer
 * once every in-sync replica has the record (partition and offset).
 */
export class KafkaDestination implements Destination {
  private readonly pool = new ConnectionPool<KafkaProducer>();

  constructor(private readonly egress: EgressPolicy = new EgressPolicy()) {}

  async send({ message, endpoint }: ClaimedDelivery, signal: AbortSignal): Promise<SendResult> {
    const parsed = config.safeParse(settingsOf(endpoint));
    if (!parsed.success) return fatal(`invalid kafka destination: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    const c = parsed.data;
    const topic = renderTemplate(c.topic, message);
    const key = renderTemplate(c.key.replaceAll('{appId}', message.appId), message);
    for (const [field, value] of [['topic', topic], ['key', key]] as const) {
      if (typeof value !== 'string') return fatal(`${field}: the message has no header ${value.missingHeader} (a source keeps the provider headers listed in its keepHeaders)`);
    }
    if (!/^[A-Za-z0-9._-]{1,249}$/.test(topic as string)) return fatal(`topic ${JSON.stringify(topic)} is not a valid Kafka topic name for this message`);
    if (signal.aborted) return retry('aborted by shutdown');
    try {
      const [record] = await withTimeout(
        (async () => {
          const { producer } = await this.pool.get(endpoint.id, fingerprintOf(c), () => this.connect(c));
          return producer.send({
            topic: topic as string,
            acks: -1,
            timeout: c.timeoutMs,
            messages: [{ key: key as string, value: payloadBytes(message), headers: deliveryHeaders(message, endpoint) }],
          });
        })(),
        c.timeoutMs,
        `produce to ${topic}`,
        signal,
      );
      return success({ topic: record.topicName, partition: record.partition, offset: record.baseOffset ?? record.offset ?? null });
    } catch (error) {
      if (error instanceof AbortedError) return retry(error.message);
      const refused = egressRefusal(error);
      if (refused) {
        this.pool.discard(endpoint.id);
        return fatal(refused);
      }
      // Timeouts, lost connections, NOT_ENOUGH_REPLICAS, an unknown topic, SASL failures: all may heal. The producer
      // is dropped so the next attempt dials again (an idempotent producer's sequence must not continue after a
      // request whose outcome is unknown).
      this.pool.discard(endpoint.id);
      const where = `kafka ${c.brokers.join(',')}`;
      return retry(`${where}: ${error instanceof TimeoutError ? error.message : describeError(error)}`);
    }
  }

  async readiness(endpoints: Endpoint[]): Promise<Record<string, string>> {
    const out: Record<string, string> = {};
    await Promise.all(
      endpoints.map(async (endpoint) => {
        const parsed = config.safeParse(settingsOf(endpoint));
        if (!parsed.success) {
          out[endpoint.url] = `invalid configuration: ${parsed.error.issues[0].message}`;
          return;
        }
        const c = parsed.data;
        try {
          await withTimeout(this.pool.get(endpoint.id, fingerprintOf(c), () => this.connect(c)), 2_000, 'connecting');
          out[endpoint.url] = 'ok';
        } catch (error) {
          this.pool.discard(endpoint.id);
          out[endpoint.url] = egressRefusal(error) ?? describeError(error);
        }
      }),
    );
    return out;
  }

  private async connect(c: KafkaConfig): Promise<KafkaProducer> {
    const ssl = c.ssl === undefined || c.ssl === false ? undefined : c.ssl === true ? {} : { servername: c.ssl.serverName, ca: c.ssl.caCert, cert: c.ssl.clientCert, key: c.ssl.clientKey };
    const kafka = new Kafka({
      clientId: 'hookrelay',
      brokers: c.brokers,
      ssl: ssl === undefined ? undefined : ssl,
      sasl: c.sasl as SASLOptions | undefined,
      connectionTimeout: Math.min(c.timeoutMs, 10_000),
      requestTimeout: c.timeoutMs,
      // A few quick tries for a leader change; hookrelay's own schedule retries anything longer.
      retry: { retries: 2, initialRetryTime: 100, maxRetryTime: 1_000 },
      socketFactory: egressSocketFactory(this.egress),
      logLevel: logLevel.NOTHING,
    });
    // Idempotent: the broker drops a batch it already has when a retry of this producer resends it.
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
    const pooled = new KafkaProducer(producer);
    try {
      await producer.connect();
    } catch (error) {
      await pooled.close();
      throw error;
    }
    return pooled;
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}

/**
 * Every connection, to a bootstrap broker or to one the cluster names, goes through the egress policy: names are
 * resolved by its lookup (which drops refused addresses), IP literals are checked here. Kafka sources dial the same way.
 */
export function egressSocketFactory(egress: EgressPolicy): ISocketFactory {
  return ({ host, port, ssl, onConnect }) => {
    const name = canonicalHost(host) ?? host;
    const refusal = isIP(name) ? egress.refuseLiteral(name) : null;
    if (refusal) {
      const socket = new Socket();
      process.nextTick(() => socket.destroy(new EgressRefusedError(refusal)));
      return socket;
    }
    const socket = ssl
      ? tlsConnect({ host: name, port, lookup: egress.lookup, ...(isIP(name) ? {} : { servername: name }), ...ssl }, onConnect)
      : netConnect({ host: name, port, lookup: egress.lookup }, onConnect);
    socket.setKeepAlive(true, 60_000);
    return socket;
  };
}

/** The egress refusal somewhere in a kafkajs error's causes, if that is what failed. */
export function egressRefusal(error: unknown): string | null {
  for (let e = error as { message?: string; originalError?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 6; depth++) {
    if (e instanceof EgressRefusedError) return e.message;
    if (typeof e.message === 'string' && e.message.startsWith('refused: ')) return e.message;
    e = (e.originalError ?? e.cause) as typeof e;
  }
  return null;
}

/** kafkajs wraps the cause (a broker error code, a socket error) in its own errors: name both. */
export function describeError(error: unknown): string {
  const e = error as { message?: string; type?: string; originalError?: { message?: string; type?: string } };
  const message = e?.message ?? String(error);
  const cause = e?.originalError?.message;
  const type = e?.type ?? e?.originalError?.type;
  return [type && !message.includes(type) ? `${type}: ` : '', message, cause && cause !== message ? ` (${cause})` : ''].join('');
}
