import { z } from 'zod';
import { anyHmacMatches, decodeSignature, type Algorithm } from './crypto.js';

/** A provider's request exactly as received: raw body bytes, lower-cased header names. */
export interface InboundRequest {
  method: string;
  /** The URL the provider called, as it saw it (a source's `publicUrl` when set, for schemes that sign the URL). */
  url: string;
  headers: Record<string, string>;
  body: Buffer;
}

/** What verification concluded. Expected outcomes are values: the ingest handler answers each one its own way. */
export type Verdict =
  | {
      kind: 'verified';
      /** The provider's event type (Stripe `type`, GitHub `X-GitHub-Event` + `action`, …); null when it has none. */
      eventType: string | null;
      /** The provider's delivery id for dedupe; null to dedupe on a hash of the body. */
      deliveryId: string | null;
      /** The answer the provider needs once the request is stored (e.g. Discord's deferred interaction response); default `200 {id, duplicate}`. */
      ack?: { status: number; contentType: string; body: string };
    }
  | { kind: 'rejected'; reason: string }
  /** A provider handshake (Slack url_verification, Twitch challenge, …): answered as is, creates no message. */
  | { kind: 'handshake'; status: number; contentType: string; body: string };

export interface Verifier {
  verify(request: InboundRequest, now: number): Verdict;
}

/** A verifier type: its config schema and how to build a verifier from a validated config. */
export interface Provider<S extends z.ZodType = z.ZodType> {
  type: string;
  /** Provider fields of a source's `config` (secrets, tolerance, …). */
  config: S;
  /** Provider headers kept on the message and forwarded (besides content-type), lower-cased. */
  keepHeaders: string[];
  create(config: z.output<S>): Verifier;
}

export const defineProvider = <S extends z.ZodType>(provider: Provider<S>): Provider<S> => provider;

export const verified = (eventType: string | null, deliveryId: string | null, ack?: { status: number; contentType: string; body: string }): Verdict =>
  ack ? { kind: 'verified', eventType, deliveryId, ack } : { kind: 'verified', eventType, deliveryId };
export const rejected = (reason: string): Verdict => ({ kind: 'rejected', reason });

/** One or several secrets (rotation): `secret`, plus `additionalSecrets` accepted alongside it. */
export const secretsConfig = {
  secret: z.string().min(1).max(1024),
  additionalSecrets: z.array(z.string().min(1).max(1024)).max(10).optional(),
};
export const secretsOf = (config: { secret: string; additionalSecrets?: string[] }): string[] => [config.secret, ...(config.additionalSecrets ?? [])];

/** The most common scheme: one header holding `<prefix><hex or base64 HMAC of the raw body>`. */
export interface BodyHmacScheme {
  /** Lower-cased header name. */
  header: string;
  /** The header as providers spell it, for messages. */
  name: string;
  prefix?: string;
  algorithm: Algorithm;
  encoding: 'hex' | 'base64';
}

/** Null when the header's signature matches under any secret; otherwise the rejection, saying what was wrong. */
export function checkBodyHmac(request: InboundRequest, secrets: string[], scheme: BodyHmacScheme, missing = `missing ${scheme.name} header`): Verdict | null {
  const value = request.headers[scheme.header];
  if (!value) return rejected(missing);
  const prefix = scheme.prefix ?? '';
  const malformed = rejected(`malformed ${scheme.name} header: expected ${prefix}<${scheme.encoding}>`);
  if (!value.startsWith(prefix)) return malformed;
  const signature = decodeSignature(value.slice(prefix.length), scheme.encoding);
  if (!signature) return malformed;
  return anyHmacMatches(scheme.algorithm, secrets, [request.body], [signature]) ? null : rejected('no signature matches');
}

/** Tolerance of a signed timestamp, in seconds, with the provider's default. */
export const tolerance = (defaultSeconds: number) => z.number().int().min(1).max(7 * 86_400).default(defaultSeconds);

/** Checks a timestamp (seconds) against a tolerance in both directions; null when fine, else the reason. */
export function staleness(timestampSec: number, nowMs: number, toleranceSec: number): string | null {
  if (!Number.isFinite(timestampSec)) return 'the signature timestamp is not a number';
  const skew = nowMs / 1000 - timestampSec;
  if (skew > toleranceSec) return `the signature timestamp is ${Math.round(skew)} s old, outside the tolerance of ${toleranceSec} s (a replay, or a clock off)`;
  if (-skew > toleranceSec) return `the signature timestamp is ${Math.round(-skew)} s in the future, outside the tolerance of ${toleranceSec} s`;
  return null;
}

/** A JSON body, or null when it is not JSON. */
export function jsonBody(body: Buffer): any {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    return null;
  }
}
