import { Redis, type RedisOptions } from 'ioredis';
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


const config = z.strictObject({
  /** host:port of the Redis server. */
  address: z.string().regex(ADDRESS_PATTERN, { message: 'must be host:port' }),
  /** The stream key; `{eventType}`, `{messageId}`, `{eventId}`, `{header.NAME}` are filled from the message. */
  stream: z
    .string()
    .min(1)
    .max(1000)
    .refine((s) => [...s.matchAll(/\{([^{}]*)\}/g)].every(([, name]) => ['messageId', 'eventType', 'eventId'].includes(name) || /^header\.[A-Za-z0-9!#$%&'*+.^_`|~-]+$/.test(name)), {
      message: 'unknown placeholder (use {messageId}, {eventType}, {eventId} or {header.NAME})',
    }),
  /** `XADD … MAXLEN ~ n`: Redis trims the stream to about this many entries. */
  maxLen: z.number().int().min(1).max(1_000_000_000).optional(),
  /** ACL user (Redis 6+); without it, `password` is the `requirepass` password. */
  username: z.string().min(1).max(256).optional(),
  password: z.string().min(1).max(4096).optional(),
  db: z.number().int().min(0).max(15).default(0),
  tls: tlsSetting().optional(),
  /** Bound on one publish, connecting included. */
  timeoutMs: z.number().int().min(100).max(60_000).default(10_000),
});

export type RedisConfig = z.output<typeof config>;

export const redisDestinationKind = defineDestinationKind({
  type: 'redis',
  config,
  secretFields: ['password', 'tls.clientKey'],
  describe: (c) => `redis://${c.address}/${c.db}/${c.stream}`,
  hosts: (c) => [{ field: 'address', host: hostOf(c.address) }],
  open: ({ egress }) => new RedisDestination(egress),
});

/** The fields of each stream entry, in this order; `payload` holds the stored bytes as they are. */
export const REDIS_FIELDS = ['message-id', 'event-type', 'headers', 'payload'] as const;

class RedisConnection implements PooledConnection {
  broken = false;
  constructor(readonly client: Redis) {
    client.on('error', () => undefined);
    client.on('end', () => (this.broken = true));
  }
  async close(): Promise<void> {
    this.broken = true;
    this.client.disconnect();
  }
}

/** Adds one stream entry per delivery (XADD); success is Redis' answer, the entry id. */
export class RedisDestination implements Destination {
  private readonly pool = new ConnectionPool<RedisConnection>();

  constructor(private readonly egress: EgressPolicy = new EgressPolicy()) {}

  async send({ message, endpoint }: ClaimedDelivery, signal: AbortSignal): Promise<SendResult> {
    const parsed = config.safeParse(settingsOf(endpoint));
    if (!parsed.success) return fatal(`invalid redis destination: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    const c = parsed.data;
    const stream = renderTemplate(c.stream, message);
    if (typeof stream !== 'string') return fatal(`stream: the message has no header ${stream.missingHeader} (a source keeps the provider headers listed in its keepHeaders)`);
    if (signal.aborted) return retry('aborted by shutdown');
    const where = `redis ${c.address}`;
    const args: (string | Buffer | number)[] = [stream];
    if (c.maxLen !== undefined) args.push('MAXLEN', '~', c.maxLen);
    args.push('*', REDIS_FIELDS[0], message.id, REDIS_FIELDS[1], message.eventType, REDIS_FIELDS[2], JSON.stringify(deliveryHeaders(message, endpoint)), REDIS_FIELDS[3], payloadBytes(message));
    try {
      const id = await withTimeout(
        (async () => {
          const { client } = await this.pool.get(endpoint.id, fingerprintOf(c), () => this.connect(c));
          return client.call('XADD', args);
        })(),
        c.timeoutMs,
        `XADD to ${stream}`,
        signal,
      );
      return success({ stream, id });
    } catch (error) {
      if (error instanceof EgressRefusedError) return fatal(error.message);
      if (error instanceof AbortedError) return retry(error.message);
      if (error instanceof TimeoutError || error instanceof LookupError) {
        this.pool.discard(endpoint.id);
        return retry(`${where}: ${error.message}`);
      }
      // WRONGTYPE (the key holds something else), NOAUTH, WRONGPASS, OOM, a lost connection: all may heal.
      if (!isReplyError(error)) this.pool.discard(endpoint.id);
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
          const { client } = await withTimeout(this.pool.get(endpoint.id, fingerprintOf(c), () => this.connect(c)), 2_000, 'connecting');
          await withTimeout(client.ping(), 2_000, 'PING');
          out[endpoint.url] = 'ok';
        } catch (error) {
          this.pool.discard(endpoint.id);
          out[endpoint.url] = (error as Error).message;
        }
      }),
    );
    return out;
  }

  /** Connects to the pinned address; no automatic reconnects (a broken connection is dropped and dialled again). */
  private async connect(c: RedisConfig): Promise<RedisConnection> {
    const host = hostOf(c.address);
    const address = await pinnedAddress(this.egress, host);
    const options: RedisOptions = {
      host: address,
      port: portOf(c.address),
      username: c.username,
      password: c.password,
      db: c.db,
      lazyConnect: true,
      connectTimeout: c.timeoutMs,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
      enableReadyCheck: true,
      connectionName: 'hookrelay',
    };
    if (c.tls) {
      const t = c.tls === true ? {} : c.tls;
      options.tls = { servername: t.serverName ?? host, ca: t.caCert, cert: t.clientCert, key: t.clientKey };
    }
    const connection = new RedisConnection(new Redis(options));
    // A refused AUTH or SELECT arrives as an `error` event; connect() itself then only says the connection closed.
    let refusal: Error | null = null;
    connection.client.once('error', (error: Error) => (refusal = error));
    try {
      await connection.client.connect();
    } catch (error) {
      await connection.close();
      throw refusal ?? error;
    }
    return connection;
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}

/** An error Redis answered with (the connection itself is fine). */
const isReplyError = (error: unknown) => (error as Error)?.name === 'ReplyError';
