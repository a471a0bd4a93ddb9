import amqp, { type ChannelModel, type ConfirmChannel } from 'amqplib';
import { z } from 'zod';
import type { ClaimedDelivery, Endpoint } from '../../domain/types.js';
import { EgressPolicy, EgressRefusedError } from '../../egress/policy.js';
import {
  AbortedError,
  ADDRESS_PATTERN,
  ConnectionPool,
  deliveryHeaders,
  fatal,
  fingerprintOf,
  hostOf,
  LookupError,
  payloadBytes,
  pinnedAddress,
  portOf,
  retry,
  settingsOf,
  success,
  TimeoutError,
  withTimeout,
  type PooledConnection,
} from './broker.js';
import type { Destination, SendResult } from './destination.js';
import { defineDestinationKind, tlsSetting } from './kinds.js';
import { renderTemplate } from './temporal.js';

const placeholdersKnown = (s: string) => [...s.matchAll(/\{([^{}]*)\}/g)].every(([, name]) => ['messageId', 'eventType', 'eventId'].includes(name) || /^header\.[A-Za-z0-9!#$%&'*+.^_`|~-]+$/.test(name));

const config = z
  .strictObject({
    /** host:port of the RabbitMQ server (AMQP 0-9-1). */
    address: z.string().regex(ADDRESS_PATTERN, { message: 'must be host:port' }),
    vhost: z.string().min(1).max(255).default('/'),
    /** The exchange; `""` is the default exchange, which routes to the queue named by the routing key. */
    exchange: z.string().max(255),
    /** `{eventType}`, `{messageId}`, `{eventId}`, `{header.NAME}` are filled from the message. */
    routingKey: z.string().max(255).refine(placeholdersKnown, { message: 'unknown placeholder (use {messageId}, {eventType}, {eventId} or {header.NAME})' }),
    /** A message no queue takes comes back (basic.return) and the attempt fails, rather than being dropped. */
    mandatory: z.boolean().default(true),
    username: z.string().min(1).max(1024).optional(),
    password: z.string().min(1).max(4096).optional(),
    tls: tlsSetting().optional(),
    /** Bound on one publish, connecting and the publisher confirm included. */
    timeoutMs: z.number().int().min(100).max(60_000).default(10_000),
  })
  .refine((c) => (c.username === undefined) === (c.password === undefined), { message: 'username and password go together', path: ['password'] });

export type RabbitmqConfig = z.output<typeof config>;

export const rabbitmqDestinationKind = defineDestinationKind({
  type: 'rabbitmq',
  config,
  secretFields: ['password', 'tls.clientKey'],
  describe: (c) => `amqp://${c.address}/${encodeURIComponent(c.vhost)}/${c.exchange || '(default)'}/${c.routingKey}`,
  hosts: (c) => [{ field: 'address', host: hostOf(c.address) }],
  open: ({ egress }) => new RabbitmqDestination(egress),
});

/** One connection and one confirm channel per endpoint; a channel closed by the server (404 exchange) breaks it. */
class RabbitConnection implements PooledConnection {
  broken = false;
  /** Message ids the server returned as unroutable, until their confirm arrives (a return precedes its ack). */
  readonly returned = new Set<string>();
  /** Why the channel or connection closed, for the attempts that were waiting on it. */
  closedBecause: string | null = null;

  constructor(
    readonly connection: ChannelModel,
    readonly channel: ConfirmChannel,
  ) {
    const lost = (why: string) => {
      this.broken = true;
      this.closedBecause ??= why;
    };
    connection.on('error', (error: Error) => lost(error.message));
    connection.on('close', () => lost('connection closed'));
    channel.on('error', (error: Error) => lost(error.message));
    channel.on('close', () => lost('channel closed'));
    channel.on('return', (returned: { properties: { messageId?: string } }) => {
      if (returned.properties.messageId) this.returned.add(returned.properties.messageId);
    });
  }

  async close(): Promise<void> {
    this.broken = true;
    await this.connection.close().catch(() => undefined);
  }
}

/**
 * Publishes one persistent message per delivery on a confirm channel: success is the broker's ack (the message is
 * on disk in every queue it was routed to); a nack, or a mandatory message the broker returned, is a failed attempt.
 */
export class RabbitmqDestination implements Destination {
  private readonly pool = new ConnectionPool<RabbitConnection>();

  constructor(private readonly egress: EgressPolicy = new EgressPolicy()) {}

  async send({ message, endpoint }: ClaimedDelivery, signal: AbortSignal): Promise<SendResult> {
    const parsed = config.safeParse(settingsOf(endpoint));
    if (!parsed.success) return fatal(`invalid rabbitmq destination: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    const c = parsed.data;
    const routingKey = renderTemplate(c.routingKey, message);
    if (typeof routingKey !== 'string') return fatal(`routingKey: the message has no header ${routingKey.missingHeader} (a source keeps the provider headers listed in its keepHeaders)`);
    if (Buffer.byteLength(routingKey) > 255) return fatal(`routingKey for this message is longer than AMQP's 255 bytes`);
    if (signal.aborted) return retry('aborted by shutdown');
    const where = `rabbitmq ${c.address}`;
    const headers = deliveryHeaders(message, endpoint);
    let pooled: RabbitConnection | null = null;
    try {
      const outcome = await withTimeout(
        (async () => {
          pooled = await this.pool.get(endpoint.id, fingerprintOf(c), () => this.connect(c));
          const connection = pooled;
          connection.returned.delete(message.id);
          await new Promise<void>((resolve, reject) => {
            connection.channel.publish(
              c.exchange,
              routingKey,
              payloadBytes(message),
              { persistent: true, mandatory: c.mandatory, messageId: message.id, type: message.eventType, contentType: message.contentType, timestamp: Math.floor(message.createdAt / 1000), headers },
              (error: unknown) => (error ? reject(new NackError(connection.closedBecause ?? 'the broker refused the message (nack)')) : resolve()),
            );
          });
          const unroutable = connection.returned.delete(message.id);
          return unroutable ? ('unroutable' as const) : ('acked' as const);
        })(),
        c.timeoutMs,
        `publish to ${c.exchange || '(default exchange)'}`,
        signal,
      );
      if (outcome === 'unroutable') {
        return retry(`${where}: unroutable: no queue is bound to exchange ${JSON.stringify(c.exchange)} for routing key ${JSON.stringify(routingKey)} (the broker returned the mandatory message)`);
      }
      return success({ exchange: c.exchange, routingKey, confirmed: true });
    } catch (error) {
      if (error instanceof EgressRefusedError) return fatal(error.message);
      if (error instanceof AbortedError) return retry(error.message);
      if (error instanceof TimeoutError || error instanceof LookupError || (pooled as RabbitConnection | null)?.broken) this.pool.discard(endpoint.id);
      return retry(`${where}: ${(error as Error).message}`);
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
          out[endpoint.url] = (error as Error).message;
        }
      }),
    );
    return out;
  }

  private async connect(c: RabbitmqConfig): Promise<RabbitConnection> {
    const host = hostOf(c.address);
    const address = await pinnedAddress(this.egress, host);
    const t = c.tls === undefined || c.tls === false ? null : c.tls === true ? {} : c.tls;
    const connection = await amqp.connect(
      { protocol: t ? 'amqps' : 'amqp', hostname: address, port: portOf(c.address), vhost: c.vhost, username: c.username ?? 'guest', password: c.password ?? 'guest', heartbeat: 30 },
      { timeout: c.timeoutMs, clientProperties: { connection_name: 'hookrelay' }, ...(t ? { servername: t.serverName ?? host, ca: t.caCert, cert: t.clientCert, key: t.clientKey } : {}) },
    );
    try {
      const channel = await connection.createConfirmChannel();
      return new RabbitConnection(connection, channel);
    } catch (error) {
      await connection.close().catch(() => undefined);
      throw error;
    }
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}

class NackError extends Error {}
