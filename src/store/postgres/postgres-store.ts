import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import { conflict, notFound } from '../../domain/errors.js';
import { DEFAULT_HEALTH_POLICY, failingReason, parkedReason, summarizeHealth, type HealthChange, type HealthPolicy } from '../../domain/health.js';
import { ID_PREFIX, idFloor, newId } from '../../domain/ids.js';
import { RATE_LOOKAHEAD_MS } from '../../domain/rate.js';
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
import { AcceptBatcher } from './accept.js';
import { claimDue } from './claim.js';
import { isForeignKeyViolation, isUniqueViolation, translate } from './errors.js';
import { migrate, type MigrationReport } from './migrate.js';
import { Liveness } from './liveness.js';
import { QueueStatistics } from './queue-statistics.js';
import { Lookup } from './lookup.js';
import { Notifier } from './notifier.js';
import { createPool, Params, transaction, warm, type Client } from './pool.js';
import { json, toApiKey, toApp, toAttempt, toDelivery, toEndpoint, toEventType, toMessage, toSource, unprefix } from './rows.js';

export interface PostgresStoreOptions {
  url: string;
  /** Pooled connections of this process. @default 10 */
  poolSize?: number;
  /** Where connection problems of idle connections are reported (they are also retried). */
  onError?: (error: Error) => void;
}

/** Idempotency keys of provider deliveries (the same keys as before `dedupeWindowMs`, so an upgrade keeps deduping). */
const INBOUND_KEY_PREFIX = 'inbound:';

/** The channel accepts, resends and recovers notify on; every hookrelay process on the database listens. */
export const WAKE_CHANNEL = 'hookrelay_wake';

/** Connections opened at start and kept when idle: the accept batch, a claim, outcome batches and the API's reads. */
const WARM_CONNECTIONS = 4;

/**
 * The shared store: any number of hookrelay processes on one PostgreSQL database. Accepts are group-committed,
 * claims lock endpoints so caps and FIFO hold across processes, and a NOTIFY after each commit that creates due
 * work wakes the other processes' dispatchers. Transient database failures surface as `unavailable` (HTTP 503).
 */
export class PostgresStore implements Store {
  readonly kind = 'postgres';
  readonly exclusive = false;
  private readonly pool: pg.Pool;
  private readonly accepts: AcceptBatcher;
  private readonly notifier: Notifier;
  private readonly liveness: Liveness;
  private readonly statistics: QueueStatistics;
  private readonly onError: (error: Error) => void;
  private readonly apps: Lookup<App>;
  private readonly sourcesByToken: Lookup<Source>;
  private readonly apiKeys: Lookup<ApiKey>;
  /** Tags this process's notifications, so that it does not wake itself twice. */
  private readonly instance = randomBytes(8).toString('hex');
  private readonly claimCursor = { endpointId: '' };
  private readonly pruneCursor = { createdAt: -1, id: '' };
  private closed = false;
  /** What opening the store did to the schema. */
  migration: MigrationReport = { applied: [], current: 0 };

  private constructor(options: PostgresStoreOptions) {
    const onError = options.onError ?? (() => undefined);
    const poolSize = options.poolSize ?? 10;
    this.pool = createPool(options.url, { max: poolSize, min: Math.min(WARM_CONNECTIONS, poolSize), onError });
    this.accepts = new AcceptBatcher(this.pool, { maxBatch: 1000, maxBatchBytes: 8 * 1024 * 1024, notify: { channel: WAKE_CHANNEL, payload: this.instance } });
    this.notifier = new Notifier({ url: options.url, channel: WAKE_CHANNEL, self: this.instance, onError });
    this.onError = onError;
    this.liveness = new Liveness({
      url: options.url,
      pool: this.pool,
      onError,
      onReleased: () => {
        this.notifier.poke();
        void this.notify();
      },
    });
    this.statistics = new QueueStatistics({ pool: this.pool, onError });
    // An id match wins over a uid match, as in a lookup of its own.
    this.apps = new Lookup(
      async (keys) => (await this.query({ name: 'hookrelay-apps', text: 'SELECT * FROM app WHERE id = ANY($1) OR uid = ANY($1)' }, [keys])).rows.map(toApp),
      (key, apps) => apps.find((a) => a.id === key) ?? apps.find((a) => a.uid === key) ?? null,
    );
    this.sourcesByToken = new Lookup(
      async (tokens) => (await this.query('SELECT * FROM source WHERE token = ANY($1)', [tokens])).rows.map(toSource),
      (token, sources) => sources.find((s) => s.token === token) ?? null,
    );
    this.apiKeys = new Lookup(
      async (ids) => (await this.query('SELECT * FROM api_key WHERE id = ANY($1)', [ids])).rows.map(toApiKey),
      (id, keys) => keys.find((k) => k.id === id) ?? null,
    );
  }

  /** Connects and brings the schema up to date (under an advisory lock, so concurrent starts are safe). */
  static async open(options: PostgresStoreOptions): Promise<PostgresStore> {
    const store = new PostgresStore(options);
    try {
      store.migration = await migrate(store.pool);
      await warm(store.pool, WARM_CONNECTIONS);
      store.statistics.start();
    } catch (error) {
      await store.pool.end().catch(() => undefined);
      throw error;
    }
    return store;
  }

  // ---- apps ---------------------------------------------------------------------------------

  async listApps(page: PageRequest): Promise<Page<App>> {
    return this.pageOf('SELECT * FROM app WHERE true', new Params(), 'id', page, toApp, (a) => a.id);
  }

  async createApp(input: AppInput, now: number): Promise<App> {
    const id = newId(ID_PREFIX.app, now);
    try {
      await this.query('INSERT INTO app (id, uid, name, rate_limit, metadata, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6)', [
        id,
        input.uid,
        input.name,
        input.rateLimit,
        json(input.metadata),
        now,
      ]);
    } catch (error) {
      if (isUniqueViolation(error)) throw conflict(`an application with uid ${JSON.stringify(input.uid)} already exists`);
      throw error;
    }
    return (await this.getApp(id))!;
  }

  getApp(idOrUid: string): Promise<App | null> {
    return this.apps.get(idOrUid);
  }

  async updateApp(id: string, input: AppInput, now: number): Promise<App> {
    try {
      const result = await this.query('UPDATE app SET uid = $1, name = $2, rate_limit = $3, metadata = $4, updated_at = $5 WHERE id = $6', [
        input.uid,
        input.name,
        input.rateLimit,
        json(input.metadata),
        now,
        id,
      ]);
      if (result.rowCount === 0) throw notFound('application', id);
    } catch (error) {
      if (isUniqueViolation(error)) throw conflict(`an application with uid ${JSON.stringify(input.uid)} already exists`);
      throw error;
    }
    return (await this.getApp(id))!;
  }

  async deleteApp(id: string): Promise<void> {
    await this.query('DELETE FROM app WHERE id = $1', [id]);
  }

  // ---- event types ----------------------------------------------------------------------------

  async listEventTypes(page: PageRequest, includeArchived: boolean): Promise<Page<EventType>> {
    const select = includeArchived ? 'SELECT * FROM event_type WHERE true' : 'SELECT * FROM event_type WHERE NOT archived';
    return this.pageOf(select, new Params(), 'name', { order: 'ascending', ...page }, toEventType, (e) => e.name);
  }

  /** Creates the event type, or revives an archived one of that name; one statement, so two processes cannot both create it. */
  async createEventType(input: EventTypeInput, now: number): Promise<EventType> {
    const row = await this.upsertEventType(input, now, 'WHERE event_type.archived');
    if (!row) throw conflict(`an event type named ${JSON.stringify(input.name)} already exists`);
    return row;
  }

  async getEventType(name: string): Promise<EventType | null> {
    const row = await this.one('SELECT * FROM event_type WHERE name = $1', [name]);
    return row ? toEventType(row) : null;
  }

  async updateEventType(input: EventTypeInput, now: number): Promise<EventType> {
    return (await this.upsertEventType(input, now, ''))!;
  }

  private async upsertEventType(input: EventTypeInput, now: number, onlyIf: string): Promise<EventType | null> {
    const row = await this.one(
      `INSERT INTO event_type (name, description, archived, deprecated, feature_flag, group_name, schemas, created_at, updated_at, validate_payloads)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9)
       ON CONFLICT (name) DO UPDATE SET description = excluded.description, archived = excluded.archived, deprecated = excluded.deprecated,
         feature_flag = excluded.feature_flag, group_name = excluded.group_name, schemas = excluded.schemas,
         validate_payloads = excluded.validate_payloads, updated_at = excluded.updated_at
       ${onlyIf}
       RETURNING *`,
      [input.name, input.description, input.archived, input.deprecated, input.featureFlag, input.groupName, json(input.schemas), now, input.validatePayloads],
    );
    return row ? toEventType(row) : null;
  }

  async deleteEventType(name: string): Promise<void> {
    await this.query('DELETE FROM event_type WHERE name = $1', [name]);
  }

  // ---- endpoints ------------------------------------------------------------------------------

  async listEndpoints(appId: string, page: PageRequest): Promise<Page<Endpoint>> {
    const params = new Params();
    return this.pageOf(`SELECT * FROM endpoint WHERE app_id = ${params.add(appId)}`, params, 'id', page, toEndpoint, (e) => e.id);
  }

  async createEndpoint(appId: string, input: EndpointInput, secret: string, now: number): Promise<Endpoint> {
    const id = newId(ID_PREFIX.endpoint, now);
    const p = this.endpointParams(input);
    try {
      await this.query(
        `INSERT INTO endpoint (id, app_id, uid, url, description, version, filter_types, channels, headers, disabled, rate_limit, ordering, max_in_flight, metadata, destination, filter, transformation, ordering_on_park, secrets, created_at, updated_at,
           verification_mode, verification_state, verification_attempts, verification_last_at, verification_next_at, verification_reason)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $20, $21, $22, $23, $24, $25, $26)`,
        [id, appId, ...p, json([{ key: secret, expiresAt: null }]), now, ...verificationParams(input.verification).slice(1)],
      );
    } catch (error) {
      if (isUniqueViolation(error)) throw conflict(`an endpoint with uid ${JSON.stringify(input.uid)} already exists in this application`);
      throw error;
    }
    return (await this.getEndpoint(appId, id))!;
  }

  async getEndpoint(appId: string, idOrUid: string): Promise<Endpoint | null> {
    const row = await this.one('SELECT * FROM endpoint WHERE app_id = $1 AND (id = $2 OR uid = $2) ORDER BY id = $2 DESC LIMIT 1', [appId, idOrUid]);
    return row ? toEndpoint(row) : null;
  }

  async updateEndpoint(appId: string, id: string, input: EndpointInput, now: number): Promise<Endpoint> {
    try {
      await this.tx(async (client) => {
        const becomesKeyed = input.ordering === 'key' && (await client.query("SELECT 1 FROM endpoint WHERE app_id = $1 AND id = $2 AND ordering <> 'key'", [appId, id])).rowCount! > 0;
        // Becoming `ordering: 'key'`: no delivery may be inserted (accept, resend, replay) between the switch and keying
        // the unfinished ones, or it would be written under the old ordering, without a key, and never claimed. A
        // table lock for the few milliseconds of a rare change; self-exclusive, so two switches cannot deadlock.
        if (becomesKeyed) await client.query('LOCK TABLE delivery IN SHARE ROW EXCLUSIVE MODE');
        const result = await client.query(
          `UPDATE endpoint SET uid = $3, url = $4, description = $5, version = $6, filter_types = $7, channels = $8, headers = $9, disabled = $10,
             disabled_reason = CASE WHEN $10 THEN disabled_reason ELSE NULL END, ${resetHealthOnEnable('NOT $10')},
             rate_limit = $11, ordering = $12, max_in_flight = $13, metadata = $14, destination = $15, filter = $16, transformation = $17,
             ordering_on_park = $18, updated_at = $19,
             ${SET_VERIFICATION}
           WHERE app_id = $1 AND id = $2`,
          [appId, id, ...this.endpointParams(input), now, ...verificationParams(input.verification)],
        );
        if (result.rowCount === 0) throw notFound('endpoint', id);
        if (input.ordering === 'key') {
          await client.query(
            `UPDATE delivery d SET ordering_key = coalesce(m.ordering_key, m.id) FROM message m
             WHERE d.endpoint_id = $1 AND d.ordering_key IS NULL AND d.status IN ('pending', 'in_flight', 'failed') AND m.id = d.message_id`,
            [id],
          );
        }
      });
    } catch (error) {
      if (isUniqueViolation(error)) throw conflict(`an endpoint with uid ${JSON.stringify(input.uid)} already exists in this application`);
      throw error;
    }
    if (!input.disabled) await this.notify();
    return (await this.getEndpoint(appId, id))!;
  }

  async deleteEndpoint(appId: string, id: string): Promise<void> {
    await this.query('DELETE FROM endpoint WHERE app_id = $1 AND id = $2', [appId, id]);
  }

  async rotateEndpointSecret(appId: string, id: string, secret: string, previousExpiresAt: number, now: number): Promise<Endpoint> {
    // Read and write under the row lock, so two rotations at once cannot drop each other's secret.
    const row = await this.tx(async (client) => {
      const current = (await client.query('SELECT * FROM endpoint WHERE app_id = $1 AND (id = $2 OR uid = $2) ORDER BY id = $2 DESC LIMIT 1 FOR UPDATE', [appId, id])).rows[0];
      if (!current) throw notFound('endpoint', id);
      const kept = toEndpoint(current)
        .secrets.map((s) => (s.expiresAt === null ? { key: s.key, expiresAt: previousExpiresAt } : s))
        .filter((s) => s.expiresAt! > now);
      const secrets = [{ key: secret, expiresAt: null }, ...kept];
      return (await client.query('UPDATE endpoint SET secrets = $1, updated_at = $2 WHERE id = $3 RETURNING *', [json(secrets), now, current.id])).rows[0];
    });
    return toEndpoint(row);
  }

  async addEndpointEncryptionKey(appId: string, id: string, key: EncryptionKey, max: number, now: number): Promise<'added' | 'duplicate' | 'full'> {
    // Under the row lock, so two keys added at once by different processes are both counted and kept.
    return this.tx(async (client) => {
      const row = (await client.query('SELECT id, encryption_keys FROM endpoint WHERE app_id = $1 AND id = $2 FOR UPDATE', [appId, id])).rows[0];
      if (!row) throw notFound('endpoint', id);
      const keys = row.encryption_keys as EncryptionKey[];
      if (keys.some((k) => k.kid === key.kid)) return 'duplicate';
      if (keys.length >= max) return 'full';
      await client.query('UPDATE endpoint SET encryption_keys = $1, updated_at = $2 WHERE id = $3', [json([...keys, key]), now, row.id]);
      return 'added';
    });
  }

  async deleteEndpointEncryptionKey(appId: string, id: string, kid: string, now: number): Promise<boolean> {
    return this.tx(async (client) => {
      const row = (await client.query('SELECT id, encryption_keys FROM endpoint WHERE app_id = $1 AND id = $2 FOR UPDATE', [appId, id])).rows[0];
      if (!row) throw notFound('endpoint', id);
      const keys = row.encryption_keys as EncryptionKey[];
      const kept = keys.filter((k) => k.kid !== kid);
      if (kept.length === keys.length) return false;
      await client.query('UPDATE endpoint SET encryption_keys = $1, updated_at = $2 WHERE id = $3', [json(kept), now, row.id]);
      return true;
    });
  }

  async listDestinationEndpoints(): Promise<Endpoint[]> {
    return (await this.query('SELECT * FROM endpoint WHERE destination IS NOT NULL AND NOT disabled')).rows.map(toEndpoint);
  }

  async setEndpointDisabled(id: string, disabled: boolean, reason: string | null, now: number): Promise<void> {
    await this.query(`UPDATE endpoint SET disabled = $1, disabled_reason = $2, updated_at = $3, ${resetHealthOnEnable('NOT $1')} WHERE id = $4`, [disabled, reason, now, id]);
    // Re-enabled: its waiting deliveries are due now, possibly in another process.
    if (!disabled) await this.notify();
  }

  // ---- registration handshake -------------------------------------------------------------------

  async claimVerifications(owner: string, now: number, leaseUntil: number, limit: number): Promise<Endpoint[]> {
    // SKIP LOCKED: processes polling at once take different endpoints instead of queueing on the same rows; the
    // lease columns keep an endpoint theirs until the attempt's result is written.
    const { rows } = await this.query(
      `UPDATE endpoint SET verification_leased_by = $1, verification_lease_until = $2
       WHERE id IN (SELECT id FROM endpoint WHERE verification_state = 'pending' AND verification_next_at <= $3
                      AND (verification_lease_until IS NULL OR verification_lease_until < $3)
                    ORDER BY verification_next_at LIMIT $4 FOR NO KEY UPDATE SKIP LOCKED)
       RETURNING *`,
      [owner, leaseUntil, now, limit],
    );
    return rows.map(toEndpoint);
  }

  async finishVerification(id: string, owner: string, v: EndpointVerification): Promise<boolean> {
    const result = await this.query(
      `UPDATE endpoint SET verification_state = $3, verification_attempts = $4, verification_last_at = $5, verification_next_at = $6,
         verification_reason = $7, verification_leased_by = NULL, verification_lease_until = NULL
       WHERE id = $1 AND verification_leased_by = $2 AND verification_state = 'pending'`,
      [id, owner, v.state, v.attempts, v.lastAttemptAt, v.nextAttemptAt, v.reason],
    );
    // Verified: its held deliveries are due now, possibly in another process.
    if (result.rowCount === 1 && v.state === 'verified') await this.notify();
    return result.rowCount === 1;
  }

  async nextVerificationAt(): Promise<number | null> {
    const row = await this.one(
      "SELECT min(greatest(verification_next_at, coalesce(verification_lease_until, 0))) AS at FROM endpoint WHERE verification_state = 'pending'",
      [],
    );
    return row?.at ?? null;
  }

  private endpointParams(input: EndpointInput): unknown[] {
    return [
      input.uid,
      input.url,
      input.description,
      input.version,
      json(input.filterTypes),
      json(input.channels),
      json(input.headers),
      input.disabled,
      input.rateLimit,
      input.ordering,
      input.maxInFlight,
      json(input.metadata),
      json(input.destination),
      input.filter === null ? null : JSON.stringify(input.filter),
      input.transformation == null ? null : JSON.stringify(input.transformation),
      input.orderingOnPark ?? 'skip',
    ];
  }

  // ---- sources --------------------------------------------------------------------------------

  async listSources(page: PageRequest): Promise<Page<Source>> {
    return this.pageOf('SELECT * FROM source WHERE true', new Params(), 'id', page, toSource, (s) => s.id);
  }

  async createSource(input: SourceInput, token: string, now: number): Promise<Source> {
    const id = newId(ID_PREFIX.source, now);
    const appId = newId(ID_PREFIX.app, now);
    try {
      await this.tx(async (client) => {
        await client.query('INSERT INTO app (id, uid, name, rate_limit, metadata, created_at, updated_at) VALUES ($1, NULL, $2, NULL, $3, $4, $4)', [
          appId,
          `source ${input.name}`,
          json({ source: id }),
          now,
        ]);
        await client.query(
          'INSERT INTO source (id, app_id, uid, name, type, config, metadata, token, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)',
          [id, appId, input.uid, input.name, input.type, json(input.config), json(input.metadata), token, now],
        );
      });
    } catch (error) {
      if (isUniqueViolation(error)) throw conflict(`a source with uid ${JSON.stringify(input.uid)} already exists`);
      throw error;
    }
    return (await this.getSource(id))!;
  }

  async getSource(idOrUid: string): Promise<Source | null> {
    const row = await this.one('SELECT * FROM source WHERE id = $1 OR uid = $1 ORDER BY id = $1 DESC LIMIT 1', [idOrUid]);
    return row ? toSource(row) : null;
  }

  getSourceByToken(token: string): Promise<Source | null> {
    return this.sourcesByToken.get(token);
  }

  async updateSource(id: string, input: SourceInput, now: number): Promise<Source> {
    try {
      const result = await this.query('UPDATE source SET name = $1, uid = $2, type = $3, config = $4, metadata = $5, updated_at = $6 WHERE id = $7', [
        input.name,
        input.uid,
        input.type,
        json(input.config),
        json(input.metadata),
        now,
        id,
      ]);
      if (result.rowCount === 0) throw notFound('source', id);
    } catch (error) {
      if (isUniqueViolation(error)) throw conflict(`a source with uid ${JSON.stringify(input.uid)} already exists`);
      throw error;
    }
    return (await this.getSource(id))!;
  }

  async setSourceToken(id: string, token: string, now: number): Promise<Source> {
    const row = await this.one('UPDATE source SET token = $1, updated_at = $2 WHERE id = $3 RETURNING *', [token, now, id]);
    if (!row) throw notFound('source', id);
    return toSource(row);
  }

  async deleteSource(id: string): Promise<void> {
    await this.query('DELETE FROM app WHERE id = (SELECT app_id FROM source WHERE id = $1)', [id]);
  }

  // ---- api keys -------------------------------------------------------------------------------

  async createApiKey(key: ApiKey): Promise<ApiKey> {
    try {
      const row = await this.one(
        'INSERT INTO api_key (id, app_id, name, prefix, hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *',
        [key.id, key.appId, key.name, key.prefix, key.hash, key.createdAt, key.expiresAt],
      );
      return toApiKey(row);
    } catch (error) {
      if (isForeignKeyViolation(error)) throw notFound('application', key.appId);
      throw error;
    }
  }

  /** Batched per event-loop turn: authentication asks for keys on the request path. */
  getApiKey(id: string): Promise<ApiKey | null> {
    return this.apiKeys.get(id);
  }

  async listApiKeys(appId: string, page: PageRequest): Promise<Page<ApiKey>> {
    const params = new Params();
    return this.pageOf(`SELECT * FROM api_key WHERE app_id = ${params.add(appId)}`, params, 'id', page, toApiKey, (k) => k.id);
  }

  async deleteApiKey(appId: string, id: string): Promise<boolean> {
    return ((await this.query('DELETE FROM api_key WHERE app_id = $1 AND id = $2', [appId, id])).rowCount ?? 0) > 0;
  }

  // ---- secrets at rest --------------------------------------------------------------------------

  async scanSecrets(kind: SecretRow['kind'], after: string, limit: number): Promise<SecretRow[]> {
    if (kind === 'endpoint') {
      const rows = (await this.query('SELECT id, secrets, destination FROM endpoint WHERE id > $1 ORDER BY id LIMIT $2', [after, limit])).rows;
      return rows.map((r) => ({ kind, id: r.id, secrets: r.secrets, destination: r.destination ?? null }));
    }
    const rows = (await this.query('SELECT id, config FROM source WHERE id > $1 ORDER BY id LIMIT $2', [after, limit])).rows;
    return rows.map((r) => ({ kind, id: r.id, config: r.config }));
  }

  /** Compared as jsonb, so another process's write in between (a rotation, an update) is never overwritten. */
  async rewriteSecrets(changes: { previous: SecretRow; next: SecretRow }[]): Promise<number> {
    if (changes.length === 0) return 0;
    return this.tx(async (client) => {
      let written = 0;
      for (const { previous, next } of changes) {
        if (previous.kind === 'endpoint' && next.kind === 'endpoint') {
          const result = await client.query(
            'UPDATE endpoint SET secrets = $2, destination = $3 WHERE id = $1 AND secrets = $4::jsonb AND destination IS NOT DISTINCT FROM $5::jsonb',
            [previous.id, json(next.secrets), json(next.destination), json(previous.secrets), json(previous.destination)],
          );
          written += result.rowCount ?? 0;
        } else if (previous.kind === 'source' && next.kind === 'source') {
          const result = await client.query('UPDATE source SET config = $2 WHERE id = $1 AND config = $3::jsonb', [previous.id, json(next.config), json(previous.config)]);
          written += result.rowCount ?? 0;
        }
      }
      return written;
    });
  }

  // ---- messages -------------------------------------------------------------------------------

  accept(input: AcceptInput): Promise<AcceptResult> {
    // Processes accept the same redelivery at once: the idempotency key's unique row settles which one stores it.
    if (input.dedupeWindowMs && input.eventId !== null) {
      return this.accepts.run({ ...input, idempotencyKey: `${INBOUND_KEY_PREFIX}${input.eventId}`, idempotencyTtlMs: input.dedupeWindowMs });
    }
    return this.accepts.run(input);
  }

  async listMessages(appId: string, filter: MessageFilter, page: PageRequest): Promise<Page<Message>> {
    const params = new Params();
    const where = `m.app_id = ${params.add(appId)}${messageFilterSql(filter, 'm', params)}`;
    return this.pageOf(`SELECT m.* FROM message m WHERE ${where}`, params, 'm.id', page, toMessage, (m) => m.id);
  }

  async getMessage(appId: string, idOrEventId: string): Promise<Message | null> {
    const row = await this.one('SELECT * FROM message WHERE app_id = $1 AND (id = $2 OR event_id = $2) ORDER BY id = $2 DESC, id DESC LIMIT 1', [appId, idOrEventId]);
    return row ? toMessage(row) : null;
  }

  async expungeMessageContent(appId: string, id: string): Promise<void> {
    await this.query('UPDATE message SET payload = NULL WHERE app_id = $1 AND id = $2', [appId, id]);
  }

  // ---- attempts and deliveries ----------------------------------------------------------------

  async listAttemptsByEndpoint(appId: string, endpointId: string, filter: AttemptFilter, page: PageRequest): Promise<Page<Attempt>> {
    const params = new Params();
    return this.attemptPage(`a.app_id = ${params.add(appId)} AND a.endpoint_id = ${params.add(endpointId)}`, params, filter, page);
  }

  async listAttemptsByMessage(appId: string, messageId: string, filter: AttemptFilter & { endpointId?: string }, page: PageRequest): Promise<Page<Attempt>> {
    const params = new Params();
    let where = `a.app_id = ${params.add(appId)} AND a.message_id = ${params.add(messageId)}`;
    if (filter.endpointId) where += ` AND a.endpoint_id = ${params.add(filter.endpointId)}`;
    return this.attemptPage(where, params, filter, page);
  }

  private attemptPage(where: string, params: Params, filter: AttemptFilter, page: PageRequest): Promise<Page<Attempt>> {
    let sql = `SELECT a.* FROM attempt a JOIN message m ON m.id = a.message_id WHERE ${where}${messageFilterSql(filter, 'm', params)}`;
    if (filter.succeeded !== undefined) sql += ` AND a.succeeded = ${params.add(filter.succeeded)}`;
    return this.pageOf(sql, params, 'a.id', page, toAttempt, (a) => a.id);
  }

  async getAttempt(appId: string, messageId: string, attemptId: string): Promise<Attempt | null> {
    const row = await this.one('SELECT * FROM attempt WHERE app_id = $1 AND message_id = $2 AND id = $3', [appId, messageId, attemptId]);
    return row ? toAttempt(row) : null;
  }

  async listDeliveriesByEndpoint(
    appId: string,
    endpointId: string,
    filter: MessageFilter & { status?: DeliveryView['delivery']['status'] },
    page: PageRequest,
  ): Promise<Page<DeliveryView>> {
    const params = new Params();
    let sql = `${DELIVERY_VIEW} WHERE d.app_id = ${params.add(appId)} AND d.endpoint_id = ${params.add(endpointId)}${messageFilterSql(filter, 'm', params)}`;
    if (filter.status) sql += ` AND d.status = ${params.add(filter.status)}`;
    return this.pageOf(sql, params, 'd.message_id', page, toDeliveryView, (v) => v.message.id);
  }

  async listDeliveriesByMessage(appId: string, messageId: string, page: PageRequest): Promise<Page<DeliveryView>> {
    const params = new Params();
    const sql = `${DELIVERY_VIEW} WHERE d.app_id = ${params.add(appId)} AND d.message_id = ${params.add(messageId)}`;
    return this.pageOf(sql, params, 'd.endpoint_id', { order: 'ascending', ...page }, toDeliveryView, (v) => v.endpoint.id);
  }

  async resend(appId: string, messageId: string, endpointId: string, now: number): Promise<void> {
    await this.query(
      `INSERT INTO delivery (message_id, app_id, endpoint_id, status, next_attempt_at, manual, created_at, updated_at, ordering_key)
       VALUES ($1, $2, $3, 'pending', $4, true, $4, $4,
         CASE WHEN (SELECT ordering FROM endpoint WHERE id = $3) = 'key' THEN coalesce((SELECT ordering_key FROM message WHERE id = $1), $1) END)
       ON CONFLICT (message_id, endpoint_id) DO UPDATE SET
         status = CASE WHEN delivery.status = 'in_flight' THEN delivery.status ELSE 'pending' END,
         next_attempt_at = CASE WHEN delivery.status = 'in_flight' THEN delivery.next_attempt_at ELSE excluded.next_attempt_at END,
         retry_index = CASE WHEN delivery.status = 'in_flight' THEN delivery.retry_index ELSE 0 END,
         manual = true, updated_at = excluded.updated_at, ordering_key = coalesce(delivery.ordering_key, excluded.ordering_key)`,
      [messageId, appId, endpointId, now],
    );
    await this.notify();
  }

  async recover(appId: string, endpointId: string, since: number, until: number, now: number): Promise<number> {
    const result = await this.query(
      `UPDATE delivery SET status = 'pending', next_attempt_at = $1, retry_index = 0, manual = true, updated_at = $1
       WHERE app_id = $2 AND endpoint_id = $3 AND status = 'failed'
         AND message_id IN (SELECT id FROM message WHERE app_id = $2 AND created_at >= $4 AND created_at < $5)`,
      [now, appId, endpointId, since, until],
    );
    const recovered = result.rowCount ?? 0;
    if (recovered > 0) await this.notify();
    return recovered;
  }

  async replayMissing(appId: string, endpointId: string, since: number, until: number, now: number): Promise<number> {
    // Filters as they are now (the SQL form of endpointMatches); a disabled endpoint gets its deliveries too, sent once enabled.
    const result = await this.query(
      `INSERT INTO delivery (message_id, app_id, endpoint_id, status, next_attempt_at, manual, created_at, updated_at, ordering_key)
       SELECT m.id, m.app_id, e.id, 'pending', $5, true, $5, $5, CASE WHEN e.ordering = 'key' THEN coalesce(m.ordering_key, m.id) END
       FROM message m JOIN endpoint e ON e.app_id = m.app_id AND e.id = $2
       WHERE m.app_id = $1 AND m.created_at >= $3 AND m.created_at < $4 AND m.payload IS NOT NULL
         AND (e.filter_types IS NULL OR e.filter_types ? m.event_type)
         AND (e.channels IS NULL OR (m.channels IS NOT NULL AND e.channels ?| ARRAY(SELECT jsonb_array_elements_text(m.channels))))
       ORDER BY m.id
       ON CONFLICT (message_id, endpoint_id) DO NOTHING`,
      [appId, endpointId, since, until, now],
    );
    const replayed = result.rowCount ?? 0;
    if (replayed > 0) await this.notify();
    return replayed;
  }

  async endpointStats(appId: string, endpointId: string, range: { since?: number; until?: number }): Promise<Record<DeliveryStatus, number>> {
    const result = await this.query<{ status: DeliveryStatus; n: string }>(
      'SELECT status, count(*) AS n FROM delivery WHERE app_id = $1 AND endpoint_id = $2 AND created_at >= $3 AND created_at < $4 GROUP BY status',
      [appId, endpointId, range.since ?? 0, range.until ?? Number.MAX_SAFE_INTEGER],
    );
    const stats: Record<DeliveryStatus, number> = { pending: 0, in_flight: 0, succeeded: 0, failed: 0 };
    for (const row of result.rows) stats[row.status] = Number(row.n);
    return stats;
  }

  async expungeAttemptContent(appId: string, messageId: string, attemptId: string): Promise<boolean> {
    const result = await this.query("UPDATE attempt SET response_body = '', sent_request = NULL WHERE app_id = $1 AND message_id = $2 AND id = $3", [appId, messageId, attemptId]);
    return (result.rowCount ?? 0) > 0;
  }

  // ---- dispatcher -----------------------------------------------------------------------------

  async claim(request: ClaimRequest): Promise<ClaimedDelivery[]> {
    // Without a registration the leases still expire; the next claim tries again.
    await this.liveness.register(request.owner).catch(this.onError);
    try {
      return await claimDue(this.pool, request, this.claimCursor);
    } catch (error) {
      throw translate(error);
    }
  }

  /**
   * One statement for the batch (one round trip, one commit): the attempts, the state changes fenced on the lease,
   * the attempt count of deliveries whose lease was lost (the new owner keeps the state), and the health of the
   * batch's endpoints (circuit breaker, auto-disable, 410 Gone) by the rule of domain/health.ts.
   */
  async complete(outcomes: AttemptOutcome[], policy: HealthPolicy = DEFAULT_HEALTH_POLICY): Promise<HealthChange[]> {
    if (outcomes.length === 0) return [];
    const input = outcomes.map(({ owner, attempt: a, next }) => ({
      id: a.id,
      delivery_id: a.deliveryId,
      message_id: a.messageId,
      endpoint_id: a.endpointId,
      app_id: a.appId,
      url: a.url,
      started_at: a.startedAt,
      duration_ms: a.durationMs,
      status_code: a.statusCode,
      succeeded: a.succeeded,
      response_body: a.responseBody,
      error: a.error,
      trigger: a.trigger,
      owner,
      status: next.kind === 'succeeded' ? 'succeeded' : next.kind === 'retry' ? 'pending' : 'failed',
      retry_index: next.kind === 'retry' ? next.retryIndex : 0,
      next_at: next.kind === 'retry' ? next.at : null,
      finished_at: a.startedAt + a.durationMs,
      sent_request: a.request,
    }));
    const reports = summarizeHealth(outcomes).map((r) => ({
      endpoint_id: r.endpointId,
      succeeded: r.succeeded,
      failures: r.failures,
      first_failure_at: r.firstFailureAt,
      parked: r.parked,
      gone: r.gone,
      at: r.at,
    }));
    const changed = await this.query({ name: 'hookrelay-complete', text: COMPLETE }, [
      withoutNul(JSON.stringify(input)),
      withoutNul(JSON.stringify(reports)),
      policy.threshold,
      policy.cooldownMs,
      policy.maxCooldownMs,
      policy.disableAfterMs,
      policy.disableAfterParked,
      failingReason(policy),
      parkedReason(policy),
    ]);
    return changed.rows.map((r) => ({
      endpointId: r.endpoint_id,
      appId: r.app_id,
      opened: r.opened,
      closed: r.closed,
      disabled: r.disabled,
      consecutiveFailures: r.streak,
      openUntil: r.open_until,
    }));
  }

  async renewLeases(owner: string, deliveryIds: number[], until: number): Promise<void> {
    if (deliveryIds.length === 0) return;
    await this.query("UPDATE delivery SET lease_until = $1 WHERE id = ANY($2) AND status = 'in_flight' AND leased_by = $3", [until, deliveryIds, owner]);
  }

  async releaseLeases(owner: string | null): Promise<number> {
    const sql = "UPDATE delivery SET status = 'pending', leased_by = NULL, lease_until = NULL WHERE status = 'in_flight'";
    if (owner === null) await this.query("UPDATE endpoint SET verification_leased_by = NULL, verification_lease_until = NULL WHERE verification_state = 'pending' AND verification_leased_by IS NOT NULL");
    const result = owner === null ? await this.query(sql) : await this.query(`${sql} AND leased_by = $1`, [owner]);
    const released = result.rowCount ?? 0;
    if (released > 0) await this.notify();
    if (owner !== null) await this.liveness.unregister(owner);
    return released;
  }

  /**
   * The earliest due time over enabled endpoints, counting circuit cool-downs and rate-limit slots: one index seek
   * per endpoint with pending work (a loose index scan), whatever the backlog.
   */
  async overview(since: number, until: number): Promise<OverviewStats> {
    const number = (rows: Record<string, unknown>[]) => rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, Number(v)])));
    const messages = await this.query(
      'SELECT created_at / 60000 * 60000 AS minute, count(*) AS count FROM message WHERE id >= $1 AND id < $2 GROUP BY 1 ORDER BY 1',
      [idFloor(ID_PREFIX.message, since), idFloor(ID_PREFIX.message, until)],
    );
    const attempts = await this.query(
      'SELECT started_at / 60000 * 60000 AS minute, count(*) AS count, count(*) FILTER (WHERE NOT succeeded) AS failed FROM attempt WHERE id >= $1 AND id < $2 GROUP BY 1 ORDER BY 1',
      [idFloor(ID_PREFIX.attempt, since), idFloor(ID_PREFIX.attempt, until)],
    );
    const queue = await this.one(
      "SELECT (SELECT count(*) FROM delivery WHERE status = 'pending') AS pending, (SELECT count(*) FROM delivery WHERE status = 'in_flight') AS in_flight",
    );
    return {
      messages: number(messages.rows) as OverviewStats['messages'],
      attempts: number(attempts.rows) as OverviewStats['attempts'],
      pending: Number(queue.pending),
      inFlight: Number(queue.in_flight),
    };
  }

  async nextDueAt(): Promise<number | null> {
    const row = await this.one(NEXT_DUE);
    return row ? row.due : null;
  }

  async stats(now: number): Promise<PipelineStats> {
    const row = await this.one(STATS, [now]);
    return {
      pending: row.pending,
      due: row.due,
      inFlight: row.in_flight,
      oldestDueAt: row.oldest,
      endpoints: { closed: row.closed, open: row.open, halfOpen: row.half_open, disabled: row.disabled },
    };
  }

  onWake(listener: () => void): () => void {
    return this.notifier.add(listener);
  }

  // ---- retention ------------------------------------------------------------------------------

  async prune(before: number, limit: number): Promise<PruneResult> {
    const cursor = this.pruneCursor;
    const candidates = await this.query<{ id: string; created_at: number }>(
      `SELECT id, created_at FROM message WHERE payload IS NOT NULL AND created_at < $1 AND (created_at, id) > ($2, $3)
       ORDER BY created_at, id LIMIT $4`,
      [before, cursor.createdAt, cursor.id, limit],
    );
    let payloads = 0;
    if (candidates.rows.length > 0) {
      const last = candidates.rows[candidates.rows.length - 1];
      const pruned = await this.query(
        `UPDATE message m SET payload = NULL WHERE m.id = ANY($1) AND m.payload IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM delivery d WHERE d.message_id = m.id AND d.status IN ('pending', 'in_flight'))`,
        [candidates.rows.map((r) => r.id)],
      );
      payloads = pruned.rowCount ?? 0;
      Object.assign(cursor, { createdAt: last.created_at, id: last.id });
    }
    // Reached the end: the next pass starts over, picking up messages whose deliveries have finished since.
    const scanned = candidates.rows.length < limit;
    if (scanned) Object.assign(cursor, { createdAt: -1, id: '' });
    const attempts =
      (
        await this.query(
          // An attempt's id begins with its start time: the ids below this floor started before `before`.
          'DELETE FROM attempt WHERE id IN (SELECT id FROM attempt WHERE id < $1 ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED)',
          [idFloor(ID_PREFIX.attempt, before), limit],
        )
      ).rowCount ?? 0;
    const keys =
      ((await this.query('DELETE FROM idempotency_key WHERE ctid = ANY (ARRAY(SELECT ctid FROM idempotency_key WHERE expires_at < $1 LIMIT $2))', [before, limit])).rowCount ?? 0) +
      ((await this.query('DELETE FROM idempotent_response WHERE ctid = ANY (ARRAY(SELECT ctid FROM idempotent_response WHERE expires_at < $1 LIMIT $2))', [before, limit]))
        .rowCount ?? 0);
    return { payloads, attempts, idempotencyKeys: keys, done: scanned && attempts < limit && keys < limit };
  }

  // ---- idempotent responses -------------------------------------------------------------------

  async getIdempotentResponse(scope: string, key: string, now: number): Promise<StoredResponse | null> {
    const row = await this.one('SELECT status, body FROM idempotent_response WHERE scope = $1 AND key = $2 AND expires_at > $3', [scope, key, now]);
    return row ? { status: row.status, body: row.body } : null;
  }

  async putIdempotentResponse(scope: string, key: string, response: StoredResponse, expiresAt: number): Promise<void> {
    await this.query(
      `INSERT INTO idempotent_response (scope, key, status, body, expires_at) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (scope, key) DO UPDATE SET status = excluded.status, body = excluded.body, expires_at = excluded.expires_at`,
      [scope, key, response.status, response.body, expiresAt],
    );
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.accepts.drain();
    await this.statistics.stop();
    await this.liveness.close();
    await this.notifier.close();
    await this.pool.end();
  }

  // ---- helpers ----------------------------------------------------------------------------------

  /** Tells every process's dispatcher that work may be due; a hint only, so a failure to send it is ignored. */
  private async notify(): Promise<void> {
    await this.pool.query('SELECT pg_notify($1, $2)', [WAKE_CHANNEL, this.instance]).catch(() => undefined);
  }

  /** `sql` with a name is a prepared statement: parsed and planned once per connection (the hot paths). */
  private async query<R extends pg.QueryResultRow = any>(sql: string | { name: string; text: string }, params: unknown[] = []): Promise<pg.QueryResult<R>> {
    try {
      return await this.pool.query<R>(typeof sql === 'string' ? { text: sql, values: params } : { ...sql, values: params });
    } catch (error) {
      throw translate(error);
    }
  }

  private async one(sql: string, params: unknown[] = []): Promise<any> {
    return (await this.query(sql, params)).rows[0] ?? null;
  }

  private async tx<T>(work: (client: Client) => Promise<T>): Promise<T> {
    try {
      return await transaction(this.pool, work);
    } catch (error) {
      throw translate(error);
    }
  }

  private async pageOf<T>(select: string, params: Params, key: string, page: PageRequest, map: (row: any) => T, keyOf: (item: T) => string): Promise<Page<T>> {
    const query = cursorQuery(page);
    let sql = select;
    if (query.after !== null) sql += ` AND ${key} ${query.ascending ? '>' : '<'} ${params.add(query.after)}`;
    sql += ` ORDER BY ${key} ${query.ascending ? 'ASC' : 'DESC'} LIMIT ${params.add(query.fetch)}`;
    const rows = (await this.query(sql, params.values)).rows.map(map);
    return toPage(rows, page, query, keyOf);
  }
}

/**
 * PostgreSQL text cannot hold U+0000, which a receiver's response body may (a binary answer): in JSON text it is the
 * escape `\u0000` (after an even number of backslashes, or it is the text of an escaped backslash), and becomes U+FFFD.
 * Without this, one such answer failed its whole batch of outcomes, and every retry of it again.
 */
export const withoutNul = (json: string): string => (json.includes('\\u0000') ? json.replace(/(?<!\\)((?:\\\\)*)\\u0000/g, '$1\\ufffd') : json);

// $1: the batch's outcomes as one JSON array of objects (one parameter, serialised by V8 in one pass; node-postgres
// would escape every element of 19 array parameters); $2: one health report per endpoint of the batch (domain/health.ts
// summarizeHealth); $3–$9: the policy. An attempt's sent request is nested JSON, kept as text exactly as serialised.
// The rule is nextHealth's; healthy endpoints whose attempts all succeeded are neither locked nor written.
export const COMPLETE = `
  WITH input AS (
    SELECT * FROM json_to_recordset($1::json)
      AS t(id text, delivery_id bigint, message_id text, endpoint_id text, app_id text, url text, started_at bigint, duration_ms int, status_code int, succeeded bool,
        response_body text, error text, trigger text, owner text, status text, retry_index int, next_at bigint, finished_at bigint, sent_request text)
  ), attempts AS (
    INSERT INTO attempt (id, delivery_id, message_id, endpoint_id, app_id, url, started_at, duration_ms, status_code, succeeded, response_body, error, trigger, sent_request)
    SELECT id, delivery_id, message_id, endpoint_id, app_id, url, started_at, duration_ms, status_code, succeeded, response_body, error, trigger, sent_request FROM input
  ), moved AS (
    UPDATE delivery d SET status = t.status, attempt_count = d.attempt_count + 1, retry_index = t.retry_index, next_attempt_at = t.next_at,
      manual = false, leased_by = NULL, lease_until = NULL, updated_at = t.finished_at
    -- The status test is wrapped so that it cannot select delivery_in_flight, which the planner, told by statistics of
    -- quieter times that few deliveries are in flight, read whole (every process's leases) to join it with the batch.
    FROM input t WHERE d.id = t.delivery_id AND d.leased_by = t.owner AND coalesce(d.status = 'in_flight', false)
    RETURNING d.id
  ), lost AS (
    -- The outcomes that moved nothing are picked from the input first: a test on d.id would look up (and walk the
    -- dead versions of) every delivery the batch has just moved, to find it in \`moved\`.
    UPDATE delivery d SET attempt_count = d.attempt_count + 1, updated_at = t.finished_at
    FROM input t WHERE t.delivery_id NOT IN (SELECT id FROM moved) AND d.id = t.delivery_id
  ), report AS (
    SELECT * FROM json_to_recordset($2::json) AS r(endpoint_id text, succeeded bool, failures int, first_failure_at bigint, parked int, gone text, at bigint)
  ), current AS (
    -- Locked in id order, so that batches of several processes touching the same endpoints cannot deadlock.
    SELECT e.id, e.app_id, e.disabled, e.failure_streak, e.failing_since, e.parked_streak, e.circuit_open_until, e.circuit_trips
    FROM endpoint e JOIN report r ON r.endpoint_id = e.id
    WHERE r.failures > 0 OR r.gone IS NOT NULL OR e.failure_streak > 0 OR e.failing_since IS NOT NULL OR e.parked_streak > 0 OR e.circuit_open_until IS NOT NULL
    ORDER BY e.id FOR NO KEY UPDATE OF e
  ), counted AS (
    SELECT c.id, c.app_id, c.disabled, c.circuit_open_until AS was_open_until, r.succeeded, r.failures, r.gone, r.at,
      CASE WHEN r.succeeded THEN r.failures ELSE c.failure_streak + r.failures END AS streak,
      CASE WHEN r.succeeded THEN r.first_failure_at ELSE coalesce(c.failing_since, r.first_failure_at) END AS since,
      CASE WHEN r.succeeded THEN r.parked ELSE c.parked_streak + r.parked END AS parked,
      CASE WHEN r.succeeded THEN NULL ELSE c.circuit_open_until END AS open_until,
      CASE WHEN r.succeeded THEN 0 ELSE c.circuit_trips END AS trips
    FROM current c JOIN report r ON r.endpoint_id = c.id
  ), decided AS (
    SELECT k.*, ($3::int > 0 AND k.failures > 0 AND k.streak >= $3::int AND (k.open_until IS NULL OR k.open_until <= k.at)) AS trip FROM counted k
  ), stepped AS (
    SELECT d.*,
      CASE WHEN d.trip THEN d.at + least($5::bigint, $4::bigint * (1::bigint << least(d.trips, 30))) ELSE d.open_until END AS new_open_until,
      CASE WHEN d.trip THEN d.trips + 1 ELSE d.trips END AS new_trips,
      CASE
        WHEN d.disabled THEN NULL
        WHEN d.gone IS NOT NULL THEN d.gone
        WHEN $6::bigint > 0 AND d.since IS NOT NULL AND d.at - d.since >= $6::bigint THEN $8::text
        WHEN $7::int > 0 AND d.parked >= $7::int THEN $9::text
      END AS disable
    FROM decided d
  ), written AS (
    UPDATE endpoint e SET failure_streak = s.streak, failing_since = s.since, parked_streak = s.parked, circuit_open_until = s.new_open_until,
      circuit_trips = s.new_trips, disabled = e.disabled OR s.disable IS NOT NULL, disabled_reason = coalesce(s.disable, e.disabled_reason),
      updated_at = CASE WHEN s.disable IS NULL THEN e.updated_at ELSE s.at END
    FROM stepped s WHERE e.id = s.id
  )
  SELECT id AS endpoint_id, app_id, trip AS opened, (was_open_until IS NOT NULL AND succeeded AND NOT trip) AS closed, disable AS disabled,
    streak, new_open_until AS open_until
  FROM stepped WHERE trip OR (was_open_until IS NOT NULL AND succeeded) OR disable IS NOT NULL`;

const NEXT_DUE = `
  WITH RECURSIVE walk (endpoint_id) AS (
    SELECT min(endpoint_id) FROM delivery WHERE status = 'pending'
    UNION ALL
    SELECT (SELECT min(d.endpoint_id) FROM delivery d WHERE d.status = 'pending' AND d.endpoint_id > walk.endpoint_id) FROM walk WHERE walk.endpoint_id IS NOT NULL
  )
  SELECT min(greatest(d.due, coalesce(e.circuit_open_until, 0), coalesce(e.next_send_at, 0) - ${RATE_LOOKAHEAD_MS})) AS due
  FROM walk JOIN endpoint e ON e.id = walk.endpoint_id AND NOT e.disabled AND e.verification_state = 'verified'
  CROSS JOIN LATERAL (SELECT next_attempt_at AS due FROM delivery WHERE status = 'pending' AND endpoint_id = e.id ORDER BY next_attempt_at LIMIT 1) d`;

/** The gauges of `GET /metrics`: per endpoint from the pending index, the in-flight index, one pass over endpoints. */
const STATS = `
  WITH backlog AS (
    SELECT endpoint_id, count(*) AS n, count(*) FILTER (WHERE next_attempt_at <= $1) AS due, min(next_attempt_at) AS oldest
    FROM delivery WHERE status = 'pending' GROUP BY endpoint_id
  )
  SELECT
    (SELECT coalesce(sum(b.n), 0)::int FROM backlog b) AS pending,
    (SELECT coalesce(sum(b.due), 0)::int FROM backlog b JOIN endpoint e ON e.id = b.endpoint_id AND NOT e.disabled AND e.verification_state = 'verified') AS due,
    (SELECT min(b.oldest) FROM backlog b JOIN endpoint e ON e.id = b.endpoint_id AND NOT e.disabled AND e.verification_state = 'verified' WHERE b.due > 0) AS oldest,
    (SELECT count(*)::int FROM delivery WHERE status = 'in_flight') AS in_flight,
    e.closed, e.open, e.half_open, e.disabled
  FROM (
    SELECT count(*) FILTER (WHERE NOT disabled AND circuit_open_until IS NULL)::int AS closed,
           count(*) FILTER (WHERE NOT disabled AND circuit_open_until > $1)::int AS open,
           count(*) FILTER (WHERE NOT disabled AND circuit_open_until <= $1)::int AS half_open,
           count(*) FILTER (WHERE disabled)::int AS disabled
    FROM endpoint
  ) e`;

/** Re-enabling an endpoint starts its health afresh: counts, failing period and circuit. */
function resetHealthOnEnable(enabling: string): string {
  const when = `${enabling} AND disabled`;
  return `failure_streak = CASE WHEN ${when} THEN 0 ELSE failure_streak END, failing_since = CASE WHEN ${when} THEN NULL ELSE failing_since END,
    parked_streak = CASE WHEN ${when} THEN 0 ELSE parked_streak END, circuit_open_until = CASE WHEN ${when} THEN NULL ELSE circuit_open_until END,
    circuit_trips = CASE WHEN ${when} THEN 0 ELSE circuit_trips END`;
}

const MESSAGE_COLUMNS = ['id', 'app_id', 'event_type', 'event_id', 'payload', 'content_type', 'channels', 'tags', 'created_at', 'source_id', 'headers', 'verified', 'trace_context', 'ordering_key'];
const ENDPOINT_COLUMNS = ['id', 'app_id', 'uid', 'url', 'description', 'version', 'filter_types', 'channels', 'headers', 'disabled', 'disabled_reason', 'rate_limit', 'ordering', 'ordering_on_park', 'max_in_flight', 'metadata', 'secrets', 'encryption_keys', 'destination', 'created_at', 'updated_at',
  'failure_streak', 'failing_since', 'parked_streak', 'circuit_open_until', 'circuit_trips', 'next_send_at',
  'verification_mode', 'verification_state', 'verification_attempts', 'verification_last_at', 'verification_next_at', 'verification_reason'];

/** An update writes the handshake's columns only when the input carries a new verification ($20), and then ends any lease on it. */
const SET_VERIFICATION = [
  ...['mode', 'state', 'attempts', 'last_at', 'next_at', 'reason'].map((column, i) => `verification_${column} = CASE WHEN $20 THEN $${21 + i} ELSE verification_${column} END`),
  'verification_leased_by = CASE WHEN $20 THEN NULL ELSE verification_leased_by END',
  'verification_lease_until = CASE WHEN $20 THEN NULL ELSE verification_lease_until END',
].join(', ');

/** Whether to write them (an update's $20; left out on create), then mode, state, attempts, last and next attempt, reason. */
function verificationParams(v: EndpointVerification | undefined): unknown[] {
  const value = v ?? NO_VERIFICATION;
  return [v !== undefined, value.mode, value.state, value.attempts, value.lastAttemptAt, value.nextAttemptAt, value.reason];
}

const DELIVERY_VIEW = `SELECT d.*, ${MESSAGE_COLUMNS.map((c) => `m.${c} AS "m:${c}"`).join(', ')}, ${ENDPOINT_COLUMNS.map((c) => `e.${c} AS "e:${c}"`).join(', ')},
  (SELECT max(a.started_at) FROM attempt a WHERE a.delivery_id = d.id) AS last_attempt_at
  FROM delivery d JOIN message m ON m.id = d.message_id JOIN endpoint e ON e.id = d.endpoint_id`;

function toDeliveryView(row: any): DeliveryView {
  return {
    delivery: toDelivery(row),
    message: toMessage(unprefix(row, 'm:')),
    endpoint: toEndpoint(unprefix(row, 'e:')),
    lastAttemptAt: row.last_attempt_at,
  };
}

function messageFilterSql(filter: MessageFilter, alias: string, params: Params): string {
  let sql = '';
  if (filter.eventTypes?.length) sql += ` AND ${alias}.event_type = ANY(${params.add(filter.eventTypes)})`;
  if (filter.channel !== undefined) sql += ` AND ${alias}.channels @> jsonb_build_array(${params.add(filter.channel)}::text)`;
  if (filter.tag !== undefined) sql += ` AND ${alias}.tags @> jsonb_build_array(${params.add(filter.tag)}::text)`;
  // Message ids begin with their creation time, so a time bound is also an id bound: the scan starts and stops at it.
  if (filter.before !== undefined) {
    sql += ` AND ${alias}.created_at < ${params.add(filter.before)} AND ${alias}.id < ${params.add(idFloor(ID_PREFIX.message, filter.before))}`;
  }
  if (filter.after !== undefined) {
    sql += ` AND ${alias}.created_at > ${params.add(filter.after)} AND ${alias}.id >= ${params.add(idFloor(ID_PREFIX.message, filter.after + 1))}`;
  }
  return sql;
}
