/**
 * Glossary — the words used in code, SQL tables, API paths and logs.
 *
 * App       A tenant. Owns endpoints and messages. Addressed by `id` (app_…) or the operator's own `uid`.
 * EventType A named kind of event (`invoice.paid`) that endpoints may filter on. Global to the installation.
 * Endpoint  A destination of an app: URL, event-type filter, channels, content filter, signing secrets, custom headers,
 *           ordering (`parallel`, `fifo`, or `key`: FIFO per ordering key) and a concurrency cap.
 * Message   An event accepted once and stored durably before the caller gets 2xx.
 * Delivery  One message on its way to one endpoint: pending → in_flight → succeeded | failed (parked).
 * Attempt   One try of a delivery: when, how long, status code, truncated response body, error.
 * Lease     A claim on an in-flight delivery by one dispatcher, valid until `leaseUntil`.
 * ApiKey    A bearer token of one app (`hrk_…`): it may touch that app only. Stored as a SHA-256 digest.
 * Source    An inbound door: a provider (Stripe, GitHub, …) posts to its ingest URL; what verifies becomes a
 *           Message of the source's own App, delivered to that app's endpoints like any other message.
 */

import type { EndpointHealth } from './health.js';

export type Ordering = 'parallel' | 'fifo' | 'key';
/** On a `key` endpoint, what a parked message does to its key: let the next one go (`skip`) or hold them (`hold`). */
export type OrderingOnPark = 'skip' | 'hold';

export interface App {
  id: string;
  uid: string | null;
  name: string;
  rateLimit: number | null;
  metadata: Record<string, string>;
  createdAt: number;
  updatedAt: number;
}

export interface EventType {
  name: string;
  description: string;
  archived: boolean;
  deprecated: boolean;
  featureFlag: string | null;
  groupName: string | null;
  schemas: Record<string, unknown> | null;
  /** Whether messages created through the API must pass the latest schema (pipeline/payload-schemas.ts). */
  validatePayloads: boolean;
  createdAt: number;
  updatedAt: number;
}

export interface SigningSecret {
  key: string;
  /** Epoch ms after which the secret no longer signs; null for the current secret. */
  expiresAt: number | null;
}

/**
 * A public key the endpoint's owner registered so that deliveries are encrypted to it (JWE). hookrelay never holds
 * the private half. `alg` is the JWE key management algorithm its type calls for.
 */
export interface EncryptionKey {
  kid: string;
  alg: 'RSA-OAEP-256' | 'ECDH-ES+A256KW';
  /** The public JWK, its public members only (`kty`, `kid`, `n`/`e` or `crv`/`x`/`y`). */
  jwk: Record<string, string>;
  createdAt: number;
}

export interface Endpoint {
  id: string;
  appId: string;
  uid: string | null;
  url: string;
  description: string;
  version: number;
  filterTypes: string[] | null;
  channels: string[] | null;
  /** A content filter on the payload and headers (domain/content-filter.ts, docs/routing.md); null for none. */
  filter: Record<string, unknown> | null;
  /** JavaScript run on each delivery before it is sent (src/transform/, docs/routing.md); null when never set. */
  transformation: EndpointTransformation | null;
  headers: Record<string, string>;
  disabled: boolean;
  disabledReason: string | null;
  rateLimit: number | null;
  ordering: Ordering;
  orderingOnPark: OrderingOnPark;
  maxInFlight: number;
  metadata: Record<string, string>;
  secrets: SigningSecret[];
  /** Public keys to encrypt payloads to, oldest first; deliveries use the newest. Empty: payloads go in clear. */
  encryptionKeys: EncryptionKey[];
  /** Where deliveries go when not to `url` over HTTP (a Temporal workflow, …); null for HTTP. */
  destination: DestinationConfig | null;
  /** Circuit breaker and auto-disable counters, kept by the dispatcher (domain/health.ts). */
  health: EndpointHealth;
  /** Rate limit: the earliest start of the next send, shared by every process (domain/rate.ts); null when never limited. */
  nextSendAt: number | null;
  /** The registration handshake (domain/verification.ts): deliveries are claimed only while `state` is `verified`. */
  verification: EndpointVerification;
  createdAt: number;
  updatedAt: number;
}

/** `challenge`: the endpoint must echo a signed challenge before anything is delivered to it; `none`: no handshake. */
export type VerificationMode = 'none' | 'challenge';

/** `verified` also for mode `none`. Messages to a `pending` or `failed` endpoint are accepted and held. */
export type VerificationState = 'verified' | 'pending' | 'failed';

export interface EndpointVerification {
  mode: VerificationMode;
  state: VerificationState;
  /** Handshake attempts made since the endpoint last entered `pending`. */
  attempts: number;
  lastAttemptAt: number | null;
  /** When the next handshake attempt is due; null unless `pending`. */
  nextAttemptAt: number | null;
  /** Why the last attempt did not verify (`status 500`, `wrong challenge`, a network error…); null once verified. */
  reason: string | null;
}

/** A non-HTTP destination's settings, validated by its type's schema (src/pipeline/destinations/). */
export interface DestinationConfig {
  type: string;
  [setting: string]: unknown;
}

export interface Message {
  id: string;
  appId: string;
  eventType: string;
  eventId: string | null;
  payload: Uint8Array | null;
  contentType: string;
  channels: string[] | null;
  tags: string[] | null;
  /** Messages of one key reach an endpoint with `ordering: 'key'` one at a time, in accept order; null for none. */
  orderingKey?: string | null;
  createdAt: number;
  /** Set for messages received through a source. */
  sourceId?: string | null;
  /** The provider headers a source keeps, lower-cased. */
  headers?: Record<string, string> | null;
  verified?: boolean | null;
  /** The W3C traceparent of the span that accepted it, when tracing was on; its attempts' spans are its children. */
  traceContext?: string | null;
}

export interface Source {
  id: string;
  appId: string;
  uid: string | null;
  name: string;
  /** The verifier: a provider (`stripe`, `github`, …) or a generic one (`hmac`, `basic-auth`, `api-key`, `none`). */
  type: string;
  /** The verifier's settings (secrets included) and the source's limits; validated per type. */
  config: Record<string, unknown>;
  metadata: Record<string, string>;
  /** The unguessable part of the ingest URL. */
  token: string;
  createdAt: number;
  updatedAt: number;
}

export interface ApiKey {
  /** `key_…`; the key itself is `hrk_<id>_<secret>`, so authentication finds its row by id. */
  id: string;
  appId: string;
  name: string | null;
  /** The start of the key (`hrk_<id>_` and four characters of the secret), to recognise it in a list. */
  prefix: string;
  /** SHA-256 of the whole key, hex. */
  hash: string;
  createdAt: number;
  expiresAt: number | null;
}

export type DeliveryStatus = 'pending' | 'in_flight' | 'succeeded' | 'failed';

export interface Delivery {
  id: number;
  messageId: string;
  appId: string;
  endpointId: string;
  status: DeliveryStatus;
  attemptCount: number;
  retryIndex: number;
  nextAttemptAt: number | null;
  manual: boolean;
  createdAt: number;
  updatedAt: number;
}

export type AttemptTrigger = 'scheduled' | 'manual';

export interface Attempt {
  id: string;
  deliveryId: number;
  messageId: string;
  endpointId: string;
  appId: string;
  url: string;
  startedAt: number;
  durationMs: number;
  statusCode: number;
  succeeded: boolean;
  responseBody: string;
  error: string | null;
  trigger: AttemptTrigger;
  /** What was sent, for an HTTP attempt that reached the wire; null for other destinations and for attempts that never did. */
  request: SentRequest | null;
}

/**
 * The method and headers of an HTTP attempt as handed to the HTTP client, names as written and in order. The client
 * adds the HTTP/1.1 framing headers (`host`, `connection`, `content-length`) itself; they are not in the list.
 */
export interface SentRequest {
  method: string;
  headers: [name: string, value: string][];
}

export interface EndpointTransformation {
  /** Defines `function handler(webhook)`; null when removed. */
  code: string | null;
  /** Only an enabled transformation with code runs. */
  enabled: boolean;
  /** When code or enabled last changed (epoch ms). */
  updatedAt: number;
}

/** What the dispatcher needs to send one delivery, read in one claim. */
export interface ClaimedDelivery {
  delivery: Delivery;
  message: Message;
  endpoint: Endpoint;
  /** A rate-limited endpoint's reserved slot: the send starts no earlier than this. */
  notBefore?: number;
  /** The HTTP method, when a transformation chose one. @default 'POST' */
  method?: string;
  /** The attempt's span, when tracing is on: sent to the endpoint as its `traceparent` header. */
  traceparent?: string;
}
