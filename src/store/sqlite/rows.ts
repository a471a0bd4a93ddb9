import type Database from 'better-sqlite3';
import type { EndpointHealth } from '../../domain/health.js';
import type { ApiKey, App, Attempt, Delivery, Endpoint, EndpointVerification, EventType, Message, Source } from '../../domain/types.js';

/** Row ↔ domain mapping for the SQLite dialect: JSON columns, 0/1 booleans. */

const json = <T>(text: string | null): T | null => (text === null ? null : (JSON.parse(text) as T));

export const toApp = (r: any): App => ({
  id: r.id,
  uid: r.uid,
  name: r.name,
  rateLimit: r.rate_limit,
  metadata: JSON.parse(r.metadata),
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

export const toEventType = (r: any): EventType => ({
  name: r.name,
  description: r.description,
  archived: r.archived === 1,
  deprecated: r.deprecated === 1,
  featureFlag: r.feature_flag,
  groupName: r.group_name,
  schemas: json(r.schemas),
  validatePayloads: r.validate_payloads === 1,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

export const toHealth = (r: any): EndpointHealth => ({
  consecutiveFailures: r.failure_streak ?? 0,
  failingSince: r.failing_since ?? null,
  parked: r.parked_streak ?? 0,
  openUntil: r.circuit_open_until ?? null,
  trips: r.circuit_trips ?? 0,
});

/** The registration handshake's columns (absent from a row read without them: no handshake). */
export const toVerification = (r: any): EndpointVerification => ({
  mode: r.verification_mode ?? 'none',
  state: r.verification_state ?? 'verified',
  attempts: r.verification_attempts ?? 0,
  lastAttemptAt: r.verification_last_at ?? null,
  nextAttemptAt: r.verification_next_at ?? null,
  reason: r.verification_reason ?? null,
});

export const toEndpoint = (r: any): Endpoint => ({
  id: r.id,
  appId: r.app_id,
  uid: r.uid,
  url: r.url,
  description: r.description,
  version: r.version,
  filterTypes: json(r.filter_types),
  channels: json(r.channels),
  filter: json(r.filter ?? null),
  transformation: json(r.transformation ?? null),
  headers: JSON.parse(r.headers),
  disabled: r.disabled === 1,
  disabledReason: r.disabled_reason,
  rateLimit: r.rate_limit,
  ordering: r.ordering,
  orderingOnPark: r.ordering_on_park ?? 'skip',
  maxInFlight: r.max_in_flight,
  metadata: JSON.parse(r.metadata),
  secrets: JSON.parse(r.secrets),
  encryptionKeys: r.encryption_keys ? JSON.parse(r.encryption_keys) : [],
  destination: json(r.destination ?? null),
  health: toHealth(r),
  nextSendAt: r.next_send_at ?? null,
  verification: toVerification(r),
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

export const toMessage = (r: any): Message => ({
  id: r.id,
  appId: r.app_id,
  eventType: r.event_type,
  eventId: r.event_id,
  payload: r.payload,
  contentType: r.content_type,
  channels: json(r.channels),
  tags: json(r.tags),
  orderingKey: r.ordering_key ?? null,
  createdAt: r.created_at,
  sourceId: r.source_id ?? null,
  headers: json(r.headers ?? null),
  verified: r.verified === null || r.verified === undefined ? null : r.verified === 1,
  traceContext: r.trace_context ?? null,
});

export const toSource = (r: any): Source => ({
  id: r.id,
  appId: r.app_id,
  uid: r.uid,
  name: r.name,
  type: r.type,
  config: JSON.parse(r.config),
  metadata: JSON.parse(r.metadata),
  token: r.token,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

export const toApiKey = (r: any): ApiKey => ({
  id: r.id,
  appId: r.app_id,
  name: r.name,
  prefix: r.prefix,
  hash: r.hash,
  createdAt: r.created_at,
  expiresAt: r.expires_at,
});

export const toDelivery = (r: any): Delivery => ({
  id: r.id,
  messageId: r.message_id,
  appId: r.app_id,
  endpointId: r.endpoint_id,
  status: r.status,
  attemptCount: r.attempt_count,
  retryIndex: r.retry_index,
  nextAttemptAt: r.next_attempt_at,
  manual: r.manual === 1,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

export const toAttempt = (r: any): Attempt => ({
  id: r.id,
  deliveryId: r.delivery_id,
  messageId: r.message_id,
  endpointId: r.endpoint_id,
  appId: r.app_id,
  url: r.url,
  startedAt: r.started_at,
  durationMs: r.duration_ms,
  statusCode: r.status_code,
  succeeded: r.succeeded === 1,
  responseBody: r.response_body,
  error: r.error,
  trigger: r.trigger,
  request: r.sent_request === null || r.sent_request === undefined ? null : JSON.parse(r.sent_request),
});

export const jsonOrNull = (value: unknown): string | null => (value === null || value === undefined ? null : JSON.stringify(value));

/** Prefixes a joined row's columns (`d_id`, `m_id`, …) back to plain names. */
export function unprefix(row: any, prefix: string): any {
  const out: any = {};
  for (const key in row) if (key.startsWith(prefix)) out[key.slice(prefix.length)] = row[key];
  return out;
}

/**
 * A hot statement's rows, read as arrays (the driver's raw mode) and named by an object literal compiled once from the
 * statement's columns. Rows named by the driver cost about twice as much: it internalises every column name and sets
 * every property through V8's API, row after row (8 % of the drain's CPU when the claim read its rows that way).
 */
export function namedRows(stmt: Database.Statement): (...params: unknown[]) => any[] {
  const names = stmt.raw(true).columns().map((column) => column.name);
  const name = new Function('r', `return { ${names.map((n, i) => `${JSON.stringify(n)}: r[${i}]`).join(', ')} };`) as (row: unknown[]) => any;
  return (...params) => (stmt.all(...params) as unknown[][]).map(name);
}
