import { connect, headers as natsHeaders, type ConnectionOptions, type JetStreamClient, type NatsConnection, type TlsOptions } from 'nats';
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


/** A publish subject: dot-separated tokens, none empty, no spaces or wildcards (placeholders count as one token). */
const isSubject = (value: string) => /^[^\s*>]+$/.test(value) && !value.split('.').includes('');

const config = z
  .strictObject({
    /** host:port of a NATS server with JetStream enabled. */
    address: z.string().regex(ADDRESS_PATTERN, { message: 'must be host:port' }),
    /** The subject a JetStream stream takes; `{eventType}`, `{messageId}`, `{eventId}`, `{header.NAME}` are filled in. */
    subject: z
      .string()
      .min(1)
      .max(1000)
      .refine((s) => isSubject(s.replace(/\{[^{}]*\}/g, 'x')), { message: 'must be a NATS subject (dot-separated tokens, no wildcards or spaces)' })
      .refine((s) => [...s.matchAll(/\{([^{}]*)\}/g)].every(([, name]) => ['messageId', 'eventType', 'eventId'].includes(name) || /^header\.[A-Za-z0-9!#$%&'*+.^_`|~-]+$/.test(name)), {
        message: 'unknown placeholder (use {messageId}, {eventType}, {eventId} or {header.NAME})',
      }),
    /** Refuse the publish unless the subject lands in this stream (JetStream's `Nats-Expected-Stream`). */
    stream: z.string().regex(/^[^\s.*>]{1,255}$/, { message: 'must be a stream name (no spaces, dots or wildcards)' }).optional(),
    user: z.string().min(1).max(256).optional(),
    password: z.string().min(1).max(4096).optional(),
    token: z.string().min(1).max(4096).optional(),
    tls: tlsSetting().optional(),
    /** Bound on one publish, connecting and the PubAck included. */
    timeoutMs: z.number().int().min(100).max(60_000).default(10_000),
  })
  .refine((c) => (c.user === undefined) === (c.password === undefined), { message: 'user and password go together', path: ['password'] })
  .refine((c) => c.token === undefined || c.user === undefined, { message: 'use a token or a user and password, not both', path: ['token'] });

export type NatsConfig = z.output<typeof config>;

export const natsDestinationKind = defineDestinationKind({
  type: 'nats',
  config,
  secretFields: ['password', 'token', 'tls.clientKey'],
  describe: (c) => `nats://${c.address}/${c.subject}`,
  hosts: (c) => [{ field: 'address', host: hostOf(c.address) }],
  open: ({ egress }) => new NatsDestination(egress),
});

class NatsPooled implements PooledConnection {
  readonly js: JetStreamClient;
  constructor(readonly nc: NatsConnection) {
    this.js = nc.jetstream();
  }
  get broken(): boolean {
    return this.nc.isClosed();
  }
  async close(): Promise<void> {
    if (!this.nc.isClosed()) await this.nc.close().catch(() => undefined);
  }
}

/**
 * Publishes one JetStream message per delivery with `Nats-Msg-Id` = the message id, so a retry after a lost PubAck
 * is dropped by the stream's duplicate window; success is the PubAck (stream and sequence).
 */
export class NatsDestination implements Destination {
  private readonly pool = new ConnectionPool<NatsPooled>();

  constructor(private readonly egress: EgressPolicy = new EgressPolicy()) {}

  async send({ message, endpoint }: ClaimedDelivery, signal: AbortSignal): Promise<SendResult> {
    const parsed = config.safeParse(settingsOf(endpoint));
    if (!parsed.success) return fatal(`invalid nats destination: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    const c = parsed.data;
    const subject = renderTemplate(c.subject, message);
    if (typeof subject !== 'string') return fatal(`subject: the message has no header ${subject.missingHeader} (a source keeps the provider headers listed in its keepHeaders)`);
    if (!isSubject(subject)) return fatal(`subject ${JSON.stringify(subject)} is not a valid NATS subject for this message`);
    if (signal.aborted) return retry('aborted by shutdown');
    const where = `nats ${c.address}`;
    const h = natsHeaders();
    for (const [name, value] of Object.entries(deliveryHeaders(message, endpoint))) h.set(name, value);
    try {
      const ack = await withTimeout(
        (async () => {
          const { js } = await this.pool.get(endpoint.id, fingerprintOf(c), () => this.connect(c));
          return js.publish(subject, payloadBytes(message), { msgID: message.id, headers: h, timeout: c.timeoutMs, expect: c.stream ? { streamName: c.stream } : undefined });
        })(),
        c.timeoutMs,
        `publish to ${subject}`,
        signal,
      );
      return success({ stream: ack.stream, seq: ack.seq, duplicate: ack.duplicate });
    } catch (error) {
      if (error instanceof EgressRefusedError) return fatal(error.message);
      if (error instanceof AbortedError) return retry(error.message);
      if (error instanceof TimeoutError || error instanceof LookupError) {
        this.pool.discard(endpoint.id);
        return retry(`${where}: ${error.message}`);
      }
      return retry(`${where}: ${describeError(error, subject)}`);
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
          const { nc } = await withTimeout(this.pool.get(endpoint.id, fingerprintOf(c), () => this.connect(c)), 2_000, 'connecting');
          await withTimeout(nc.flush(), 2_000, 'flush');
          out[endpoint.url] = 'ok';
        } catch (error) {
          this.pool.discard(endpoint.id);
          out[endpoint.url] = describeError(error, '');
        }
      }),
    );
    return out;
  }

  /**
   * Connects to the pinned address only: no reconnects and no servers learned from the cluster (those would bypass
   * the egress policy); a closed connection is dialled again by the next delivery.
   */
  private async connect(c: NatsConfig): Promise<NatsPooled> {
    return new NatsPooled(await connect({ ...(await natsConnection(c, this.egress)), name: 'hookrelay', noEcho: true }));
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}

/** nats.js errors carry a code; `503` on a publish means no stream takes the subject. */
function describeError(error: unknown, subject: string): string {
  const code = (error as { code?: string })?.code;
  if (code === '503') return `no JetStream stream takes subject ${subject} (503 no responders)`;
  if (code === 'AUTHORIZATION_VIOLATION') return 'authorization violation (wrong user, password or token)';
  const message = (error as Error)?.message ?? String(error);
  return code && !message.includes(code) ? `${code}: ${message}` : message;
}

/**
 * How hookrelay dials a NATS server (destinations and sources): the egress-checked address pinned, no reconnects (a
 * broken connection is dialled again by its owner; servers a cluster advertises would bypass the egress policy).
 */
export async function natsConnection(
  c: Pick<NatsConfig, 'address' | 'user' | 'password' | 'token' | 'timeoutMs' | 'tls'>,
  egress: EgressPolicy,
): Promise<ConnectionOptions> {
  const host = hostOf(c.address);
  const address = await pinnedAddress(egress, host);
  const t = c.tls === undefined || c.tls === false ? null : c.tls === true ? {} : c.tls;
  return {
    servers: address.includes(':') ? `[${address}]:${portOf(c.address)}` : `${address}:${portOf(c.address)}`,
    user: c.user,
    pass: c.password,
    token: c.token,
    reconnect: false,
    ignoreClusterUpdates: true,
    timeout: c.timeoutMs,
    // nats.js lays these over its own TLS options: the name, not the pinned address, is the server name checked.
    tls: t ? ({ servername: t.serverName ?? host, ca: t.caCert, cert: t.clientCert, key: t.clientKey } as TlsOptions) : undefined,
  };
}
