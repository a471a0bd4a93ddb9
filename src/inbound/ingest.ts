import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { Source } from '../domain/types.js';
import type { Intake } from '../pipeline/intake.js';
import type { SchemaIssue } from '../pipeline/payload-schemas.js';
import { parsePayloadCopy } from '../domain/content-filter.js';
import type { PipelineObserver } from '../pipeline/observer.js';
import type { Catalog } from '../store/store.js';
import { AddressList } from './address-list.js';
import { isBrokerSourceType } from './brokers/config.js';
import { clientAddress } from './client-address.js';
import { RateLimiter } from './rate-limiter.js';
import { compileSource, type CompiledSource } from './source-config.js';
import { VerificationFailures } from './verification-failures.js';
import type { InboundRequest } from './verifier.js';

/** Who sent a request: the socket's peer address and the headers a trusted proxy may have added. */
export interface Peer {
  address: string | undefined;
  headers: Record<string, string | string[] | undefined>;
}

export interface IngestAnswer {
  status: number;
  headers?: Record<string, string>;
  contentType: string;
  body: string;
}

const EVENT_TYPE_NAME = /^[A-Za-z0-9\-_.]+$/;

/**
 * Provider event types as names endpoints can filter on (letters, digits, `-`, `_`, `.`): separators such as
 * `:` and `/` become `.`, anything else `_` (`repo:push` → `repo.push`, `Push Hook` → `Push_Hook`).
 */
export function eventTypeName(raw: string): string {
  // Most names need nothing done (GitHub's `issues.opened`, Stripe's `invoice.paid`).
  if (raw.length <= 256 && EVENT_TYPE_NAME.test(raw)) return raw;
  const name = raw.trim().replace(/[:/]/g, '.').replace(/[^A-Za-z0-9\-_.]/g, '_').slice(0, 256);
  return name === '' ? 'unknown' : name;
}

/**
 * A provider's delivery id as a dedupe key. It comes from a header or a signed body, so it is verified but not
 * well-formed: one that is not short printable ASCII (e.g. NUL, which PostgreSQL refuses in text) is hashed.
 */
const PRINTABLE_ID = /^[\x21-\x7e]{1,256}$/;
const deliveryKey = (id: string) => (PRINTABLE_ID.test(id) ? id : `id-sha256:${createHash('sha256').update(id).digest('hex')}`);

/** The tag of a message stored although its payload fails its event type's schema (a source set to `mark`). */
export const SCHEMA_INVALID_TAG = 'schema-invalid';

const json = (status: number, body: unknown, headers?: Record<string, string>): IngestAnswer => ({
  status,
  headers,
  contentType: 'application/json; charset=utf-8',
  body: JSON.stringify(body),
});

/** The body of a request is larger than its source accepts (413). */
const tooLarge = (limit: number): IngestAnswer =>
  json(413, { code: 'payload_too_large', detail: `the request body exceeds this source's limit of ${limit} bytes` });

/**
 * `closes`: the connection is closed if the body has not all arrived (nothing of it is worth reading: no such source, or
 * too large); a request refused for its address or its rate keeps its connection, and its body is read and dropped.
 */
export type Opened = { kind: 'open'; source: Source; compiled: CompiledSource } | { kind: 'refused'; answer: IngestAnswer; closes: boolean };

/** A source with the verifier built from its config. */
type Found = { source: Source; compiled: CompiledSource };

/**
 * The inbound front door: verify once on receipt, answer handshakes, drop duplicates, then accept the request
 * as a message of the source's app through the same intake as the API. 2xx only after the commit; 503 when
 * storage fails, so the provider retries.
 */
export class Ingest {
  private readonly compiled = new Map<string, { source: Source; version: string; compiled: CompiledSource }>();
  private readonly limiter = new RateLimiter();
  /** Recent verification failures per source, for the dashboard (in memory, bounded). */
  readonly failures = new VerificationFailures();

  constructor(
    private readonly store: Pick<Catalog, 'getSourceByToken' | 'getCachedSourceByToken'>,
    private readonly intake: Intake,
    private readonly log: Logger,
    private readonly observer: PipelineObserver = {},
    /** Peers whose forwarding headers name the client (`--trusted-proxies`). */
    private readonly trustedProxies = new AddressList([]),
  ) {}

  /**
   * The source an ingest token names, with its verifier; null when the token is unknown. Answered at once when the store
   * has the source at hand: this runs for every provider request, and a chain of awaits costs more than the lookup.
   */
  source(token: string): Found | null | Promise<Found | null> {
    const cached = this.store.getCachedSourceByToken?.(token);
    if (cached !== undefined) return this.withVerifier(cached);
    return this.store.getSourceByToken(token).then((source) => this.withVerifier(source));
  }

  private withVerifier(source: Source | null): Found | null {
    // A broker source is consumed by hookrelay: nothing posts to it.
    if (!source || isBrokerSourceType(source.type)) return null;
    // A store may hand back the same object while the source is unchanged; otherwise compare what the verifier is built from.
    let entry = this.compiled.get(source.id);
    if (!entry || (entry.source !== source && entry.version !== `${source.type} ${JSON.stringify(source.config)}`)) {
      entry = { source, version: `${source.type} ${JSON.stringify(source.config)}`, compiled: compileSource(source.type, source.config) };
      this.compiled.set(source.id, entry);
    }
    return { source, compiled: entry.compiled };
  }

  /** Where a request's payload fails its event type's schema; null when it passes, or the type has no schema. */
  private async schemaIssue(eventType: string, body: Uint8Array): Promise<SchemaIssue | null> {
    const known = await this.intake.schemas.eventType(eventType);
    return known ? this.intake.schemas.validate(known, parsePayloadCopy(body)) : null;
  }

  /**
   * First of all, before the body is read: null to go on, or 403 for a client address the source does not allow
   * (nothing is read or stored; logged and counted like a failed verification).
   */
  screen(source: Source, compiled: CompiledSource, peer: Peer): IngestAnswer | null {
    if (compiled.addresses === null) return null;
    const client = clientAddress(peer.address, peer.headers, this.trustedProxies);
    if (client !== null && compiled.addresses.has(client)) return null;
    const reason = `requests from ${client ?? 'an unknown address'} are not allowed by this source`;
    this.log.info({ sourceId: source.id, address: client, peer: peer.address }, 'inbound request refused: address not allowed');
    // Counted with the source's failed verifications (recent failures on the dashboard, the metric by source type).
    this.observer.verificationFailed?.(source.type);
    this.failures.record(source.id, Date.now(), reason);
    return json(403, { code: 'forbidden', detail: reason });
  }

  /** Before the body is read: null to go on, or the answer that ends the request (429). */
  admit(source: Source, compiled: CompiledSource, now: number): IngestAnswer | null {
    const rate = compiled.common.rateLimit;
    if (rate === null) return null;
    const waitMs = this.limiter.take(source.id, rate, now);
    if (waitMs === 0) return null;
    const seconds = String(Math.max(1, Math.ceil(waitMs / 1000)));
    return json(429, { code: 'rate_limited', detail: `source ${source.id} accepts ${rate} requests per second; retry after ${seconds} s` }, { 'retry-after': seconds });
  }

  /**
   * Before the body is read: the source an ingest token names, or the answer that ends the request — 404 for an unknown
   * token, then `screen` (403), a declared body over the source's limit (413) and `admit` (429).
   */
  open(token: string, peer: Peer, declaredBytes: number, now: number): Opened | Promise<Opened> {
    const found = this.source(token);
    return found instanceof Promise ? found.then((f) => this.opened(f, peer, declaredBytes, now)) : this.opened(found, peer, declaredBytes, now);
  }

  private opened(found: Found | null, peer: Peer, declaredBytes: number, now: number): Opened {
    if (!found) return { kind: 'refused', answer: json(404, { code: 'not_found', detail: 'no source has this ingest URL' }), closes: true };
    const screened = this.screen(found.source, found.compiled, peer);
    if (screened) return { kind: 'refused', answer: screened, closes: false };
    const limit = found.compiled.common.maxBodyBytes;
    if (declaredBytes > limit) return { kind: 'refused', answer: tooLarge(limit), closes: true };
    const refused = this.admit(found.source, found.compiled, now);
    if (refused) return { kind: 'refused', answer: refused, closes: false };
    return { kind: 'open', source: found.source, compiled: found.compiled };
  }

  /** `traceContext`: the traceparent of the request's span, stored with the message (null when tracing is off). */
  async receive(source: Source, compiled: CompiledSource, request: InboundRequest, now: number, traceContext: string | null = null): Promise<IngestAnswer> {
    const verdict = compiled.verifier.verify(request, now);
    if (verdict.kind === 'rejected') {
      this.log.info({ sourceId: source.id, reason: verdict.reason }, 'inbound request failed verification');
      this.observer.verificationFailed?.(source.type);
      this.failures.record(source.id, now, verdict.reason);
      return json(401, { code: 'verification_failed', detail: verdict.reason });
    }
    if (verdict.kind === 'handshake') return { status: verdict.status, contentType: verdict.contentType, body: verdict.body };

    const eventType = eventTypeName(verdict.eventType ?? source.type);
    let tags: string[] | null = null;
    if (compiled.common.schemaValidation !== 'off') {
      const issue = await this.schemaIssue(eventType, request.body);
      if (issue && compiled.common.schemaValidation === 'refuse') {
        this.log.info({ sourceId: source.id, eventType, path: issue.path }, 'inbound request refused: payload fails its schema');
        return json(422, { code: 'schema_mismatch', detail: `payload${issue.path.map((p) => `.${p}`).join('')}: ${issue.msg}` });
      }
      if (issue) tags = [SCHEMA_INVALID_TAG];
    }
    const dedupeKey = verdict.deliveryId !== null ? deliveryKey(verdict.deliveryId) : `sha256:${createHash('sha256').update(request.body).digest('hex')}`;
    const kept: Record<string, string> = {};
    for (const name of compiled.keptHeaders) {
      const value = request.headers[name];
      if (value !== undefined) kept[name] = value;
    }
    try {
      const result = await this.intake.accept({
        appId: source.appId,
        eventType,
        // The provider's own id for this webhook (or the body's hash), so a workflow id or a receiver can dedupe on it
        // beyond the source's dedupe window.
        eventId: dedupeKey,
        payload: request.body,
        contentType: request.headers['content-type'] || 'application/octet-stream',
        channels: null,
        tags,
        idempotencyKey: null,
        idempotencyTtlMs: 0,
        dedupeWindowMs: compiled.common.dedupeWindowSeconds * 1000,
        now,
        source: { id: source.id, headers: kept, verified: source.type !== 'none' && source.type !== 'generic-webhook' },
        traceContext,
      }, source.type);
      if (result.kind !== 'event_id_conflict' && verdict.ack) {
        const headers = { 'x-hookrelay-message-id': result.message.id, 'x-hookrelay-duplicate': String(result.kind === 'duplicate') };
        return { status: verdict.ack.status, headers, contentType: verdict.ack.contentType, body: verdict.ack.body };
      }
      if (result.kind === 'duplicate') return json(200, { id: result.message.id, duplicate: true });
      if (result.kind === 'accepted') return json(200, { id: result.message.id, duplicate: false });
      return json(409, { code: 'conflict', detail: `event id ${result.eventId} already exists` });
    } catch (error) {
      this.log.error({ err: error, sourceId: source.id }, 'storing an inbound request failed');
      return json(503, { code: 'unavailable', detail: 'the request could not be stored; retry later' }, { 'retry-after': '5' });
    }
  }
}
