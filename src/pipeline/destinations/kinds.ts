import { z } from 'zod';
import { HookrelayError, type FieldIssue } from '../../domain/errors.js';
import type { DestinationConfig } from '../../domain/types.js';
import type { EgressPolicy } from '../../egress/policy.js';
import type { Destination } from './destination.js';
import type { ListenerHub } from './listen.js';

/** What a destination kind is opened with: the process's clock, egress policy and `hookrelay listen` connections. */
export interface OpenOptions {
  now?: () => number;
  egress?: EgressPolicy;
  listeners?: ListenerHub;
}

/**
 * A kind of non-HTTP destination an endpoint may have (`destination: { type, … }`): how its settings are
 * validated, which of them are secret, and the one Destination per process that delivers to all such endpoints.
 */
export interface DestinationKind<S extends z.ZodType = z.ZodType> {
  type: string;
  config: S;
  /** Settings never returned by the API; `a.b` names a field of an object setting. */
  secretFields: string[];
  /** A URL-like name for the endpoint's `url`, e.g. `temporal://host:7233/default/OrderWorkflow`. */
  describe(config: z.output<S>): string;
  /** Endpoints of this kind are made by hookrelay itself (a `hookrelay listen` session), never through the endpoint API. */
  internal?: boolean;
  /** Hosts the destination dials, by setting name (`brokers.1` for a list entry), so that internal targets are refused when the endpoint is saved. */
  hosts?(config: z.output<S>): { field: string; host: string }[];
  /** `egress` decides which addresses the destination may connect to. */
  open(options: OpenOptions): Destination;
}

export const defineDestinationKind = <S extends z.ZodType>(kind: DestinationKind<S>): DestinationKind<S> => kind;

/** Validates `destination` of an endpoint body (422 naming the field) and returns the normalised config. */
export function validateDestination(kinds: ReadonlyMap<string, DestinationKind>, value: { type: string } & Record<string, unknown>): DestinationConfig {
  const kind = kinds.get(value.type);
  if (!kind || kind.internal) {
    const public_ = [...kinds.values()].filter((k) => !k.internal).map((k) => k.type);
    throw new HookrelayError('validation', `body.destination.type: unknown destination type ${JSON.stringify(value.type)}`, [
      { loc: ['body', 'destination', 'type'], msg: `must be one of ${public_.join(', ') || '(none)'}`, type: 'enum' },
    ]);
  }
  const { type, ...settings } = value;
  const parsed = kind.config.safeParse(settings);
  if (!parsed.success) {
    const issues: FieldIssue[] = parsed.error.issues.map((issue) => ({
      loc: ['body', 'destination', ...issue.path.map((p) => (typeof p === 'symbol' ? String(p) : p))],
      msg: issue.message,
      type: issue.code,
    }));
    throw new HookrelayError('validation', `${issues[0].loc.join('.')}: ${issues[0].msg}`, issues);
  }
  return { type, ...(parsed.data as object) };
}

export function redactDestination(kinds: ReadonlyMap<string, DestinationKind>, destination: DestinationConfig): DestinationConfig {
  const redact = (value: Record<string, unknown>, prefix: string): Record<string, unknown> =>
    Object.fromEntries(
      Object.entries(value)
        .filter(([key]) => !secret.has(prefix + key))
        .map(([key, v]) => [key, v !== null && typeof v === 'object' && !Array.isArray(v) ? redact(v as Record<string, unknown>, `${prefix}${key}.`) : v]),
    );
  const secret = new Set(kinds.get(destination.type)?.secretFields ?? []);
  return redact(destination, '') as DestinationConfig;
}

/** A PEM-encoded certificate or key setting of a destination (up to 64 KiB). */
export const pem = (what: string) => z.string().includes('-----BEGIN', { message: `${what} must be PEM` }).max(65_536);

/**
 * A TLS setting of a broker connection: `true` (the system's CAs, no client certificate), or the server name, CA and
 * client certificate and key as PEM (`clientKey` is secret). Destinations and broker sources take the same one.
 */
export const tlsSetting = () =>
  z.union([
    z.boolean(),
    z
      .strictObject({
        serverName: z.string().min(1).max(255).optional(),
        caCert: pem('caCert').optional(),
        clientCert: pem('clientCert').optional(),
        clientKey: pem('clientKey').optional(),
      })
      .refine((t) => (t.clientCert === undefined) === (t.clientKey === undefined), { message: 'clientCert and clientKey go together (mTLS)', path: ['clientKey'] }),
  ]);
