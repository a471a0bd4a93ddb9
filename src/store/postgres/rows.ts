import type { EndpointHealth } from '../../domain/health.js';
import type { ApiKey, App, Attempt, Delivery, Endpoint, EndpointVerification, EventType, Message, Source } from '../../domain/types.js';

/** Row ↔ domain mapping for the PostgreSQL dialect: jsonb arrives parsed, booleans are booleans, bigints numbers. */

export const toApp = (r: any): App => ({
  id: r.id,
  uid: r.uid,
  name: r.name,
  rateLimit: r.rate_limit,
  metadata: r.metadata,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

export const toEventType = (r: any): EventType => ({
  name: r.name,
  description: r.description,
  archived: r.archived,
  deprecated: r.deprecated,
  featureFlag: r.feature_flag,
  groupName: r.group_name,
  schemas: r.schemas,
  validatePayloads: r.validate_payloads ?? false,
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
  filterTypes: r.filter_types,
  channels: r.channels,
  filter: r.filter === null || r.filter === undefined ? null : JSON.parse(r.filter),
  transformation: r.transformation === null || r.transformation === undefined ? null : JSON.parse(r.transformation),
  headers: r.headers,
  disabled: r.disabled,
  disabledReason: r.disabled_reason,
  rateLimit: r.rate_limit,
  ordering: r.ordering,
  orderingOnPark: r.ordering_on_park ?? 'skip',
  maxInFlight: r.max_in_flight,
  metadata: r.metadata,
  secrets: r.secrets,
  encryptionKeys: r.encryption_keys ?? [],
  destination: r.destination ?? null,
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
  channels: r.channels,
  tags: r.tags,
  orderingKey: r.ordering_key ?? null,
  createdAt: r.created_at,
  sourceId: r.source_id ?? null,
  headers: r.headers ?? null,
  verified: r.verified ?? null,
  traceContext: r.trace_context ?? null,
});

export const toSource = (r: any): Source => ({
  id: r.id,
  appId: r.app_id,
  uid: r.uid,
  name: r.name,
  type: r.type,
  config: r.config,
  metadata: r.metadata,
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
  manual: r.manual,
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
  succeeded: r.succeeded,
  responseBody: r.response_body,
  error: r.error,
  trigger: r.trigger,
  request: r.sent_request === null || r.sent_request === undefined ? null : JSON.parse(r.sent_request),
});

/** A value for a json/jsonb parameter: node-postgres would send a JS array as a PostgreSQL array, so send text. */
export const json = (value: unknown): string | null => (value === null || value === undefined ? null : JSON.stringify(value));

/** The columns of a joined row that carry `prefix`, with the prefix removed. */
export function unprefix(row: any, prefix: string): any {
  const out: any = {};
  for (const key in row) if (key.startsWith(prefix)) out[key.slice(prefix.length)] = row[key];
  return out;
}
