import type Database from 'better-sqlite3';
import { conflict, notFound } from '../../domain/errors.js';
import { endpointMatches } from '../../domain/filter.js';
import { type FilterSubject } from '../../domain/content-filter.js';
import { compileStoredFilter, deliveryKeyOf, filterSubject, type FanOutTarget } from '../fan-out.js';
import { DEFAULT_HEALTH_POLICY, mayChange, nextHealth, summarizeHealth, type HealthChange, type HealthPolicy } from '../../domain/health.js';
import { RATE_LOOKAHEAD_MS } from '../../domain/rate.js';
import { ID_PREFIX, idFloor, newId } from '../../domain/ids.js';
import type { ApiKey, App, Attempt, ClaimedDelivery, DeliveryStatus, EncryptionKey, Endpoint, EndpointVerification, EventType, Message, Source } from '../../domain/types.js';
import { NO_VERIFICATION } from '../../domain/verification.js';
import { cursorQuery, toPage } from '../paging.js';
import type {
  AcceptInput,
  AcceptResult,
  AppInput,
  AttemptFilter,
  AttemptOutcome,
  ClaimRequest,
  DeliveryView,
  EndpointInput,
  EventTypeInput,
  MessageFilter,
  OverviewStats,
  Page,
  PageRequest,
  PipelineStats,
  PruneResult,
  SecretRow,
  SourceInput,
  Store,
  StoredResponse,
} from '../store.js';
import { claimDue, type ClaimCursor } from './claim.js';
import { Leases } from './leases.js';
import { GroupCommit } from './group-commit.js';
import { WalSync } from './wal-sync.js';
import { CheckpointThread } from './checkpoint-thread.js';
import { describeStorageError, FileIdentity, isStorageError, StorageProblems, unavailable } from './storage-guard.js';
import { openDatabase, type Synchronous } from './open.js';
import { jsonOrNull, toApiKey, toApp, toAttempt, toDelivery, toEndpoint, toEventType, toHealth, toMessage, toSource, unprefix } from './rows.js';

export interface SqliteStoreOptions {
  path: string;
  synchronous?: Synchronous;
}

const isUniqueViolation = (error: unknown) => (error as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE';
const isForeignKeyViolation = (error: unknown) => (error as { code?: string }).code === 'SQLITE_CONSTRAINT_FOREIGNKEY';

/** The embedded store: one process, one better-sqlite3 connection, writes of the hot paths group-committed. */
/** A delivery made outside accept (resend, replay): ordered under its message's key if its endpoint orders by key. Binds endpoint id, message id twice. */
const KEY_OF_NEW_DELIVERY = `CASE WHEN (SELECT ordering FROM endpoint WHERE id = ?) = 'key'
  THEN coalesce((SELECT ordering_key FROM message WHERE id = ?), ?) END`;

/** Gives the unfinished deliveries of an endpoint that now orders by key the key of their message (its id when it has none). */
const KEY_UNKEYED_DELIVERIES = `UPDATE delivery SET ordering_key = coalesce((SELECT m.ordering_key FROM message m WHERE m.id = delivery.message_id), message_id)
  WHERE endpoint_id = ? AND ordering_key IS NULL AND status IN ('pending', 'in_flight', 'failed')`;

export class SqliteStore implements Store {
  readonly kind = 'sqlite';
  readonly exclusive = true;
  readonly db: Database.Database;
  private readonly commits: GroupCommit;
  /** Why writes cannot succeed now (disk full, file deleted…); see storage-guard.ts. */
  readonly problems = new StorageProblems();
  private readonly fileWatch: NodeJS.Timeout | null = null;
  private readonly walSync: WalSync | null;
  private readonly checkpoints: CheckpointThread | null;
  private readonly closeDatabase: () => void;
  private readonly leases = new Leases();
  private readonly claimCursor: ClaimCursor = { endpointId: '' };
  private readonly synchronous: Synchronous;
  private readonly sourceCache = new Map<string, Source>();
  private readonly fanOutCache = new Map<string, FanOutTarget[]>();
  /** Where the next retention pass goes on through the held messages (from the start after a restart). */
  private heldCursor = '';
  private readonly stmt;
  private readonly claimDue;

  constructor(options: SqliteStoreOptions) {
    this.synchronous = options.synchronous ?? 'FULL';
    const opened = openDatabase(options.path, this.synchronous);
    this.db = opened.db;
    this.closeDatabase = opened.close;
    const identity = options.path === ':memory:' ? null : new FileIdentity(options.path);
    const fileProblem = () => (this.problems.lost ??= identity?.problem() ?? null);
    // FULL durability without an fsync on the event loop: see wal-sync.ts.
    this.walSync = this.synchronous === 'FULL' && options.path !== ':memory:' ? new WalSync(`${options.path}-wal`) : null;
    this.checkpoints = options.path === ':memory:' ? null : new CheckpointThread(options.path);
    this.commits = new GroupCommit(this.db, undefined, {
      // Checked before every commit, so nothing is acknowledged into a file that was deleted or replaced.
      beforeCommit: () => {
        const lost = fileProblem();
        if (lost) throw unavailable(`${lost}; restart hookrelay once the file is restored`);
      },
      // The outcomes of the batch are in the table: their leases end.
      committed: () => {
        this.leases.committed();
        this.checkpoints?.committed();
      },
      settled: (error) => {
        // A batch that did not commit keeps its deliveries held until their leases expire (unstage is a no-op after a commit).
        if (error) this.leases.unstage();
        this.problems.settled(isStorageError(error) ? describeStorageError(error) : null);
      },
      // The batch runs again write by write: it stages its outcomes again.
      rolledBack: () => this.leases.unstage(),
    }, this.walSync);
    if (identity) {
      // Also noticed while idle, so that readiness turns 503 without waiting for a write.
      this.fileWatch = setInterval(fileProblem, 1000);
      this.fileWatch.unref();
    }
    const db = this.db;
    this.stmt = {
      appById: db.prepare('SELECT * FROM app WHERE id = ? OR uid = ? LIMIT 1'),
      endpointsOfApp: db.prepare('SELECT * FROM endpoint WHERE app_id = ? AND disabled = 0'),
      endpointById: db.prepare('SELECT * FROM endpoint WHERE app_id = ? AND (id = ? OR uid = ?) LIMIT 1'),
      // A message by id, else the newest with that eventId (a provider's delivery id may repeat across source messages):
      // two index seeks (one `id = ? OR event_id = ?` statement would walk every message of the app).
      messageByPrimaryKey: db.prepare('SELECT * FROM message WHERE id = ? AND app_id = ?'),
      // INDEXED BY: without it the planner walks message_app backwards. Newest by rowid, the order of insertion: the
      // index holds the rows of one eventId in rowid order, so this is a seek with no sort (by id it sorted every time).
      newestByEventId: db.prepare('SELECT * FROM message INDEXED BY message_event_id_lookup WHERE app_id = ? AND event_id = ? ORDER BY rowid DESC LIMIT 1'),
      messageByEventId: db.prepare('SELECT id FROM message WHERE app_id = ? AND event_id = ? AND source_id IS NULL'),
      idempotencyGet: db.prepare('SELECT message_id, expires_at FROM idempotency_key WHERE app_id = ? AND key = ?'),
      // The newest message with that eventId since a time (message_event_id_lookup, no sort as above): a provider's redelivery.
      recentByEventId: db.prepare('SELECT * FROM message INDEXED BY message_event_id_lookup WHERE app_id = ? AND event_id = ? AND created_at > ? ORDER BY rowid DESC LIMIT 1'),
      idempotencyPut: db.prepare(
        'INSERT INTO idempotency_key (app_id, key, message_id, expires_at) VALUES (?, ?, ?, ?) ON CONFLICT (app_id, key) DO UPDATE SET message_id = excluded.message_id, expires_at = excluded.expires_at',
      ),
      insertMessage: db.prepare(
        'INSERT INTO message (id, app_id, event_type, event_id, payload, content_type, channels, tags, created_at, source_id, headers, verified, trace_context, ordering_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
      ),
      sourceByToken: db.prepare('SELECT * FROM source WHERE token = ?'),
      insertDelivery: db.prepare(
        "INSERT INTO delivery (message_id, app_id, endpoint_id, status, next_attempt_at, created_at, updated_at, ordering_key) VALUES (?, ?, ?, 'pending', ?, ?, ?, ?)",
      ),
      insertAttempt: db.prepare(
        'INSERT INTO attempt (id, delivery_id, message_id, endpoint_id, app_id, url, started_at, duration_ms, status_code, succeeded, response_body, error, trigger, sent_request) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
      ),
      // Only for a delivery whose lease this process holds (leases.ts): in the table it is pending.
      finish: db.prepare(
        "UPDATE delivery SET status = ?, attempt_count = attempt_count + 1, retry_index = ?, next_attempt_at = ?, manual = 0, updated_at = ? WHERE id = ? AND status = 'pending'",
      ),
      countAttempt: db.prepare('UPDATE delivery SET attempt_count = attempt_count + 1, updated_at = ? WHERE id = ?'),
      disableEndpoint: db.prepare(
        `UPDATE endpoint SET disabled = @disabled, disabled_reason = @reason, updated_at = @now, ${resetHealthOnEnable('@disabled = 0')} WHERE id = @id`,
      ),
      healthOf: db.prepare('SELECT app_id, disabled, failure_streak, failing_since, parked_streak, circuit_open_until, circuit_trips FROM endpoint WHERE id = ?'),
      setHealth: db.prepare(
        `UPDATE endpoint SET failure_streak = @consecutiveFailures, failing_since = @failingSince, parked_streak = @parked, circuit_open_until = @openUntil,
           circuit_trips = @trips, disabled = CASE WHEN @disable IS NULL THEN disabled ELSE 1 END, disabled_reason = coalesce(@disable, disabled_reason),
           updated_at = CASE WHEN @disable IS NULL THEN updated_at ELSE @at END
         WHERE id = @id`,
      ),
      // Retention (prune): the payload of a message goes once no delivery of it is pending or in flight.
      expunge: db.prepare(
        `UPDATE message SET payload = NULL WHERE id IN (SELECT value FROM json_each(?)) AND payload IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM delivery d WHERE d.message_id = message.id AND d.status IN ('pending', 'in_flight'))`,
      ),
      // An attempt's id begins with its start time: a time range of attempts is a range of the primary key's index.
      pruneAttempts: db.prepare('DELETE FROM attempt WHERE id IN (SELECT id FROM attempt WHERE id < ? ORDER BY id LIMIT ?)'),
      attemptsPerMinute: db.prepare(
        'SELECT started_at / 60000 * 60000 AS minute, count(*) AS count, count(*) - sum(succeeded) AS failed FROM attempt WHERE id >= ? AND id < ? GROUP BY 1 ORDER BY 1',
      ),
      hold: db.prepare(
        'INSERT OR IGNORE INTO retention_held (message_id) SELECT id FROM message WHERE id IN (SELECT value FROM json_each(?)) AND payload IS NOT NULL',
      ),
      releaseHeld: db.prepare(
        `DELETE FROM retention_held WHERE message_id IN (SELECT value FROM json_each(?))
           AND NOT EXISTS (SELECT 1 FROM message m WHERE m.id = retention_held.message_id AND m.payload IS NOT NULL)`,
      ),
      heldForRetention: db.prepare('SELECT message_id FROM retention_held WHERE message_id > ? AND message_id < ? ORDER BY message_id LIMIT ?'),
      retentionCursor: db.prepare('SELECT message_id FROM retention_cursor WHERE id = 1'),
      moveRetentionCursor: db.prepare('UPDATE retention_cursor SET message_id = ? WHERE id = 1'),
      retentionWalk: db.prepare('SELECT id, payload IS NOT NULL AS has_payload FROM message WHERE id > ? AND id < ? ORDER BY id LIMIT ?'),
      // Held deliveries (leases.ts) are pending in the table but in flight: left out, row by row, only while there are any.
      backlog: backlogStatement(db, ''),
      backlogWithoutHeld: backlogStatement(db, 'AND id NOT IN (SELECT value FROM json_each(@held))'),
      pendingCount: db.prepare("SELECT count(*) FROM delivery WHERE status = 'pending'").pluck(),
      heldPending: db.prepare("SELECT count(*) FROM delivery WHERE id IN (SELECT value FROM json_each(?)) AND status = 'pending'").pluck(),
      paced: db.prepare('UPDATE endpoint SET next_send_at = ? WHERE id = ?'),
      endpointStates: db.prepare(
        `SELECT sum(disabled = 0 AND circuit_open_until IS NULL) AS closed, sum(disabled = 0 AND circuit_open_until > @now) AS open,
                sum(disabled = 0 AND circuit_open_until <= @now) AS half_open, sum(disabled = 1) AS disabled
         FROM endpoint`,
      ),
      nextPendingEndpoint: db.prepare("SELECT min(endpoint_id) AS id FROM delivery WHERE status = 'pending' AND endpoint_id > ?"),
      // The first row may be held (leases.ts): then the next ones, past as many as the endpoint holds. Two statements, as
      // a LIMIT bound as a parameter made every call ten times slower than LIMIT 1.
      dueOfEnabled: db.prepare(`${DUE_OF_ENABLED} LIMIT 1`),
      dueOfEnabledPastHeld: db.prepare(`${DUE_OF_ENABLED} LIMIT ?`),
    };
    this.claimDue = db.transaction((request: ClaimRequest) => claimDue(db, request, this.claimCursor, this.leases));
  }

  // ---- apps ---------------------------------------------------------------------------------

  async listApps(page: PageRequest): Promise<Page<App>> {
    return this.pageOf('SELECT * FROM app WHERE 1 = 1', [], 'id', page, toApp, (a) => a.id);
  }

  async createApp(input: AppInput, now: number): Promise<App> {
    const id = newId(ID_PREFIX.app, now);
    try {
      this.db
        .prepare('INSERT INTO app (id, uid, name, rate_limit, metadata, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)')
        .run(id, input.uid, input.name, input.rateLimit, JSON.stringify(input.metadata), now, now);
    } catch (error) {
      if (isUniqueViolation(error)) throw conflict(`an application with uid ${JSON.stringify(input.uid)} already exists`);
      throw error;
    }
    return (await this.getApp(id))!;
  }

  async getApp(idOrUid: string): Promise<App | null> {
    const row = this.stmt.appById.get(idOrUid, idOrUid);
    return row ? toApp(row) : null;
  }

  async updateApp(id: string, input: AppInput, now: number): Promise<App> {
    try {
      const result = this.db
        .prepare('UPDATE app SET uid = ?, name = ?, rate_limit = ?, metadata = ?, updated_at = ? WHERE id = ?')
        .run(input.uid, input.name, input.rateLimit, JSON.stringify(input.metadata), now, id);
      if (result.changes === 0) throw notFound('application', id);
    } catch (error) {
      if (isUniqueViolation(error)) throw conflict(`an application with uid ${JSON.stringify(input.uid)} already exists`);
      throw error;
    }
    return (await this.getApp(id))!;
  }

  async deleteApp(id: string): Promise<void> {
    this.sourcesChanged();
    this.endpointsChanged();
    this.db.prepare('DELETE FROM app WHERE id = ?').run(id);
  }

  // ---- event types ----------------------------------------------------------------------------

  async listEventTypes(page: PageRequest, includeArchived: boolean): Promise<Page<EventType>> {
    const where = includeArchived ? 'SELECT * FROM event_type WHERE 1 = 1' : 'SELECT * FROM event_type WHERE archived = 0';
    return this.pageOf(where, [], 'name', { order: 'ascending', ...page }, toEventType, (e) => e.name);
  }

  async createEventType(input: EventTypeInput, now: number): Promise<EventType> {
    const existing = await this.getEventType(input.name);
    if (existing && !existing.archived) throw conflict(`an event type named ${JSON.stringify(input.name)} already exists`);
    this.db
      .prepare(
        `INSERT INTO event_type (name, description, archived, deprecated, feature_flag, group_name, schemas, validate_payloads, created_at, updated_at)
         VALUES (@name, @description, @archived, @deprecated, @featureFlag, @groupName, @schemas, @validatePayloads, @now, @now)
         ON CONFLICT (name) DO UPDATE SET description = excluded.description, archived = excluded.archived, deprecated = excluded.deprecated,
           feature_flag = excluded.feature_flag, group_name = excluded.group_name, schemas = excluded.schemas,
           validate_payloads = excluded.validate_payloads, updated_at = excluded.updated_at`,
      )
      .run(this.eventTypeParams(input, now));
    return (await this.getEventType(input.name))!;
  }

  async getEventType(name: string): Promise<EventType | null> {
    const row = this.db.prepare('SELECT * FROM event_type WHERE name = ?').get(name);
    return row ? toEventType(row) : null;
  }

  async updateEventType(input: EventTypeInput, now: number): Promise<EventType> {
    this.db
      .prepare(
        `INSERT INTO event_type (name, description, archived, deprecated, feature_flag, group_name, schemas, validate_payloads, created_at, updated_at)
         VALUES (@name, @description, @archived, @deprecated, @featureFlag, @groupName, @schemas, @validatePayloads, @now, @now)
         ON CONFLICT (name) DO UPDATE SET description = excluded.description, archived = excluded.archived, deprecated = excluded.deprecated,
           feature_flag = excluded.feature_flag, group_name = excluded.group_name, schemas = excluded.schemas,
           validate_payloads = excluded.validate_payloads, updated_at = excluded.updated_at`,
      )
      .run(this.eventTypeParams(input, now));
    return (await this.getEventType(input.name))!;
  }

  async deleteEventType(name: string): Promise<void> {
    this.db.prepare('DELETE FROM event_type WHERE name = ?').run(name);
  }

  private eventTypeParams(input: EventTypeInput, now: number) {
    return {
      name: input.name,
      description: input.description,
      archived: input.archived ? 1 : 0,
      deprecated: input.deprecated ? 1 : 0,
      featureFlag: input.featureFlag,
      groupName: input.groupName,
      schemas: jsonOrNull(input.schemas),
      validatePayloads: input.validatePayloads ? 1 : 0,
      now,
    };
  }

  // ---- endpoints ------------------------------------------------------------------------------

  async listEndpoints(appId: string, page: PageRequest): Promise<Page<Endpoint>> {
    return this.pageOf('SELECT * FROM endpoint WHERE app_id = ?', [appId], 'id', page, toEndpoint, (e) => e.id);
  }

  async createEndpoint(appId: string, input: EndpointInput, secret: string, now: number): Promise<Endpoint> {
    this.endpointsChanged();
    const id = newId(ID_PREFIX.endpoint, now);
    try {
      this.db
        .prepare(
          `INSERT INTO endpoint (id, app_id, uid, url, description, version, filter_types, channels, filter, transformation, headers, disabled, rate_limit, ordering, ordering_on_park, max_in_flight, metadata, destination, secrets,
             verification_mode, verification_state, verification_attempts, verification_last_at, verification_next_at, verification_reason, created_at, updated_at)
           VALUES (@id, @appId, @uid, @url, @description, @version, @filterTypes, @channels, @filter, @transformation, @headers, @disabled, @rateLimit, @ordering, @orderingOnPark, @maxInFlight, @metadata, @destination, @secrets,
             @vMode, @vState, @vAttempts, @vLastAt, @vNextAt, @vReason, @now, @now)`,
        )
        .run({ id, appId, ...this.endpointParams(input), secrets: JSON.stringify([{ key: secret, expiresAt: null }]), now });
    } catch (error) {
      if (isUniqueViolation(error)) throw conflict(`an endpoint with uid ${JSON.stringify(input.uid)} already exists in this application`);
      throw error;
    }
    return (await this.getEndpoint(appId, id))!;
  }

  async getEndpoint(appId: string, idOrUid: string): Promise<Endpoint | null> {
    const row = this.stmt.endpointById.get(appId, idOrUid, idOrUid);
    return row ? toEndpoint(row) : null;
  }

  async updateEndpoint(appId: string, id: string, input: EndpointInput, now: number): Promise<Endpoint> {
    this.endpointsChanged();
    try {
      this.db.transaction(() => {
        const result = this.db
          .prepare(
            `UPDATE endpoint SET uid = @uid, url = @url, description = @description, version = @version, filter_types = @filterTypes,
               channels = @channels, filter = @filter, transformation = @transformation, headers = @headers, disabled = @disabled,
               disabled_reason = CASE WHEN @disabled = 0 THEN NULL ELSE disabled_reason END, ${resetHealthOnEnable('@disabled = 0')},
               rate_limit = @rateLimit, ordering = @ordering, ordering_on_park = @orderingOnPark, max_in_flight = @maxInFlight, metadata = @metadata,
               destination = @destination, ${SET_VERIFICATION}, updated_at = @now
             WHERE app_id = @appId AND id = @id`,
          )
          .run({ id, appId, ...this.endpointParams(input), now });
        if (result.changes === 0) throw notFound('endpoint', id);
        // Becoming `ordering: 'key'`: the deliveries not yet finished are ordered by their messages' keys from now on.
        if (input.ordering === 'key') this.db.prepare(KEY_UNKEYED_DELIVERIES).run(id);
      }).immediate();
    } catch (error) {
      if (isUniqueViolation(error)) throw conflict(`an endpoint with uid ${JSON.stringify(input.uid)} already exists in this application`);
      throw error;
    }
    return (await this.getEndpoint(appId, id))!;
  }

  async deleteEndpoint(appId: string, id: string): Promise<void> {
    this.endpointsChanged();
    this.db.prepare('DELETE FROM endpoint WHERE app_id = ? AND id = ?').run(appId, id);
  }

  async rotateEndpointSecret(appId: string, id: string, secret: string, previousExpiresAt: number, now: number): Promise<Endpoint> {
    const endpoint = await this.getEndpoint(appId, id);
    if (!endpoint) throw notFound('endpoint', id);
    const kept = endpoint.secrets
      .map((s) => (s.expiresAt === null ? { key: s.key, expiresAt: previousExpiresAt } : s))
      .filter((s) => s.expiresAt! > now);
    const secrets = [{ key: secret, expiresAt: null }, ...kept];
    this.db.prepare('UPDATE endpoint SET secrets = ?, updated_at = ? WHERE id = ?').run(JSON.stringify(secrets), now, endpoint.id);
    return (await this.getEndpoint(appId, id))!;
  }

  async addEndpointEncryptionKey(appId: string, id: string, key: EncryptionKey, max: number, now: number): Promise<'added' | 'duplicate' | 'full'> {
    // One process writes this database and better-sqlite3 is synchronous: nothing interleaves between read and write.
    const row = this.db.prepare('SELECT id, encryption_keys FROM endpoint WHERE app_id = ? AND id = ?').get(appId, id) as { id: string; encryption_keys: string } | undefined;
    if (!row) throw notFound('endpoint', id);
    const keys = JSON.parse(row.encryption_keys) as EncryptionKey[];
    if (keys.some((k) => k.kid === key.kid)) return 'duplicate';
    if (keys.length >= max) return 'full';
    this.db.prepare('UPDATE endpoint SET encryption_keys = ?, updated_at = ? WHERE id = ?').run(JSON.stringify([...keys, key]), now, row.id);
    return 'added';
  }

  async deleteEndpointEncryptionKey(appId: string, id: string, kid: string, now: number): Promise<boolean> {
    const row = this.db.prepare('SELECT id, encryption_keys FROM endpoint WHERE app_id = ? AND id = ?').get(appId, id) as { id: string; encryption_keys: string } | undefined;
    if (!row) throw notFound('endpoint', id);
    const keys = JSON.parse(row.encryption_keys) as EncryptionKey[];
    const kept = keys.filter((k) => k.kid !== kid);
    if (kept.length === keys.length) return false;
    this.db.prepare('UPDATE endpoint SET encryption_keys = ?, updated_at = ? WHERE id = ?').run(JSON.stringify(kept), now, row.id);
    return true;
  }

  async listDestinationEndpoints(): Promise<Endpoint[]> {
    return this.db.prepare('SELECT * FROM endpoint WHERE destination IS NOT NULL AND disabled = 0').all().map(toEndpoint);
  }

  async setEndpointDisabled(id: string, disabled: boolean, reason: string | null, now: number): Promise<void> {
    this.endpointsChanged();
    this.stmt.disableEndpoint.run({ disabled: disabled ? 1 : 0, reason, now, id });
  }

  private endpointParams(input: EndpointInput) {
    return {
      uid: input.uid,
      url: input.url,
      description: input.description,
      version: input.version,
      filterTypes: jsonOrNull(input.filterTypes),
      channels: jsonOrNull(input.channels),
      filter: jsonOrNull(input.filter),
      transformation: jsonOrNull(input.transformation),
      headers: JSON.stringify(input.headers),
      disabled: input.disabled ? 1 : 0,
      rateLimit: input.rateLimit,
      ordering: input.ordering,
      orderingOnPark: input.orderingOnPark ?? 'skip',
      maxInFlight: input.maxInFlight,
      metadata: JSON.stringify(input.metadata),
      destination: jsonOrNull(input.destination),
      ...verificationParams(input.verification),
    };
  }

  // ---- registration handshake -------------------------------------------------------------------

  async claimVerifications(owner: string, now: number, leaseUntil: number, limit: number): Promise<Endpoint[]> {
    return this.db
      .prepare(
        `UPDATE endpoint SET verification_leased_by = @owner, verification_lease_until = @leaseUntil
         WHERE id IN (SELECT id FROM endpoint WHERE verification_state = 'pending' AND verification_next_at <= @now
                        AND (verification_lease_until IS NULL OR verification_lease_until < @now) ORDER BY verification_next_at LIMIT @limit)
         RETURNING *`,
      )
      .all({ owner, leaseUntil, now, limit })
      .map(toEndpoint);
  }

  async finishVerification(id: string, owner: string, v: EndpointVerification): Promise<boolean> {
    const result = this.db
      .prepare(
        `UPDATE endpoint SET verification_state = @state, verification_attempts = @attempts, verification_last_at = @lastAttemptAt,
           verification_next_at = @nextAttemptAt, verification_reason = @reason, verification_leased_by = NULL, verification_lease_until = NULL
         WHERE id = @id AND verification_leased_by = @owner AND verification_state = 'pending'`,
      )
      .run({ id, owner, state: v.state, attempts: v.attempts, lastAttemptAt: v.lastAttemptAt, nextAttemptAt: v.nextAttemptAt, reason: v.reason });
    return result.changes === 1;
  }

  async nextVerificationAt(): Promise<number | null> {
    const row = this.db
      .prepare("SELECT min(max(verification_next_at, coalesce(verification_lease_until, 0))) AS at FROM endpoint WHERE verification_state = 'pending'")
      .get() as { at: number | null };
    return row.at;
  }

  // ---- sources --------------------------------------------------------------------------------

  async listSources(page: PageRequest): Promise<Page<Source>> {
    return this.pageOf('SELECT * FROM source WHERE 1 = 1', [], 'id', page, toSource, (s) => s.id);
  }

  async createSource(input: SourceInput, token: string, now: number): Promise<Source> {
    this.sourcesChanged();
    const id = newId(ID_PREFIX.source, now);
    const appId = newId(ID_PREFIX.app, now);
    try {
      this.db.transaction(() => {
        this.db
          .prepare('INSERT INTO app (id, uid, name, rate_limit, metadata, created_at, updated_at) VALUES (?, NULL, ?, NULL, ?, ?, ?)')
          .run(appId, `source ${input.name}`, JSON.stringify({ source: id }), now, now);
        this.db
          .prepare('INSERT INTO source (id, app_id, uid, name, type, config, metadata, token, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)')
          .run(id, appId, input.uid, input.name, input.type, JSON.stringify(input.config), JSON.stringify(input.metadata), token, now, now);
      })();
    } catch (error) {
      if (isUniqueViolation(error)) throw conflict(`a source with uid ${JSON.stringify(input.uid)} already exists`);
      throw error;
    }
    return (await this.getSource(id))!;
  }

  async getSource(idOrUid: string): Promise<Source | null> {
    const row = this.db.prepare('SELECT * FROM source WHERE id = ? OR uid = ? LIMIT 1').get(idOrUid, idOrUid);
    return row ? toSource(row) : null;
  }

  /** Cached per token: this process is the only writer, and every source write goes through `sourcesChanged`. */
  async getSourceByToken(token: string): Promise<Source | null> {
    const cached = this.getCachedSourceByToken(token);
    if (cached) return cached;
    const row = this.stmt.sourceByToken.get(token);
    if (!row) return null;
    // Unknown tokens are not kept: anyone can post to /ingest/<anything>.
    const source = toSource(row);
    this.sourceCache.set(token, source);
    return source;
  }

  getCachedSourceByToken(token: string): Source | undefined {
    return this.sourceCache.get(token);
  }

  private sourcesChanged(): void {
    this.sourceCache.clear();
  }

  async updateSource(id: string, input: SourceInput, now: number): Promise<Source> {
    this.sourcesChanged();
    try {
      const result = this.db
        .prepare('UPDATE source SET name = ?, uid = ?, type = ?, config = ?, metadata = ?, updated_at = ? WHERE id = ?')
        .run(input.name, input.uid, input.type, JSON.stringify(input.config), JSON.stringify(input.metadata), now, id);
      if (result.changes === 0) throw notFound('source', id);
    } catch (error) {
      if (isUniqueViolation(error)) throw conflict(`a source with uid ${JSON.stringify(input.uid)} already exists`);
      throw error;
    }
    return (await this.getSource(id))!;
  }

  async setSourceToken(id: string, token: string, now: number): Promise<Source> {
    this.sourcesChanged();
    this.db.prepare('UPDATE source SET token = ?, updated_at = ? WHERE id = ?').run(token, now, id);
    const source = await this.getSource(id);
    if (!source) throw notFound('source', id);
    return source;
  }

  async deleteSource(id: string): Promise<void> {
    this.sourcesChanged();
    this.endpointsChanged();
    const source = await this.getSource(id);
    if (source) this.db.prepare('DELETE FROM app WHERE id = ?').run(source.appId);
    // A lookup while getSource was awaited may have cached the source again.
    this.sourcesChanged();
  }

  // ---- api keys -------------------------------------------------------------------------------

  async createApiKey(key: ApiKey): Promise<ApiKey> {
    try {
      this.db
        .prepare('INSERT INTO api_key (id, app_id, name, prefix, hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)')
        .run(key.id, key.appId, key.name, key.prefix, key.hash, key.createdAt, key.expiresAt);
    } catch (error) {
      if (isForeignKeyViolation(error)) throw notFound('application', key.appId);
      throw error;
    }
    return (await this.getApiKey(key.id))!;
  }

  async getApiKey(id: string): Promise<ApiKey | null> {
    const row = this.db.prepare('SELECT * FROM api_key WHERE id = ?').get(id);
    return row ? toApiKey(row) : null;
  }

  async listApiKeys(appId: string, page: PageRequest): Promise<Page<ApiKey>> {
    return this.pageOf('SELECT * FROM api_key WHERE app_id = ?', [appId], 'id', page, toApiKey, (k) => k.id);
  }

  async deleteApiKey(appId: string, id: string): Promise<boolean> {
    return this.db.prepare('DELETE FROM api_key WHERE app_id = ? AND id = ?').run(appId, id).changes > 0;
  }

  // ---- secrets at rest --------------------------------------------------------------------------

  async scanSecrets(kind: SecretRow['kind'], after: string, limit: number): Promise<SecretRow[]> {
    if (kind === 'endpoint') {
      const rows = this.db.prepare('SELECT id, secrets, destination FROM endpoint WHERE id > ? ORDER BY id LIMIT ?').all(after, limit) as any[];
      return rows.map((r) => ({ kind, id: r.id, secrets: JSON.parse(r.secrets), destination: r.destination === null ? null : JSON.parse(r.destination) }));
    }
    const rows = this.db.prepare('SELECT id, config FROM source WHERE id > ? ORDER BY id LIMIT ?').all(after, limit) as any[];
    return rows.map((r) => ({ kind, id: r.id, config: JSON.parse(r.config) }));
  }

  /**
   * With `secure_delete` the space the previous values took is zeroed, and the checkpoint copies those pages over
   * the database file and empties the WAL: no readable copy of a plaintext secret is left behind after an upgrade.
   */
  async rewriteSecrets(changes: { previous: SecretRow; next: SecretRow }[]): Promise<number> {
    if (changes.length === 0) return 0;
    this.endpointsChanged();
    this.sourcesChanged();
    const endpoint = this.db.prepare('UPDATE endpoint SET secrets = ?, destination = ? WHERE id = ? AND secrets = ? AND destination IS ?');
    const source = this.db.prepare('UPDATE source SET config = ? WHERE id = ? AND config = ?');
    const mode = this.db.pragma('secure_delete', { simple: true }) as number;
    this.db.pragma('secure_delete = ON');
    let written = 0;
    try {
      this.db
        .transaction(() => {
          for (const { previous, next } of changes) {
            if (previous.kind === 'endpoint' && next.kind === 'endpoint') {
              written += endpoint.run(JSON.stringify(next.secrets), jsonOrNull(next.destination), previous.id, JSON.stringify(previous.secrets), jsonOrNull(previous.destination)).changes;
            } else if (previous.kind === 'source' && next.kind === 'source') {
              written += source.run(JSON.stringify(next.config), previous.id, JSON.stringify(previous.config)).changes;
            }
          }
        })
        .immediate();
    } finally {
      this.db.pragma(`secure_delete = ${mode === 2 ? 'FAST' : mode}`);
    }
    this.db.pragma('wal_checkpoint(TRUNCATE)');
    return written;
  }

  // ---- messages -------------------------------------------------------------------------------

  accept(input: AcceptInput): Promise<AcceptResult> {
    return this.commits.run(() => this.acceptNow(input));
  }

  /**
   * The enabled endpoints of an app with their parsed filters, cached: this process is the only writer of the
   * file, and every write to the endpoint table goes through `endpointsChanged`.
   */
  private fanOutTargets(appId: string): FanOutTarget[] {
    let targets = this.fanOutCache.get(appId);
    if (!targets) {
      targets = (this.stmt.endpointsOfApp.all(appId) as any[]).map((row) => ({
        id: row.id as string,
        filterTypes: JSON.parse(row.filter_types) as string[] | null,
        channels: JSON.parse(row.channels) as string[] | null,
        disabled: false,
        content: row.filter === null ? null : compileStoredFilter(row.filter),
        keyed: row.ordering === 'key',
      }));
      this.fanOutCache.set(appId, targets);
    }
    return targets;
  }

  private endpointsChanged(): void {
    this.fanOutCache.clear();
  }

  /** Runs inside a group-commit transaction: idempotency, the message and its fan-out are one unit. */
  private acceptNow(input: AcceptInput): AcceptResult {
    const { appId, now } = input;
    if (input.dedupeWindowMs && input.eventId !== null) {
      // One process writes the file, so a lookup is enough: no record to race on (PostgreSQL keeps an idempotency key).
      const earlier = this.stmt.recentByEventId.get(appId, input.eventId, now - input.dedupeWindowMs);
      if (earlier) return { kind: 'duplicate', message: toMessage(earlier) };
    }
    if (input.idempotencyKey !== null) {
      const seen = this.stmt.idempotencyGet.get(appId, input.idempotencyKey) as { message_id: string; expires_at: number } | undefined;
      if (seen && seen.expires_at > now) {
        const original = this.stmt.messageByPrimaryKey.get(seen.message_id, appId);
        if (original) return { kind: 'duplicate', message: toMessage(original) };
      }
    }
    if (input.eventId !== null && !input.source && this.stmt.messageByEventId.get(appId, input.eventId)) {
      return { kind: 'event_id_conflict', eventId: input.eventId };
    }
    const id = newId(ID_PREFIX.message, now);
    const channels = jsonOrNull(input.channels);
    const source = input.source ?? null;
    this.stmt.insertMessage.run(
      id,
      appId,
      input.eventType,
      input.eventId,
      input.payload,
      input.contentType,
      channels,
      jsonOrNull(input.tags),
      now,
      source?.id ?? null,
      jsonOrNull(source?.headers),
      source === null ? null : source.verified ? 1 : 0,
      input.traceContext ?? null,
      input.orderingKey ?? null,
    );
    let deliveries = 0;
    // Parsed at most once per accept, and only when an endpoint with a content filter is otherwise a match.
    let subject: FilterSubject | undefined;
    for (const endpoint of this.fanOutTargets(appId)) {
      if (input.endpointId !== undefined) {
        // A delivery to one named endpoint (send-example), whatever its filters.
        if (endpoint.id !== input.endpointId) continue;
      } else {
        if (!endpointMatches(endpoint, input.eventType, input.channels)) continue;
        if (endpoint.content !== null && !endpoint.content((subject ??= filterSubject(input)))) continue;
      }
      this.stmt.insertDelivery.run(id, appId, endpoint.id, input.dueAt, now, now, endpoint.keyed ? deliveryKeyOf(id, input.orderingKey) : null);
      deliveries++;
    }
    if (input.idempotencyKey !== null) this.stmt.idempotencyPut.run(appId, input.idempotencyKey, id, now + input.idempotencyTtlMs);
    const message: Message = {
      id,
      appId,
      eventType: input.eventType,
      eventId: input.eventId,
      payload: input.payload,
      contentType: input.contentType,
      channels: input.channels,
      tags: input.tags,
      orderingKey: input.orderingKey ?? null,
      createdAt: now,
      sourceId: source?.id ?? null,
      headers: source?.headers ?? null,
      verified: source?.verified ?? null,
    };
    return { kind: 'accepted', message, deliveries };
  }

  async listMessages(appId: string, filter: MessageFilter, page: PageRequest): Promise<Page<Message>> {
    const { sql, params } = messageFilterSql(filter, 'm');
    return this.pageOf(`SELECT m.* FROM message m WHERE m.app_id = ?${sql}`, [appId, ...params], 'm.id', page, toMessage, (m) => m.id);
  }

  async getMessage(appId: string, idOrEventId: string): Promise<Message | null> {
    const row = this.stmt.messageByPrimaryKey.get(idOrEventId, appId) ?? this.stmt.newestByEventId.get(appId, idOrEventId);
    return row ? toMessage(row) : null;
  }

  async expungeMessageContent(appId: string, id: string): Promise<void> {
    this.db.prepare('UPDATE message SET payload = NULL WHERE app_id = ? AND id = ?').run(appId, id);
  }

  // ---- attempts and deliveries ----------------------------------------------------------------

  async listAttemptsByEndpoint(appId: string, endpointId: string, filter: AttemptFilter, page: PageRequest): Promise<Page<Attempt>> {
    return this.attemptPage('a.app_id = ? AND a.endpoint_id = ?', [appId, endpointId], filter, page);
  }

  async listAttemptsByMessage(appId: string, messageId: string, filter: AttemptFilter & { endpointId?: string }, page: PageRequest): Promise<Page<Attempt>> {
    const extra = filter.endpointId ? ' AND a.endpoint_id = ?' : '';
    const params = filter.endpointId ? [appId, messageId, filter.endpointId] : [appId, messageId];
    return this.attemptPage(`a.app_id = ? AND a.message_id = ?${extra}`, params, filter, page);
  }

  private attemptPage(where: string, params: unknown[], filter: AttemptFilter, page: PageRequest): Promise<Page<Attempt>> {
    const messageFilter = messageFilterSql(filter, 'm');
    let sql = `SELECT a.* FROM attempt a JOIN message m ON m.id = a.message_id WHERE ${where}${messageFilter.sql}`;
    const all = [...params, ...messageFilter.params];
    if (filter.succeeded !== undefined) {
      sql += ' AND a.succeeded = ?';
      all.push(filter.succeeded ? 1 : 0);
    }
    return Promise.resolve(this.pageOf(sql, all, 'a.id', page, toAttempt, (a) => a.id));
  }

  async getAttempt(appId: string, messageId: string, attemptId: string): Promise<Attempt | null> {
    const row = this.db.prepare('SELECT * FROM attempt WHERE app_id = ? AND message_id = ? AND id = ?').get(appId, messageId, attemptId);
    return row ? toAttempt(row) : null;
  }

  async listDeliveriesByEndpoint(
    appId: string,
    endpointId: string,
    filter: MessageFilter & { status?: DeliveryView['delivery']['status'] },
    page: PageRequest,
  ): Promise<Page<DeliveryView>> {
    const messageFilter = messageFilterSql(filter, 'm');
    let sql = `${DELIVERY_VIEW} WHERE d.app_id = ? AND d.endpoint_id = ?${messageFilter.sql}`;
    const params: unknown[] = [appId, endpointId, ...messageFilter.params];
    // 'failed' as a literal: the planner then seeks the partial index of the failed ones rather than walking them all.
    if (filter.status === 'failed') sql += " AND d.status = 'failed'";
    else if (filter.status === 'in_flight' || filter.status === 'pending') {
      // In flight is held in memory (leases.ts); in the table those deliveries are pending.
      sql += ` AND d.status = 'pending' AND d.id ${filter.status === 'pending' ? 'NOT IN' : 'IN'} (SELECT value FROM json_each(?))`;
      params.push(JSON.stringify(this.leases.ids(endpointId)));
    } else if (filter.status) {
      sql += ' AND d.status = ?';
      params.push(filter.status);
    }
    return this.pageOf(sql, params, 'd.message_id', page, this.deliveryView, (v) => v.message.id);
  }

  async listDeliveriesByMessage(appId: string, messageId: string, page: PageRequest): Promise<Page<DeliveryView>> {
    const sql = `${DELIVERY_VIEW} WHERE d.app_id = ? AND d.message_id = ?`;
    return this.pageOf(sql, [appId, messageId], 'd.endpoint_id', { order: 'ascending', ...page }, this.deliveryView, (v) => v.endpoint.id);
  }

  /** A delivery's row as the API shows it: in flight while this process holds its lease. */
  private readonly deliveryView = (row: unknown): DeliveryView => {
    const view = toDeliveryView(row);
    if (this.leases.has(view.delivery.id)) view.delivery.status = 'in_flight';
    return view;
  };

  /** A delivery in flight is pending in the table and stays held: its attempt's outcome, written next, decides its state. */
  async resend(appId: string, messageId: string, endpointId: string, now: number): Promise<void> {
    this.db
      .prepare(
        `INSERT INTO delivery (message_id, app_id, endpoint_id, status, next_attempt_at, manual, created_at, updated_at, ordering_key)
         VALUES (?, ?, ?, 'pending', ?, 1, ?, ?, ${KEY_OF_NEW_DELIVERY})
         ON CONFLICT (message_id, endpoint_id) DO UPDATE SET
           status = 'pending', next_attempt_at = excluded.next_attempt_at, retry_index = 0,
           manual = 1, updated_at = excluded.updated_at, ordering_key = coalesce(ordering_key, excluded.ordering_key)`,
      )
      .run(messageId, appId, endpointId, now, now, now, endpointId, messageId, messageId);
  }

  async recover(appId: string, endpointId: string, since: number, until: number, now: number): Promise<number> {
    const result = this.db
      .prepare(
        `UPDATE delivery SET status = 'pending', next_attempt_at = ?, retry_index = 0, manual = 1, updated_at = ?
         WHERE app_id = ? AND endpoint_id = ? AND status = 'failed'
           AND message_id IN (SELECT id FROM message WHERE app_id = ? AND created_at >= ? AND created_at < ? AND id >= ? AND id < ?)`,
      )
      .run(now, now, appId, endpointId, appId, since, until, idFloor(ID_PREFIX.message, since), idFloor(ID_PREFIX.message, until));
    return result.changes;
  }

  async replayMissing(appId: string, endpointId: string, since: number, until: number, now: number): Promise<number> {
    const endpoint = await this.getEndpoint(appId, endpointId);
    if (!endpoint) return 0;
    const candidates = this.db
      .prepare(
        `SELECT m.id, m.event_type, m.channels FROM message m
         WHERE m.app_id = ? AND m.created_at >= ? AND m.created_at < ? AND m.id >= ? AND m.id < ? AND m.payload IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM delivery d WHERE d.message_id = m.id AND d.endpoint_id = ?)
         ORDER BY m.id`,
      )
      // A time bound is also an id bound (ids begin with their creation time): a range of message_app, not the app's every message.
      .all(appId, since, until, idFloor(ID_PREFIX.message, since), idFloor(ID_PREFIX.message, until), endpoint.id) as { id: string; event_type: string; channels: string | null }[];
    // Filters as they are now; a disabled endpoint gets its deliveries too, sent once it is enabled.
    const filter = { ...endpoint, disabled: false };
    const replay = this.db.prepare(
      `INSERT INTO delivery (message_id, app_id, endpoint_id, status, next_attempt_at, manual, created_at, updated_at, ordering_key)
       VALUES (?, ?, ?, 'pending', ?, 1, ?, ?, ${KEY_OF_NEW_DELIVERY}) ON CONFLICT (message_id, endpoint_id) DO NOTHING`,
    );
    return this.db.transaction(() => {
      let replayed = 0;
      for (const m of candidates) {
        if (!endpointMatches(filter, m.event_type, m.channels === null ? null : (JSON.parse(m.channels) as string[]))) continue;
        replayed += replay.run(m.id, appId, endpoint.id, now, now, now, endpoint.id, m.id, m.id).changes;
      }
      return replayed;
    })();
  }

  async endpointStats(appId: string, endpointId: string, range: { since?: number; until?: number }): Promise<Record<DeliveryStatus, number>> {
    const rows = this.db
      .prepare('SELECT status, count(*) AS n FROM delivery WHERE app_id = ? AND endpoint_id = ? AND created_at >= ? AND created_at < ? GROUP BY status')
      .all(appId, endpointId, range.since ?? 0, range.until ?? Number.MAX_SAFE_INTEGER) as { status: DeliveryStatus; n: number }[];
    const stats: Record<DeliveryStatus, number> = { pending: 0, in_flight: 0, succeeded: 0, failed: 0 };
    for (const row of rows) stats[row.status] = row.n;
    // Held deliveries are pending in the table (leases.ts).
    const held = this.leases.countOf(appId, endpointId, range.since ?? 0, range.until ?? Number.MAX_SAFE_INTEGER);
    stats.pending -= held;
    stats.in_flight += held;
    return stats;
  }

  async expungeAttemptContent(appId: string, messageId: string, attemptId: string): Promise<boolean> {
    const result = this.db.prepare("UPDATE attempt SET response_body = '', sent_request = NULL WHERE app_id = ? AND message_id = ? AND id = ?").run(appId, messageId, attemptId);
    return result.changes > 0;
  }

  // ---- dispatcher -----------------------------------------------------------------------------

  async claim(request: ClaimRequest): Promise<ClaimedDelivery[]> {
    // A read, but one snapshot for all its statements; the leases it takes are in memory (leases.ts).
    const { claimed, paced } = this.claimDue.deferred(request);
    if (paced.length > 0) {
      try {
        this.withoutFsync(() => this.db.transaction(() => paced.forEach(([id, at]) => this.stmt.paced.run(at, id)))());
      } catch (error) {
        // Without its reserved send times written, a rate-limited endpoint could be sent to too fast: claim nothing.
        for (const c of claimed) this.leases.free(c.delivery.id);
        throw error;
      }
    }
    return claimed;
  }

  /**
   * Runs a write without an fsync of its own: the next FULL commit makes its WAL frames durable too. For what a
   * crash may lose at no cost (a rate limit's next send time: at worst a few sends come a window early).
   */
  private withoutFsync<T>(work: () => T): T {
    if (this.synchronous !== 'FULL') return work();
    this.db.pragma('synchronous = NORMAL');
    try {
      return work();
    } finally {
      this.db.pragma('synchronous = FULL');
    }
  }

  /** Answered at the commit, without waiting for its sync: see group-commit.ts. */
  complete(outcomes: AttemptOutcome[], policy: HealthPolicy = DEFAULT_HEALTH_POLICY): Promise<HealthChange[]> {
    return this.commits.run(() => {
      const mark = this.leases.stagedCount;
      try {
        for (const outcome of outcomes) this.completeOne(outcome);
        return this.recordHealth(outcomes, policy);
      } catch (error) {
        // Rolled back to this write's savepoint: its outcomes are not written, their deliveries stay held.
        this.leases.unstage(mark);
        throw error;
      }
    }, false);
  }

  /** One read and at most one write per endpoint of the batch; a healthy endpoint whose attempts all succeeded is not written. */
  private recordHealth(outcomes: AttemptOutcome[], policy: HealthPolicy): HealthChange[] {
    const changes: HealthChange[] = [];
    for (const report of summarizeHealth(outcomes)) {
      const row = this.stmt.healthOf.get(report.endpointId) as any;
      if (!row) continue;
      const health = toHealth(row);
      if (!mayChange(health, report)) continue;
      const step = nextHealth(health, row.disabled === 1, report, policy);
      this.stmt.setHealth.run({ id: report.endpointId, ...step.health, disable: step.disable, at: report.at });
      if (step.disable) this.endpointsChanged();
      if (step.opened || step.closed || step.disable) {
        changes.push({
          endpointId: report.endpointId,
          appId: row.app_id,
          opened: step.opened,
          closed: step.closed,
          disabled: step.disable,
          consecutiveFailures: step.health.consecutiveFailures,
          openUntil: step.health.openUntil,
        });
      }
    }
    return changes;
  }

  private completeOne({ owner, attempt, next }: AttemptOutcome): void {
    const a = attempt;
    this.stmt.insertAttempt.run(a.id, a.deliveryId, a.messageId, a.endpointId, a.appId, a.url, a.startedAt, a.durationMs, a.statusCode, a.succeeded ? 1 : 0, a.responseBody, a.error, a.trigger, jsonOrNull(a.request));
    const now = attempt.startedAt + attempt.durationMs;
    // The lease was lost (it expired, and maybe another claim took the delivery): keep the attempt, leave the state.
    if (!this.leases.holds(attempt.deliveryId, owner)) {
      this.stmt.countAttempt.run(now, attempt.deliveryId);
      return;
    }
    const [status, retryIndex, at] =
      next.kind === 'succeeded' ? ['succeeded', 0, null] : next.kind === 'retry' ? ['pending', next.retryIndex, next.at] : ['failed', 0, null];
    this.stmt.finish.run(status, retryIndex, at, now, attempt.deliveryId);
    this.leases.stage(attempt.deliveryId);
  }

  attemptAnswered(deliveryId: number): void {
    this.leases.answered(deliveryId);
  }

  async renewLeases(owner: string, deliveryIds: number[], until: number): Promise<void> {
    this.leases.renew(owner, deliveryIds, until);
  }

  /** Queued behind the outcomes and accepts already waiting for the group commit, so it never overtakes an outcome. */
  releaseLeases(owner: string | null): Promise<number> {
    return this.commits.run(() => {
      const released = this.leases.release(owner);
      // Handshakes in flight when the process died are due again too (they were not recorded as attempts).
      if (owner === null) {
        this.db.prepare("UPDATE endpoint SET verification_leased_by = NULL, verification_lease_until = NULL WHERE verification_state = 'pending' AND verification_leased_by IS NOT NULL").run();
      }
      return released;
    });
  }

  /** The earliest due time over enabled endpoints: one index seek per endpoint with pending work, whatever the backlog. */
  async overview(since: number, until: number): Promise<OverviewStats> {
    // One count per minute over an id range reads the primary-key index only (a covering scan, no row lookups);
    // grouping by created_at would read every row of the window.
    const count = this.db.prepare('SELECT count(*) AS n FROM message WHERE id >= ? AND id < ?').pluck();
    const messages: { minute: number; count: number }[] = [];
    for (let minute = Math.floor(since / 60_000) * 60_000; minute < until; minute += 60_000) {
      const n = count.get(idFloor(ID_PREFIX.message, Math.max(minute, since)), idFloor(ID_PREFIX.message, Math.min(minute + 60_000, until))) as number;
      if (n > 0) messages.push({ minute, count: n });
    }
    const attempts = this.stmt.attemptsPerMinute.all(idFloor(ID_PREFIX.attempt, since), idFloor(ID_PREFIX.attempt, until)) as { minute: number; count: number; failed: number }[];
    // Held deliveries are pending in the table: counted apart (a seek each) rather than looked up for every pending row.
    const held = this.leases.size === 0 ? 0 : (this.stmt.heldPending.get(JSON.stringify(this.leases.ids())) as number);
    const pending = (this.stmt.pendingCount.get() as number) - held;
    return { messages, attempts, pending, inFlight: this.leases.size };
  }

  async nextDueAt(): Promise<number | null> {
    let earliest: number | null = null;
    let after = '';
    for (;;) {
      const next = (this.stmt.nextPendingEndpoint.get(after) as { id: string | null }).id;
      if (next === null) return earliest;
      after = next;
      let row = this.stmt.dueOfEnabled.get(next) as { id: number; due: number } | undefined;
      if (row && this.leases.has(row.id)) {
        const rows = this.stmt.dueOfEnabledPastHeld.all(next, 1 + this.leases.heldOf(next)) as { id: number; due: number }[];
        row = rows.find((r) => !this.leases.has(r.id));
      }
      if (row && (earliest === null || row.due < earliest)) earliest = row.due;
    }
  }

  async stats(now: number): Promise<PipelineStats> {
    const backlog = (
      this.leases.size === 0 ? this.stmt.backlog.get({ now }) : this.stmt.backlogWithoutHeld.get({ now, held: JSON.stringify(this.leases.ids()) })
    ) as { pending: number; due: number; oldest: number | null };
    const inFlight = this.leases.size;
    const e = this.stmt.endpointStates.get({ now }) as { closed: number | null; open: number | null; half_open: number | null; disabled: number | null };
    return {
      pending: backlog.pending,
      due: backlog.due,
      inFlight,
      oldestDueAt: backlog.oldest,
      endpoints: { closed: e.closed ?? 0, open: e.open ?? 0, halfOpen: e.half_open ?? 0, disabled: e.disabled ?? 0 },
    };
  }

  /**
   * One pass of retention, within `limit` messages: a quarter of it for the messages held back by unfinished deliveries
   * (expunged once those have ended; many of them cannot stall the rest), the rest for the walk by id onward from where
   * it stopped (a message id begins with its creation time).
   */
  async prune(before: number, limit: number): Promise<PruneResult> {
    const floor = idFloor(ID_PREFIX.message, before);
    let heldCursor = this.heldCursor;
    const result = this.db.transaction(() => {
      const heldBudget = Math.ceil(limit / 4);
      const held = (this.stmt.heldForRetention.all(heldCursor, floor, heldBudget) as { message_id: string }[]).map((row) => row.message_id);
      let payloads = 0;
      if (held.length > 0) {
        payloads += this.stmt.expunge.run(JSON.stringify(held)).changes;
        this.stmt.releaseHeld.run(JSON.stringify(held));
        heldCursor = held[held.length - 1];
      }
      const heldDone = held.length < heldBudget;
      // Reached the end of the held ones: the next pass looks at them all again, for deliveries that ended since.
      if (heldDone) heldCursor = '';

      let { message_id: cursor } = this.stmt.retentionCursor.get() as { message_id: string };
      // Past the floor: the clock went back, or the retention period grew. What lies above it is walked again once it
      // is old enough (a message made after a clock step back can have an id below where the walk had got to).
      if (floor < cursor) this.stmt.moveRetentionCursor.run((cursor = floor));
      const room = limit - held.length;
      const rows = room > 0 ? (this.stmt.retentionWalk.all(cursor, floor, room) as { id: string; has_payload: number }[]) : [];
      if (rows.length > 0) {
        const candidates = JSON.stringify(rows.filter((row) => row.has_payload).map((row) => row.id));
        payloads += this.stmt.expunge.run(candidates).changes;
        this.stmt.hold.run(candidates);
        this.stmt.moveRetentionCursor.run(rows[rows.length - 1].id);
      }
      const walked = rows.length < room;

      const attempts = this.stmt.pruneAttempts.run(idFloor(ID_PREFIX.attempt, before), limit).changes;
      const keys =
        this.db.prepare('DELETE FROM idempotency_key WHERE rowid IN (SELECT rowid FROM idempotency_key WHERE expires_at < ? LIMIT ?)').run(before, limit).changes +
        this.db.prepare('DELETE FROM idempotent_response WHERE rowid IN (SELECT rowid FROM idempotent_response WHERE expires_at < ? LIMIT ?)').run(before, limit).changes;
      return { payloads, attempts, idempotencyKeys: keys, done: heldDone && walked && attempts < limit && keys < limit };
    })();
    // Only once the pass has committed: a pass rolled back looks at the same held messages again.
    this.heldCursor = heldCursor;
    return result;
  }

  async getIdempotentResponse(scope: string, key: string, now: number): Promise<StoredResponse | null> {
    const row = this.db.prepare('SELECT status, body FROM idempotent_response WHERE scope = ? AND key = ? AND expires_at > ?').get(scope, key, now) as
      | StoredResponse
      | undefined;
    return row ?? null;
  }

  async putIdempotentResponse(scope: string, key: string, response: StoredResponse, expiresAt: number): Promise<void> {
    this.db
      .prepare(
        'INSERT INTO idempotent_response (scope, key, status, body, expires_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (scope, key) DO UPDATE SET status = excluded.status, body = excluded.body, expires_at = excluded.expires_at',
      )
      .run(scope, key, response.status, response.body, expiresAt);
  }

  storageProblem(): string | null {
    return this.problems.current;
  }

  async close(): Promise<void> {
    if (this.fileWatch) clearInterval(this.fileWatch);
    this.commits.flush();
    // The last batch's callers are answered once its sync is done; the connection closes after it.
    await this.walSync?.close();
    await this.checkpoints?.close();
    this.closeDatabase();
  }

  // ---- helpers ----------------------------------------------------------------------------------

  private pageOf<T>(select: string, params: unknown[], key: string, page: PageRequest, map: (row: any) => T, keyOf: (item: T) => string): Page<T> {
    const query = cursorQuery(page);
    let sql = select;
    const all = [...params];
    if (query.after !== null) {
      sql += ` AND ${key} ${query.ascending ? '>' : '<'} ?`;
      all.push(query.after);
    }
    sql += ` ORDER BY ${key} ${query.ascending ? 'ASC' : 'DESC'} LIMIT ?`;
    all.push(query.fetch);
    const rows = this.db.prepare(sql).all(...all).map(map);
    return toPage(rows, page, query, keyOf);
  }
}

const HEALTH_COLUMNS = ['failure_streak', 'failing_since', 'parked_streak', 'circuit_open_until', 'circuit_trips', 'next_send_at'];
const VERIFICATION_COLUMNS = ['verification_mode', 'verification_state', 'verification_attempts', 'verification_last_at', 'verification_next_at', 'verification_reason'];

/** An update writes the handshake's columns only when the input carries a new verification (`@vSet`), and then ends any lease on it. */
const SET_VERIFICATION = [
  ...Object.entries({ mode: '@vMode', state: '@vState', attempts: '@vAttempts', last_at: '@vLastAt', next_at: '@vNextAt', reason: '@vReason' }).map(
    ([column, param]) => `verification_${column} = CASE WHEN @vSet = 1 THEN ${param} ELSE verification_${column} END`,
  ),
  'verification_leased_by = CASE WHEN @vSet = 1 THEN NULL ELSE verification_leased_by END',
  'verification_lease_until = CASE WHEN @vSet = 1 THEN NULL ELSE verification_lease_until END',
].join(', ');

function verificationParams(v: EndpointVerification | undefined) {
  const value = v ?? NO_VERIFICATION;
  return {
    vSet: v ? 1 : 0,
    vMode: value.mode,
    vState: value.state,
    vAttempts: value.attempts,
    vLastAt: value.lastAttemptAt,
    vNextAt: value.nextAttemptAt,
    vReason: value.reason,
  };
}

/** Per endpoint from the pending index alone (`filter` narrows its rows), then one endpoint row per endpoint with a backlog. */
function backlogStatement(db: Database.Database, filter: string) {
  return db.prepare(
    `SELECT coalesce(sum(p.n), 0) AS pending, coalesce(sum(CASE WHEN e.disabled = 0 AND e.verification_state = 'verified' THEN p.due END), 0) AS due,
            min(CASE WHEN e.disabled = 0 AND e.verification_state = 'verified' AND p.due > 0 THEN p.oldest END) AS oldest
     FROM (SELECT endpoint_id, count(*) AS n, sum(next_attempt_at <= @now) AS due, min(next_attempt_at) AS oldest
           FROM delivery WHERE status = 'pending' ${filter} GROUP BY endpoint_id) p
     JOIN endpoint e ON e.id = p.endpoint_id`,
  );
}

/** Due, and not held by an open circuit or the rate limit (a claim reserves slots one look-ahead early); the LIMIT follows. */
const DUE_OF_ENABLED = `SELECT d.id, max(d.next_attempt_at, coalesce(e.circuit_open_until, 0), coalesce(e.next_send_at, 0) - ${RATE_LOOKAHEAD_MS}) AS due
  FROM delivery d JOIN endpoint e ON e.id = d.endpoint_id
  WHERE d.status = 'pending' AND d.endpoint_id = ? AND e.disabled = 0 AND e.verification_state = 'verified' ORDER BY d.next_attempt_at`;

const DELIVERY_VIEW = `SELECT d.*, ${prefixed('m', 'message', ['id', 'app_id', 'event_type', 'event_id', 'payload', 'content_type', 'channels', 'tags', 'created_at', 'ordering_key'])},
  ${prefixed('e', 'endpoint', ['id', 'app_id', 'uid', 'url', 'description', 'version', 'filter_types', 'channels', 'headers', 'disabled', 'disabled_reason', 'rate_limit', 'ordering', 'ordering_on_park', 'max_in_flight', 'metadata', 'secrets', 'destination', 'created_at', 'updated_at', ...HEALTH_COLUMNS, ...VERIFICATION_COLUMNS])},
  (SELECT max(a.started_at) FROM attempt a WHERE a.delivery_id = d.id) AS last_attempt_at
  FROM delivery d JOIN message m ON m.id = d.message_id JOIN endpoint e ON e.id = d.endpoint_id`;

/** Re-enabling an endpoint starts its health afresh: counts, failing period and circuit. */
function resetHealthOnEnable(enabling: string): string {
  const when = `${enabling} AND disabled = 1`;
  return `failure_streak = CASE WHEN ${when} THEN 0 ELSE failure_streak END, failing_since = CASE WHEN ${when} THEN NULL ELSE failing_since END,
    parked_streak = CASE WHEN ${when} THEN 0 ELSE parked_streak END, circuit_open_until = CASE WHEN ${when} THEN NULL ELSE circuit_open_until END,
    circuit_trips = CASE WHEN ${when} THEN 0 ELSE circuit_trips END`;
}

function prefixed(alias: string, prefix: string, columns: string[]): string {
  return columns.map((c) => `${alias}.${c} AS ${prefix}_${c}`).join(', ');
}

function toDeliveryView(row: any): DeliveryView {
  return {
    delivery: toDelivery(row),
    message: toMessage(unprefix(row, 'message_')),
    endpoint: toEndpoint(unprefix(row, 'endpoint_')),
    lastAttemptAt: row.last_attempt_at,
  };
}

function messageFilterSql(filter: MessageFilter, alias: string): { sql: string; params: unknown[] } {
  let sql = '';
  const params: unknown[] = [];
  if (filter.eventTypes?.length) {
    sql += ` AND ${alias}.event_type IN (SELECT value FROM json_each(?))`;
    params.push(JSON.stringify(filter.eventTypes));
  }
  if (filter.channel !== undefined) {
    sql += ` AND EXISTS (SELECT 1 FROM json_each(${alias}.channels) WHERE value = ?)`;
    params.push(filter.channel);
  }
  if (filter.tag !== undefined) {
    sql += ` AND EXISTS (SELECT 1 FROM json_each(${alias}.tags) WHERE value = ?)`;
    params.push(filter.tag);
  }
  // Message ids begin with their creation time, so a time bound is also an id bound: the scan starts and stops at it.
  if (filter.before !== undefined) {
    sql += ` AND ${alias}.created_at < ? AND ${alias}.id < ?`;
    params.push(filter.before, idFloor(ID_PREFIX.message, filter.before));
  }
  if (filter.after !== undefined) {
    sql += ` AND ${alias}.created_at > ? AND ${alias}.id >= ?`;
    params.push(filter.after, idFloor(ID_PREFIX.message, filter.after + 1));
  }
  return { sql, params };
}
