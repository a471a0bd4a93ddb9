import { isIP } from 'node:net';
import type { Endpoint, Message } from '../../domain/types.js';
import { canonicalHost, EgressRefusedError, type EgressPolicy } from '../../egress/policy.js';
import type { SendResult } from './destination.js';

/** What the broker destinations (redis, nats) share: the headers they carry, the payload bytes, dialling, pooling. */

/**
 * The headers a broker record carries beside the payload: the endpoint's own headers, a source message's kept
 * provider headers, then hookrelay's (which win): content type, message id, event type, and for a source message its
 * source and whether it was verified. Names are lower-cased.
 */
export function deliveryHeaders(message: Message, endpoint: Endpoint): Record<string, string> {
  const headers: Record<string, string> = Object.fromEntries(Object.entries(endpoint.headers).map(([k, v]) => [k.toLowerCase(), v]));
  if (message.sourceId) Object.assign(headers, message.headers ?? {});
  Object.assign(headers, { 'content-type': message.contentType, 'webhook-id': message.id, 'x-hookrelay-event-type': message.eventType });
  if (message.sourceId) {
    headers['x-hookrelay-source'] = message.sourceId;
    headers['x-hookrelay-verified'] = String(message.verified === true);
  }
  return headers;
}

/** The payload exactly as stored (the JSON text the client sent); `{}` for a message whose payload was purged. */
export function payloadBytes(message: Message): Buffer {
  return message.payload === null ? Buffer.from('{}') : Buffer.from(message.payload.buffer, message.payload.byteOffset, message.payload.byteLength);
}

/** `host:port` or `[ipv6]:port` as a setting. */
export const ADDRESS_PATTERN = /^(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/;

/** The host of `host:port` or `[ipv6]:port`, without brackets. */
export const hostOf = (address: string) => address.slice(0, address.lastIndexOf(':')).replace(/^\[(.*)\]$/, '$1');
export const portOf = (address: string) => Number(address.slice(address.lastIndexOf(':') + 1));

/** A name that did not resolve (may heal: retried on the endpoint's schedule). */
export class LookupError extends Error {}

/**
 * The one address a broker connection dials: `host` resolved now through the egress policy and pinned (IPv4 first,
 * as local brokers often listen on 127.0.0.1 only while `localhost` resolves to ::1 first). The connection never
 * resolves the name itself, so what the policy checked is what is dialled.
 */
export async function pinnedAddress(egress: EgressPolicy, host: string): Promise<string> {
  const name = canonicalHost(host) ?? host;
  if (isIP(name)) {
    const refusal = egress.refuseLiteral(name);
    if (refusal) throw new EgressRefusedError(refusal);
    return name;
  }
  let found: { address: string; family: number }[];
  try {
    found = await egress.resolve(name);
  } catch (error) {
    if (error instanceof EgressRefusedError) throw error;
    throw new LookupError(`cannot resolve ${name}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  return (found.find((a) => a.family === 4) ?? found[0]).address;
}

/** A connection a pool keeps; `close` ends it and `broken` says it can no longer be used. */
export interface PooledConnection {
  readonly broken: boolean;
  close(): Promise<void>;
}

interface Entry<C extends PooledConnection> {
  fingerprint: string;
  connection: Promise<C>;
  lastUsed: number;
}

/** Idle time after which a connection is closed: this is also how a deleted endpoint's connection goes. */
export const IDLE_CONNECTION_MS = 60_000;

/**
 * One connection per endpoint. A connection is opened by the first delivery, reused by the next ones, and closed
 * when the endpoint's settings change (its fingerprint differs), when it breaks (the next delivery dials again), when
 * it has been idle for IDLE_CONNECTION_MS (a deleted or disabled endpoint sends no more), and on close.
 */
export class ConnectionPool<C extends PooledConnection> {
  private readonly entries = new Map<string, Entry<C>>();
  private readonly sweeper: NodeJS.Timeout;
  private closed = false;

  constructor(private readonly idleMs = IDLE_CONNECTION_MS) {
    this.sweeper = setInterval(() => this.sweep(), Math.max(1_000, Math.floor(idleMs / 2)));
    this.sweeper.unref();
  }

  /** The endpoint's connection for these settings, opened with `open` when there is none (or only a stale one). */
  async get(endpointId: string, fingerprint: string, open: () => Promise<C>): Promise<C> {
    if (this.closed) throw new Error('the destination is closed');
    const entry = this.entries.get(endpointId);
    if (entry && entry.fingerprint === fingerprint) {
      const connection = await entry.connection.catch(() => null);
      if (connection && !connection.broken) {
        entry.lastUsed = Date.now();
        return connection;
      }
    }
    if (entry && this.entries.get(endpointId) === entry) this.drop(endpointId, entry);
    const opening = this.entries.get(endpointId);
    if (opening && opening.fingerprint === fingerprint) return opening.connection;
    const fresh: Entry<C> = { fingerprint, connection: open(), lastUsed: Date.now() };
    this.entries.set(endpointId, fresh);
    // A failed dial is not kept: the next delivery dials again.
    fresh.connection.catch(() => {
      if (this.entries.get(endpointId) === fresh) this.entries.delete(endpointId);
    });
    return fresh.connection;
  }

  /** Closes the endpoint's connection after an error that leaves it unusable. */
  discard(endpointId: string): void {
    const entry = this.entries.get(endpointId);
    if (entry) this.drop(endpointId, entry);
  }

  private drop(endpointId: string, entry: Entry<C>): void {
    this.entries.delete(endpointId);
    void entry.connection.then((c) => c.close()).catch(() => undefined);
  }

  private sweep(): void {
    const now = Date.now();
    for (const [id, entry] of this.entries) if (now - entry.lastUsed > this.idleMs) this.drop(id, entry);
  }

  /** How many connections are open or opening (for tests and readiness). */
  get size(): number {
    return this.entries.size;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.sweeper);
    const entries = [...this.entries.values()];
    this.entries.clear();
    await Promise.all(entries.map((e) => e.connection.then((c) => c.close()).catch(() => undefined)));
  }
}

/** A destination setting's fingerprint: a connection is reused only while every setting it was opened with holds. */
export const fingerprintOf = (settings: unknown) => JSON.stringify(settings);

export const retry = (error: string): SendResult => ({ kind: 'retry', statusCode: 0, responseBody: '', error, retryAfterMs: null });
export const fatal = (error: string): SendResult => ({ kind: 'fatal', statusCode: 0, responseBody: '', error });
export const success = (answer: Record<string, unknown>): SendResult => ({ kind: 'success', statusCode: 200, responseBody: JSON.stringify(answer) });

export function settingsOf(endpoint: Endpoint): Record<string, unknown> {
  const { type: _type, ...settings } = endpoint.destination ?? { type: '' };
  return settings;
}

/** Rejects after `ms` (or when `signal` aborts) with a message naming what timed out. */
export function withTimeout<T>(work: Promise<T>, ms: number, what: string, signal?: AbortSignal): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  const bound = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(`${what} timed out after ${ms} ms`)), ms);
    if (signal) {
      onAbort = () => reject(new AbortedError('aborted by shutdown'));
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
    }
  });
  return Promise.race([work, bound]).finally(() => {
    clearTimeout(timer);
    if (onAbort) signal?.removeEventListener('abort', onAbort);
  });
}

export class TimeoutError extends Error {}
export class AbortedError extends Error {}
