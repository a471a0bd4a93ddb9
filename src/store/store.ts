import type { HealthChange, HealthPolicy } from '../domain/health.js';
import type { ApiKey, App, Attempt, ClaimedDelivery, Delivery, DeliveryStatus, DestinationConfig, EncryptionKey, Endpoint, EndpointTransformation, EndpointVerification, EventType, Message, Ordering, OrderingOnPark, SigningSecret, Source } from '../domain/types.js';

/**
 * The storage contract. Every backend implements it and passes the same conformance suite.
 * It speaks in domain objects only: no connections or transactions leak through it.
 */

export interface PageRequest {
  limit: number;
  /** Opaque cursor from a previous page (`iterator` or `prevIterator`). */
  iterator?: string | null;
  /** Newest first by default. */
  order?: 'ascending' | 'descending';
}

export interface Page<T> {
  data: T[];
  iterator: string | null;
  prevIterator: string | null;
  done: boolean;
}

export interface AppInput {
  name: string;
  uid: string | null;
  rateLimit: number | null;
  metadata: Record<string, string>;
}

export interface EventTypeInput {
  name: string;
  description: string;
  archived: boolean;
  deprecated: boolean;
  featureFlag: string | null;
  groupName: string | null;
  schemas: Record<string, unknown> | null;
  validatePayloads: boolean;
}

export interface EndpointInput {
  uid: string | null;
  url: string;
  description: string;
  version: number;
  filterTypes: string[] | null;
  channels: string[] | null;
  /** A validated content filter (domain/content-filter.ts `compileFilter` accepted it), or null. */
  filter: Record<string, unknown> | null;
  /** Checked in the sandbox at save (its code defines `handler`); null or absent for none. */
  transformation?: EndpointTransformation | null;
  headers: Record<string, string>;
  disabled: boolean;
  rateLimit: number | null;
  ordering: Ordering;
  /** @default 'skip' */
  orderingOnPark?: OrderingOnPark;
  maxInFlight: number;
  metadata: Record<string, string>;
  destination: DestinationConfig | null;
  /**
   * The registration handshake's new state (domain/verification.ts `verificationAfter`); absent: unchanged (none on
   * create). Writing it also ends a handshake in progress: its result is no longer recorded.
   */
  verification?: EndpointVerification;
}

export interface AcceptInput {
  appId: string;
  eventType: string;
  eventId: string | null;
  payload: Uint8Array;
  contentType: string;
  channels: string[] | null;
  tags: string[] | null;
  /** Orders the message behind the earlier ones of its key on `ordering: 'key'` endpoints; null or absent for none. */
  orderingKey?: string | null;
  idempotencyKey: string | null;
  idempotencyTtlMs: number;
  /**
   * A provider's delivery (with `eventId` its delivery id): a message of the app with the same `eventId` accepted less
   * than this long ago makes it a duplicate, answered with that message. No idempotency record is written for it.
   */
  dedupeWindowMs?: number;
  now: number;
  /** For messages received through a source. */
  source?: { id: string; headers: Record<string, string>; verified: boolean };
  /** When the first attempt is due (the retry schedule's first entry after `now`). */
  dueAt: number;
  /** Fan out to this endpoint of the app only, whatever its filters (an example sent to one endpoint). */
  endpointId?: string;
  /** The W3C traceparent of the span accepting it; absent (NULL) when tracing is off. */
  traceContext?: string | null;
}

/** Expected outcomes of accepting a message are values, not exceptions. */
export type AcceptResult =
  | { kind: 'accepted'; message: Message; deliveries: number }
  | { kind: 'duplicate'; message: Message }
  | { kind: 'event_id_conflict'; eventId: string };

export interface SourceInput {
  name: string;
  uid: string | null;
  type: string;
  config: Record<string, unknown>;
  metadata: Record<string, string>;
}

export interface MessageFilter {
  eventTypes?: string[];
  channel?: string;
  tag?: string;
  before?: number;
  after?: number;
}

export interface AttemptFilter extends MessageFilter {
  succeeded?: boolean;
}

/** The result of one attempt, as the dispatcher reports it. `next` says what becomes of the delivery. */
export interface AttemptOutcome {
  owner: string;
  attempt: Attempt;
  next:
    | { kind: 'succeeded' }
    | { kind: 'retry'; at: number; retryIndex: number }
    | { kind: 'parked' };
  disableEndpoint?: string;
}

/** A message as attempted to one endpoint, for the "attempted messages/destinations" views. */
export interface DeliveryView {
  delivery: Delivery;
  message: Message;
  endpoint: Endpoint;
  lastAttemptAt: number | null;
}

export interface ClaimRequest {
  owner: string;
  now: number;
  limit: number;
  leaseMs: number;
}

/** What one `prune` call removed; `done` when nothing older than the cut-off is left to look at for now. */
export interface PruneResult {
  payloads: number;
  attempts: number;
  idempotencyKeys: number;
  done: boolean;
}

/**
 * The secret-bearing values of one row exactly as stored: sealed (`hrenc:…`) or, in a database written before
 * secrets were encrypted at rest, plain. Read and written only to seal or re-seal them (src/secrets/).
 */
export type SecretRow =
  | { kind: 'endpoint'; id: string; secrets: SigningSecret[]; destination: DestinationConfig | null }
  | { kind: 'source'; id: string; config: Record<string, unknown> };

/** What the operator's overview draws (GET /api/v1/stats/overview). Minutes are epoch ms at the minute's start. */
export interface OverviewStats {
  /** Messages accepted per minute, ascending; minutes without any are left out. */
  messages: { minute: number; count: number }[];
  /** Attempts made per minute and how many of them failed, ascending; minutes without any are left out. */
  attempts: { minute: number; count: number; failed: number }[];
  /** Deliveries waiting (due or scheduled) and being attempted now. */
  pending: number;
  inFlight: number;
}

export interface Store {
  readonly kind: string;
  /**
   * Whether this process is the only one using the data (SQLite: the file is locked). Only then may it return
   * every lease at start; on a shared store other processes hold live leases.
   */
  readonly exclusive: boolean;

  listApps(page: PageRequest): Promise<Page<App>>;
  createApp(input: AppInput, now: number): Promise<App>;
  /** By id or uid. */
  getApp(idOrUid: string): Promise<App | null>;
  updateApp(id: string, input: AppInput, now: number): Promise<App>;
  deleteApp(id: string): Promise<void>;

  listEventTypes(page: PageRequest, includeArchived: boolean): Promise<Page<EventType>>;
  createEventType(input: EventTypeInput, now: number): Promise<EventType>;
  getEventType(name: string): Promise<EventType | null>;
  updateEventType(input: EventTypeInput, now: number): Promise<EventType>;
  deleteEventType(name: string): Promise<void>;

  listEndpoints(appId: string, page: PageRequest): Promise<Page<Endpoint>>;
  createEndpoint(appId: string, input: EndpointInput, secret: string, now: number): Promise<Endpoint>;
  /** By id or uid, within the app. */
  getEndpoint(appId: string, idOrUid: string): Promise<Endpoint | null>;
  updateEndpoint(appId: string, id: string, input: EndpointInput, now: number): Promise<Endpoint>;
  deleteEndpoint(appId: string, id: string): Promise<void>;
  /** Makes `secret` current; the previous current secret keeps signing until `previousExpiresAt`. */
  rotateEndpointSecret(appId: string, id: string, secret: string, previousExpiresAt: number, now: number): Promise<Endpoint>;
  /**
   * Appends a payload encryption key, unless the endpoint already has one with its `kid` (`duplicate`) or has `max`
   * keys (`full`). Atomic per endpoint, so keys added at once by several clients are all kept or refused.
   */
  addEndpointEncryptionKey(appId: string, id: string, key: EncryptionKey, max: number, now: number): Promise<'added' | 'duplicate' | 'full'>;
  /** Removes the key with this `kid`; false when the endpoint has none. */
  deleteEndpointEncryptionKey(appId: string, id: string, kid: string, now: number): Promise<boolean>;
  /** Enabling a disabled endpoint also resets its health (counts, failing period, circuit), as `updateEndpoint` does. */
  setEndpointDisabled(id: string, disabled: boolean, reason: string | null, now: number): Promise<void>;
  /**
   * Leases up to `limit` endpoints whose registration handshake is due (pending, next attempt at or before `now`, no
   * live lease) to `owner` until `leaseUntil`, across apps. An endpoint is leased to one claimer at a time, whatever
   * the number of processes.
   */
  claimVerifications(owner: string, now: number, leaseUntil: number, limit: number): Promise<Endpoint[]>;
  /**
   * Records a handshake attempt's result if `owner` still holds the endpoint's lease (the endpoint was not changed,
   * re-triggered or taken over meanwhile); false otherwise. Becoming `verified` makes its held deliveries claimable.
   */
  finishVerification(id: string, owner: string, verification: EndpointVerification): Promise<boolean>;
  /** When the earliest pending handshake is due (its lease's end, if leased), or null when none is pending. */
  nextVerificationAt(): Promise<number | null>;
  /** Enabled endpoints with a non-HTTP destination, across apps (for readiness checks). */
  listDestinationEndpoints(): Promise<Endpoint[]>;

  listSources(page: PageRequest): Promise<Page<Source>>;
  /** Creates the source and the app its messages belong to, in one transaction. */
  createSource(input: SourceInput, token: string, now: number): Promise<Source>;
  /** By id or uid. */
  getSource(idOrUid: string): Promise<Source | null>;
  getSourceByToken(token: string): Promise<Source | null>;
  /**
   * The source a token names when the store has it at hand without a query, as `getSourceByToken` would answer; undefined
   * when it would have to ask. SQLite keeps every source it found (one process writes the file, and every change clears
   * them; unknown tokens are not kept); PostgreSQL, shared with other processes, always asks and leaves this out.
   */
  getCachedSourceByToken?(token: string): Source | undefined;
  updateSource(id: string, input: SourceInput, now: number): Promise<Source>;
  setSourceToken(id: string, token: string, now: number): Promise<Source>;
  /** Deletes the source with its app, endpoints and messages. */
  deleteSource(id: string): Promise<void>;

  /** Stores a key of an app (its id and digest made by the caller, which alone ever sees the key). */
  createApiKey(key: ApiKey): Promise<ApiKey>;
  getApiKey(id: string): Promise<ApiKey | null>;
  listApiKeys(appId: string, page: PageRequest): Promise<Page<ApiKey>>;
  /** Deletes a key of the app; false when the app has no such key. Deleting an app deletes its keys. */
  deleteApiKey(appId: string, id: string): Promise<boolean>;

  /** Secret-bearing rows of one kind in id order after `after` (`''` to start), raw. */
  scanSecrets(kind: SecretRow['kind'], after: string, limit: number): Promise<SecretRow[]>;
  /**
   * Writes each `next` over its row if the row still holds `previous` (a concurrent write wins); returns how many
   * were written. Leaves no copy of the previous values in the database file where the backend can avoid it.
   */
  rewriteSecrets(changes: { previous: SecretRow; next: SecretRow }[]): Promise<number>;

  accept(input: AcceptInput): Promise<AcceptResult>;
  listMessages(appId: string, filter: MessageFilter, page: PageRequest): Promise<Page<Message>>;
  /** By id or eventId, within the app. */
  getMessage(appId: string, idOrEventId: string): Promise<Message | null>;
  expungeMessageContent(appId: string, id: string): Promise<void>;

  listAttemptsByEndpoint(appId: string, endpointId: string, filter: AttemptFilter, page: PageRequest): Promise<Page<Attempt>>;
  listAttemptsByMessage(appId: string, messageId: string, filter: AttemptFilter & { endpointId?: string }, page: PageRequest): Promise<Page<Attempt>>;
  getAttempt(appId: string, messageId: string, attemptId: string): Promise<Attempt | null>;
  /** Deliveries of one endpoint (attempted messages), newest message first. */
  listDeliveriesByEndpoint(appId: string, endpointId: string, filter: MessageFilter & { status?: Delivery['status'] }, page: PageRequest): Promise<Page<DeliveryView>>;
  /** Deliveries of one message (attempted destinations). */
  listDeliveriesByMessage(appId: string, messageId: string, page: PageRequest): Promise<Page<DeliveryView>>;

  /** Puts the delivery of a message to an endpoint (created if missing) back to pending, due now. */
  resend(appId: string, messageId: string, endpointId: string, now: number): Promise<void>;
  /** Puts every parked delivery of the endpoint whose message was created in [since, until) back to pending. */
  recover(appId: string, endpointId: string, since: number, until: number, now: number): Promise<number>;
  /**
   * Creates a pending delivery, due at `now`, to the endpoint for every message of the app created in [since, until)
   * that has none to it and that the endpoint's filters match now; messages whose payload was expunged are skipped.
   */
  replayMissing(appId: string, endpointId: string, since: number, until: number, now: number): Promise<number>;
  /** The endpoint's deliveries by status, of those created in [since, until) when given. */
  endpointStats(appId: string, endpointId: string, range: { since?: number; until?: number }): Promise<Record<DeliveryStatus, number>>;
  /** Clears the response body kept with one attempt; false when the message has no such attempt. */
  expungeAttemptContent(appId: string, messageId: string, attemptId: string): Promise<boolean>;

  /**
   * Leases up to `limit` due deliveries, honouring every endpoint's concurrency cap and ordering (FIFO: its oldest
   * pending delivery when nothing is in flight; key: the oldest of each key with nothing of that key in flight and,
   * when parked messages hold their key, none of it parked before),
   * and skipping disabled endpoints and endpoints whose circuit is open; a half-open endpoint yields one probe when
   * nothing of it is in flight. A rate-limited endpoint yields the send slots of the look-ahead window, each claimed
   * delivery carrying its slot (`notBefore`). Expired leases of dead dispatchers are claimable again.
   */
  claim(request: ClaimRequest): Promise<ClaimedDelivery[]>;
  /**
   * Records attempts and moves their deliveries on; a write whose lease was lost records the attempt only. In the
   * same commit, updates the health of the batch's endpoints by `policy` (domain/health.ts: circuit breaker,
   * auto-disable, 410 Gone) and returns the changes worth logging.
   */
  complete(outcomes: AttemptOutcome[], policy?: HealthPolicy): Promise<HealthChange[]>;
  renewLeases(owner: string, deliveryIds: number[], until: number): Promise<void>;
  /**
   * The attempt of a claimed delivery got its answer and its outcome is on its way to `complete`: its slot of the
   * endpoint's `maxInFlight` is free now, for the next claim, rather than once the outcome is written. The dispatcher
   * says so only for a success where the order of outcomes cannot matter (domain/health.ts `slotFreedOnAnswer`). Absent where the
   * claim counts slots from the table (PostgreSQL: several processes share the caps).
   */
  attemptAnswered?(deliveryId: number, endpointId: string): void;
  /** Returns every delivery leased by `owner` (or by anyone, when null, and then every handshake lease too) to pending. */
  releaseLeases(owner: string | null): Promise<number>;
  /** When the earliest pending delivery becomes due (not before its endpoint's circuit cool-down or rate-limit slot), or null when none is pending. */
  nextDueAt(): Promise<number | null>;
  /** Backlog and endpoint counts for the metrics gauges, as of `now`. */
  stats(now: number): Promise<PipelineStats>;
  /**
   * Counts for the overview over [since, until): messages through their time-ordered ids (a primary-key range),
   * attempts through their time-ordered ids too on SQLite (an index on started_at on PostgreSQL), queue sizes through
   * the partial pending / in-flight indexes (SQLite: in flight from its in-memory leases).
   */
  overview(since: number, until: number): Promise<OverviewStats>;
  /**
   * Calls `listener` when another process may have made work due (a shared store's notifications); returns a
   * function that stops it. A hint only: dispatchers poll anyway. Absent on single-process stores.
   */
  onWake?(listener: () => void): () => void;

  /**
   * Retention, in small batches off the hot path: clears the payload of up to `limit` messages created before `before`
   * whose deliveries have all finished (none pending or in flight), and deletes up to `limit` attempts started before
   * `before` and idempotency records that expired before it. Repeated calls walk forward through older messages.
   */
  prune(before: number, limit: number): Promise<PruneResult>;

  /** A stored answer to a POST retried with the same idempotency key, or null when none is live. */
  getIdempotentResponse(scope: string, key: string, now: number): Promise<StoredResponse | null>;
  putIdempotentResponse(scope: string, key: string, response: StoredResponse, expiresAt: number): Promise<void>;

  /**
   * Why writes cannot succeed now (a full disk, a database file deleted under the process…), or null. Readiness
   * reports it. Absent on stores whose outages surface as failed calls only.
   */
  storageProblem?(): string | null;

  close(): Promise<void>;
}

/**
 * The store by what its callers need (views of the one `Store` each backend implements, so that a caller's
 * dependency says what it touches): the dispatcher works on the delivery queue alone; the front doors append to the
 * message log; the API and the sources read the catalog.
 */
export type DeliveryQueue = Pick<Store, 'claim' | 'complete' | 'attemptAnswered' | 'renewLeases' | 'releaseLeases' | 'nextDueAt' | 'onWake'>;
export type MessageLog = Pick<
  Store,
  | 'accept'
  | 'listMessages'
  | 'getMessage'
  | 'expungeMessageContent'
  | 'listAttemptsByEndpoint'
  | 'listAttemptsByMessage'
  | 'getAttempt'
  | 'listDeliveriesByEndpoint'
  | 'listDeliveriesByMessage'
  | 'resend'
  | 'recover'
  | 'replayMissing'
  | 'endpointStats'
  | 'expungeAttemptContent'
  | 'prune'
>;
export type Catalog = Omit<Store, keyof DeliveryQueue | keyof MessageLog | 'stats' | 'overview' | 'getIdempotentResponse' | 'putIdempotentResponse' | 'storageProblem' | 'close' | 'scanSecrets' | 'rewriteSecrets'>;

/**
 * What the operator's gauges show (`GET /metrics`), read when they are scraped, never per delivery. Each count walks
 * an index (the partial indexes on pending and in-flight deliveries, the endpoint table), so a scrape costs one pass
 * over the backlog and the endpoints, not over history.
 */
export interface PipelineStats {
  /** Deliveries waiting for an attempt, due or scheduled later, on any endpoint. */
  pending: number;
  /** Of those, the ones due at `now` on enabled endpoints (an open circuit or a rate limit may still hold them). */
  due: number;
  /** Deliveries leased by a dispatcher (any process) and being attempted. */
  inFlight: number;
  /** When the longest-waiting of the due deliveries became due; null when none is. */
  oldestDueAt: number | null;
  /** Endpoints by state: enabled ones by circuit state (domain/health.ts), and disabled ones. */
  endpoints: { closed: number; open: number; halfOpen: number; disabled: number };
}

export interface StoredResponse {
  status: number;
  body: string;
}
