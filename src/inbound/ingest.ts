import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { Source } from '../domain/types.js';
import type { Intake } from '../pipeline/intake.js';
import type { Store } from '../store/store.js';
import { RateLimiter } from './rate-limiter.js';
import { compileSource, type CompiledSource } from './source-config.js';
import { VerificationFailures } from './verification-failures.js';
import type { InboundRequest } from './verifier.js';

export interface IngestAnswer {
  status: number;
  headers?: Record<string, string>;
  contentType: string;
  body: string;
}

/**
 * Provider event types as names endpoints can filter on (letters, digits, `-`, `_`, `.`): separators such as
 * `:` and `/` become `.`, anything else `_` (`repo:push` → `repo.push`, `Push Hook` → `Push_Hook`).
 */
export function eventTypeName(raw: string): string {
  const name = raw.trim().replace(/[:/]/g, '.').replace(/[^A-Za-z0-9\-_.]/g, '_').slice(0, 256);
  return name === '' ? 'unknown' : name;
}

/**
 * A provider's delivery id as a dedupe key. It comes from a header or a signed body, so it is verified but not
 * well-formed: one that is not short printable ASCII (e.g. NUL, which PostgreSQL refuses in text) is hashed.
 */
const deliveryKey = (id: string) => (/^[\x21-\x7e]{1,256}$/.test(id) ? id : `id-sha256:${createHash('sha256').update(id).digest('hex')}`);

const json = (status: number, body: unknown, headers?: Record<string, string>): IngestAnswer => ({
  status,
  headers,
  contentType: 'application/json; charset=utf-8',
  body: JSON.stringify(body),
});

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
    private readonly store: Store,
    private readonly intake: Intake,
    private readonly log: Logger,
    private readonly idempotencyPrefix = 'inbound:',
  ) {}

  /** The source an ingest token names, with its verifier; null when the token is unknown. */
  async source(token: string): Promise<{ source: Source; compiled: CompiledSource } | null> {
    const source = await this.store.getSourceByToken(token);
    if (!source) return null;
    // A store may hand back the same object while the source is unchanged; otherwise compare what the verifier is built from.
    let entry = this.compiled.get(source.id);
    if (!entry || (entry.source !== source && entry.version !== `${source.type} ${JSON.stringify(source.config)}`)) {
      entry = { source, version: `${source.type} ${JSON.stringify(source.config)}`, compiled: compileSource(source.type, source.config) };
      this.compiled.set(source.id, entry);
    }
    return { source, compiled: entry.compiled };
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

  async receive(source: Source, compiled: CompiledSource, request: InboundRequest, now: number): Promise<IngestAnswer> {
    const verdict = compiled.verifier.verify(request, now);
    if (verdict.kind === 'rejected') {
      this.log.info({ sourceId: source.id, reason: verdict.reason }, 'inbound request failed verification');
      this.failures.record(source.id, now, verdict.reason);
      return json(401, { code: 'verification_failed', detail: verdict.reason });
    }
    if (verdict.kind === 'handshake') return { status: verdict.status, contentType: verdict.contentType, body: verdict.body };

    const dedupeKey = verdict.deliveryId !== null ? deliveryKey(verdict.deliveryId) : `sha256:${createHash('sha256').update(request.body).digest('hex')}`;
    const kept: Record<string, string> = {};
    for (const name of ['content-type', ...compiled.provider.keepHeaders, ...compiled.common.keepHeaders]) {
      const value = request.headers[name];
      if (value !== undefined) kept[name] = value;
    }
    try {
      const result = await this.intake.accept({
        appId: source.appId,
        eventType: eventTypeName(verdict.eventType ?? source.type),
        eventId: null,
        payload: request.body,
        contentType: request.headers['content-type'] || 'application/octet-stream',
        channels: null,
        tags: null,
        idempotencyKey: this.idempotencyPrefix + dedupeKey,
        idempotencyTtlMs: compiled.common.dedupeWindowSeconds * 1000,
        now,
        source: { id: source.id, headers: kept, verified: source.type !== 'none' && source.type !== 'generic-webhook' },
      });
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
