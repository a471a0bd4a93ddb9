import pg from 'pg';
import { endpointMatches } from '../../domain/filter.js';
import { ID_PREFIX, newId } from '../../domain/ids.js';
import type { Message } from '../../domain/types.js';
import type { AcceptInput, AcceptResult } from '../store.js';
import { isUnavailable, translate } from './errors.js';
import { checkout, type Client } from './pool.js';
import { json, toMessage } from './rows.js';

const { escapeIdentifier, escapeLiteral } = pg;

interface Pending {
  input: AcceptInput;
  resolve: (result: AcceptResult) => void;
  reject: (error: unknown) => void;
}

type Outcome = { ok: true; value: AcceptResult } | { ok: false; error: unknown };

export interface AcceptBatcherOptions {
  /** Accepts per transaction. 12 parameters per message keeps a batch far below PostgreSQL's 65,535. */
  maxBatch: number;
  /** Payload bytes per transaction, so a burst of large bodies does not become one giant statement. */
  maxBatchBytes: number;
  /** Transactions in flight at once: one commits while the next batch gathers. */
  maxConcurrent: number;
  /** Sent in the transaction (delivered on commit) when the batch created deliveries. */
  notify: { channel: string; payload: string } | null;
}

/**
 * Group commit for PostgreSQL: accepts queued during one event-loop turn share one transaction, one commit and
 * one NOTIFY. The batch is written with a handful of set-based statements; if any of them fails, the batch is
 * rolled back to a savepoint and replayed one accept per savepoint, so a bad accept rejects only its own caller.
 * A failed commit rejects every caller of the batch — nothing is acknowledged that was not committed.
 */
export class AcceptBatcher {
  private queue: Pending[] = [];
  private scheduled = false;
  private running = 0;
  private idle: (() => void)[] = [];

  constructor(
    private readonly pool: pg.Pool,
    private readonly options: AcceptBatcherOptions,
  ) {}

  run(input: AcceptInput): Promise<AcceptResult> {
    return new Promise((resolve, reject) => {
      this.queue.push({ input, resolve, reject });
      this.schedule();
    });
  }

  /** Resolves once every queued accept has been settled. */
  drain(): Promise<void> {
    if (this.queue.length === 0 && this.running === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  private schedule(): void {
    if (this.scheduled || this.running >= this.options.maxConcurrent || this.queue.length === 0) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.flush();
    });
  }

  private take(): Pending[] {
    let bytes = 0;
    let n = 0;
    while (n < this.queue.length && n < this.options.maxBatch) {
      bytes += this.queue[n].input.payload.byteLength;
      n++;
      if (bytes >= this.options.maxBatchBytes) break;
    }
    return this.queue.splice(0, n);
  }

  private async flush(): Promise<void> {
    const batch = this.take();
    if (batch.length === 0) return;
    this.running++;
    this.schedule();
    try {
      await this.commit(batch);
    } finally {
      this.running--;
      this.schedule();
      if (this.queue.length === 0 && this.running === 0) for (const resolve of this.idle.splice(0)) resolve();
    }
  }

  private async commit(batch: Pending[]): Promise<void> {
    let connection: Awaited<ReturnType<typeof checkout>>;
    try {
      connection = await checkout(this.pool);
    } catch (error) {
      for (const item of batch) item.reject(translate(error));
      return;
    }
    const { client } = connection;
    let broken = false;
    try {
      await client.query('BEGIN; SAVEPOINT batch');
      const outcomes = await this.write(client, batch.map((item) => item.input));
      const created = outcomes.some((o) => o.ok && o.value.kind === 'accepted' && o.value.deliveries > 0);
      // NOTIFY is delivered on commit, and only then; one statement with the commit saves a round trip.
      const notify = this.options.notify;
      await client.query(notify && created ? `NOTIFY ${escapeIdentifier(notify.channel)}, ${escapeLiteral(notify.payload)}; COMMIT` : 'COMMIT');
      batch.forEach((item, i) => {
        const outcome = outcomes[i];
        if (outcome.ok) item.resolve(outcome.value);
        else item.reject(translate(outcome.error));
      });
    } catch (error) {
      await client.query('ROLLBACK').catch(() => (broken = true));
      for (const item of batch) item.reject(translate(error));
    } finally {
      connection.release(broken);
    }
  }

  /** Runs after `SAVEPOINT batch`. */
  private async write(client: Client, inputs: AcceptInput[]): Promise<Outcome[]> {
    try {
      return (await acceptAll(client, inputs)).map((value) => ({ ok: true, value }));
    } catch (error) {
      if (isUnavailable(error)) throw error;
      await client.query('ROLLBACK TO SAVEPOINT batch');
      if (inputs.length === 1) return [{ ok: false, error }];
    }
    const outcomes: Outcome[] = [];
    for (const input of inputs) {
      await client.query('SAVEPOINT one');
      try {
        const [value] = await acceptAll(client, [input]);
        await client.query('RELEASE SAVEPOINT one');
        outcomes.push({ ok: true, value });
      } catch (error) {
        if (isUnavailable(error)) throw error;
        await client.query('ROLLBACK TO SAVEPOINT one');
        outcomes.push({ ok: false, error });
      }
    }
    return outcomes;
  }
}

/**
 * Accepts a batch with the result sequential accepts would have had. Accepts that share an idempotency key or an
 * eventId with an earlier one of the batch go into a later round, so each round's accepts are independent.
 */
export async function acceptAll(client: Client, inputs: AcceptInput[]): Promise<AcceptResult[]> {
  const results: AcceptResult[] = new Array(inputs.length);
  for (const round of rounds(inputs)) {
    const done = await acceptRound(client, round.map((i) => inputs[i]));
    round.forEach((i, k) => (results[i] = done[k]));
  }
  return results;
}

function rounds(inputs: AcceptInput[]): number[][] {
  const out: number[][] = [];
  const lastRound = new Map<string, number>();
  inputs.forEach((input, i) => {
    const keys: string[] = [];
    if (input.idempotencyKey !== null) keys.push(`k\0${input.appId}\0${input.idempotencyKey}`);
    if (input.eventId !== null) keys.push(`e\0${input.appId}\0${input.eventId}`);
    const round = Math.max(-1, ...keys.map((k) => lastRound.get(k) ?? -1)) + 1;
    for (const k of keys) lastRound.set(k, round);
    (out[round] ??= []).push(i);
  });
  return out;
}

type EndpointRow = { id: string; app_id: string; filter_types: string[] | null; channels: string[] | null };

/**
 * One round trip for the common case: records the fresh idempotency keys, inserts the messages whose key was fresh
 * (or that have none), and reads the enabled endpoints of the apps for the fan-out. Keys are written in key order
 * and messages in eventId order, so two processes writing overlapping ones queue instead of deadlocking.
 * A conflicting eventId (committed by anyone, or by an earlier round) inserts nothing.
 */
const INSERT_MESSAGES = (rows: string) => `
  WITH input (id, app_id, event_type, event_id, payload, content_type, channels, tags, created_at, source_id, headers, verified, key, key_expires_at) AS (
    VALUES ${rows}
  ), keys AS (
    INSERT INTO idempotency_key (app_id, key, message_id, expires_at)
    SELECT app_id, key, id, key_expires_at FROM input WHERE key IS NOT NULL ORDER BY app_id, key
    ON CONFLICT (app_id, key) DO NOTHING RETURNING message_id
  ), messages AS (
    INSERT INTO message (id, app_id, event_type, event_id, payload, content_type, channels, tags, created_at, source_id, headers, verified)
    SELECT id, app_id, event_type, event_id, payload, content_type, channels, tags, created_at, source_id, headers, verified
    FROM input WHERE key IS NULL OR id IN (SELECT message_id FROM keys) ORDER BY app_id, event_id
    ON CONFLICT (app_id, event_id) WHERE event_id IS NOT NULL DO NOTHING RETURNING id
  )
  SELECT 'key' AS kind, message_id AS id, NULL::text AS app_id, NULL::jsonb AS filter_types, NULL::jsonb AS channels FROM keys
  UNION ALL SELECT 'message', id, NULL, NULL, NULL FROM messages
  UNION ALL SELECT 'endpoint', id, app_id, filter_types, channels FROM endpoint WHERE app_id = ANY($1) AND NOT disabled`;

const CASTS = ['text', 'text', 'text', 'text', 'bytea', 'text', 'jsonb', 'jsonb', 'bigint', 'text', 'jsonb', 'boolean', 'text', 'bigint'];

async function insertMessages(client: Client, inputs: AcceptInput[], ids: string[], which: number[], withKeys: boolean, apps: string[]) {
  const values: unknown[] = [apps];
  const rows = which.map((i) => {
    const input = inputs[i];
    const source = input.source ?? null;
    const key = withKeys ? input.idempotencyKey : null;
    const base = values.length;
    values.push(
      ids[i],
      input.appId,
      input.eventType,
      input.eventId,
      Buffer.from(input.payload.buffer, input.payload.byteOffset, input.payload.byteLength),
      input.contentType,
      json(input.channels),
      json(input.tags),
      input.now,
      source?.id ?? null,
      json(source?.headers),
      source === null ? null : source.verified,
      key,
      key === null ? null : input.now + input.idempotencyTtlMs,
    );
    return `(${CASTS.map((cast, k) => `$${base + k + 1}::${cast}`).join(', ')})`;
  });
  const result = await client.query<{ kind: 'key' | 'message' | 'endpoint' } & EndpointRow>(INSERT_MESSAGES(rows.join(', ')), values);
  const freshKeys = new Set<string>();
  const inserted = new Set<string>();
  const endpoints: EndpointRow[] = [];
  for (const row of result.rows) {
    if (row.kind === 'key') freshKeys.add(row.id);
    else if (row.kind === 'message') inserted.add(row.id);
    else endpoints.push(row);
  }
  return { freshKeys, inserted, endpoints };
}

async function acceptRound(client: Client, inputs: AcceptInput[]): Promise<AcceptResult[]> {
  const results: (AcceptResult | undefined)[] = new Array(inputs.length);
  const ids = inputs.map((input) => newId(ID_PREFIX.message, input.now));
  const all = inputs.map((_, i) => i);
  const apps = [...new Set(inputs.map((input) => input.appId))];

  const first = await insertMessages(client, inputs, ids, all, true, apps);
  const inserted = first.inserted;
  // Keys that already had a row: a duplicate, or an expired key this accept takes over (its message goes in now).
  const seen = all.filter((i) => inputs[i].idempotencyKey !== null && !first.freshKeys.has(ids[i]));
  if (seen.length > 0) {
    const takeOver = await resolveSeenKeys(client, inputs, ids, seen, results);
    if (takeOver.length > 0) for (const id of (await insertMessages(client, inputs, ids, takeOver, false, [])).inserted) inserted.add(id);
  }

  const conflicted = all.filter((i) => results[i] === undefined && !inserted.has(ids[i]));
  for (const i of conflicted) results[i] = { kind: 'event_id_conflict', eventId: inputs[i].eventId! };
  // A conflicting accept records no idempotency key (as if its savepoint had been rolled back).
  const keyed = conflicted.filter((i) => inputs[i].idempotencyKey !== null);
  if (keyed.length > 0) {
    await client.query(
      `DELETE FROM idempotency_key k USING unnest($1::text[], $2::text[], $3::text[]) AS t(a, k, m)
       WHERE k.app_id = t.a AND k.key = t.k AND k.message_id = t.m`,
      [keyed.map((i) => inputs[i].appId), keyed.map((i) => inputs[i].idempotencyKey), keyed.map((i) => ids[i])],
    );
  }

  // Fan-out: one delivery per enabled endpoint whose filter matches, inserted in accept order (the FIFO order).
  const byApp = new Map<string, EndpointRow[]>();
  for (const row of first.endpoints) byApp.set(row.app_id, [...(byApp.get(row.app_id) ?? []), row]);
  const counts = new Map<number, number>();
  const columns: [string[], string[], string[], number[], number[]] = [[], [], [], [], []];
  for (const i of all.filter((i) => inserted.has(ids[i]))) {
    const input = inputs[i];
    let n = 0;
    for (const row of byApp.get(input.appId) ?? []) {
      if (!endpointMatches({ filterTypes: row.filter_types, channels: row.channels, disabled: false }, input.eventType, input.channels)) continue;
      columns[0].push(ids[i]);
      columns[1].push(input.appId);
      columns[2].push(row.id);
      columns[3].push(input.dueAt);
      columns[4].push(input.now);
      n++;
    }
    counts.set(i, n);
  }
  if (columns[0].length > 0) {
    await client.query(
      `INSERT INTO delivery (message_id, app_id, endpoint_id, status, next_attempt_at, created_at, updated_at)
       SELECT m, a, e, 'pending', d, c, c FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[]) WITH ORDINALITY AS t(m, a, e, d, c, n)
       ORDER BY n`,
      columns,
    );
  }

  return inputs.map((input, i) => {
    if (results[i]) return results[i]!;
    const source = input.source ?? null;
    const message: Message = {
      id: ids[i],
      appId: input.appId,
      eventType: input.eventType,
      eventId: input.eventId,
      payload: input.payload,
      contentType: input.contentType,
      channels: input.channels,
      tags: input.tags,
      createdAt: input.now,
      sourceId: source?.id ?? null,
      headers: source?.headers ?? null,
      verified: source?.verified ?? null,
    };
    return { kind: 'accepted', message, deliveries: counts.get(i) ?? 0 };
  });
}

/**
 * Keys that already had a row: a live key whose message exists makes the accept a duplicate of that message;
 * an expired one (or one whose message is gone) is taken over by this accept (returned, for its message to be
 * inserted). The rows are locked, so two processes taking over the same expired key serialise.
 */
async function resolveSeenKeys(client: Client, inputs: AcceptInput[], ids: string[], seen: number[], results: (AcceptResult | undefined)[]): Promise<number[]> {
  const existing = await client.query<{ app_id: string; key: string; message_id: string; expires_at: number }>(
    `SELECT k.app_id, k.key, k.message_id, k.expires_at FROM idempotency_key k
     JOIN unnest($1::text[], $2::text[]) AS t(a, k) ON k.app_id = t.a AND k.key = t.k
     ORDER BY k.app_id, k.key FOR UPDATE OF k`,
    [seen.map((i) => inputs[i].appId), seen.map((i) => inputs[i].idempotencyKey)],
  );
  const rowOf = new Map(existing.rows.map((r) => [`${r.app_id}\0${r.key}`, r]));
  const live = seen.filter((i) => {
    const row = rowOf.get(`${inputs[i].appId}\0${inputs[i].idempotencyKey}`);
    return row !== undefined && row.expires_at > inputs[i].now;
  });
  const originals = new Map<string, Message>();
  if (live.length > 0) {
    const messageIds = live.map((i) => rowOf.get(`${inputs[i].appId}\0${inputs[i].idempotencyKey}`)!.message_id);
    const found = await client.query('SELECT * FROM message WHERE id = ANY($1)', [messageIds]);
    for (const row of found.rows) originals.set(row.id, toMessage(row));
  }
  const takeOver: number[] = [];
  for (const i of seen) {
    const row = rowOf.get(`${inputs[i].appId}\0${inputs[i].idempotencyKey}`);
    const original = row && row.expires_at > inputs[i].now ? originals.get(row.message_id) : undefined;
    if (original && original.appId === inputs[i].appId) results[i] = { kind: 'duplicate', message: original };
    else takeOver.push(i);
  }
  if (takeOver.length > 0) {
    await client.query(
      `INSERT INTO idempotency_key (app_id, key, message_id, expires_at)
       SELECT a, k, m, e FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[]) WITH ORDINALITY AS t(a, k, m, e, n) ORDER BY n
       ON CONFLICT (app_id, key) DO UPDATE SET message_id = excluded.message_id, expires_at = excluded.expires_at`,
      [
        takeOver.map((i) => inputs[i].appId),
        takeOver.map((i) => inputs[i].idempotencyKey),
        takeOver.map((i) => ids[i]),
        takeOver.map((i) => inputs[i].now + inputs[i].idempotencyTtlMs),
      ],
    );
  }
  return takeOver;
}
