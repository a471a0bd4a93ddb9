import type pg from 'pg';
import { HookrelayError } from '../../domain/errors.js';
import { ID_PREFIX, newId } from '../../domain/ids.js';
import type { Message } from '../../domain/types.js';
import type { AcceptInput, AcceptResult } from '../store.js';
import { isUnavailable, translate } from './errors.js';
import { checkout, inTransaction, type Client } from './pool.js';
import { FilteredEndpoints } from './filtered-endpoints.js';
import { json, toMessage } from './rows.js';

interface Pending {
  input: AcceptInput;
  resolve: (result: AcceptResult) => void;
  reject: (error: unknown) => void;
}

type Outcome = { ok: true; value: AcceptResult } | { ok: false; error: unknown };

export interface AcceptBatcherOptions {
  /** Accepts per statement. */
  maxBatch: number;
  /** Payload bytes per statement, so a burst of large bodies does not become one giant statement. */
  maxBatchBytes: number;
  /** Sent with the commit that created deliveries, for the dispatchers of other processes. */
  notify: { channel: string; payload: string };
}

/**
 * Group commit for PostgreSQL: the accepts queued during one event-loop turn are written by one statement, hence one
 * transaction, one commit and one round trip: idempotency keys, messages, their fan-out and the NOTIFY together.
 * While a batch is being written the next one gathers. If the statement fails, nothing of it was committed, and the
 * accepts are written again one by one, so a bad accept rejects only its own caller. A batch whose commit is not
 * confirmed rejects every caller — nothing is acknowledged that was not committed.
 */
export class AcceptBatcher {
  private queue: Pending[] = [];
  private scheduled = false;
  private running = false;
  private idle: (() => void)[] = [];
  private readonly filtered = new FilteredEndpoints();

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
    if (this.queue.length === 0 && !this.running) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  private schedule(): void {
    if (this.scheduled || this.running || this.queue.length === 0) return;
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
    this.running = true;
    try {
      const outcomes = await this.write(batch.map((item) => item.input));
      batch.forEach((item, i) => {
        const outcome = outcomes[i];
        if (outcome.ok) item.resolve(outcome.value);
        else item.reject(translate(outcome.error));
      });
    } finally {
      this.running = false;
      this.schedule();
      if (this.queue.length === 0) for (const resolve of this.idle.splice(0)) resolve();
    }
  }

  private async write(inputs: AcceptInput[]): Promise<Outcome[]> {
    let connection: Awaited<ReturnType<typeof checkout>>;
    try {
      connection = await checkout(this.pool);
    } catch (error) {
      return inputs.map(() => ({ ok: false, error }));
    }
    let outcomes: Outcome[] = [];
    try {
      outcomes = await acceptAll({ client: connection.client, notify: this.options.notify, filtered: this.filtered }, inputs);
      return outcomes;
    } catch (error) {
      outcomes = inputs.map(() => ({ ok: false, error }));
      return outcomes;
    } finally {
      // A connection that lost the server must not go back to the pool.
      connection.release(outcomes.some((o) => !o.ok && isUnavailable(o.error)));
    }
  }
}

/**
 * Accepts a batch with the results sequential accepts would have had. Accepts that share an idempotency key or an
 * eventId with an earlier one of the batch go into a later round, so the accepts of a round are independent.
 */
/** What writing a batch needs besides its inputs. */
interface Writer {
  client: Client;
  notify: AcceptBatcherOptions['notify'];
  filtered: FilteredEndpoints;
}

async function acceptAll(writer: Writer, inputs: AcceptInput[]): Promise<Outcome[]> {
  const outcomes: Outcome[] = new Array(inputs.length);
  const all = rounds(inputs);
  for (let r = 0; r < all.length; r++) {
    const round = all[r];
    try {
      const done = await acceptRound(writer, round.map((i) => inputs[i]));
      round.forEach((i, k) => (outcomes[i] = done[k]));
      continue;
    } catch (error) {
      // The database is gone: this round and the later ones fail (the earlier ones are committed).
      if (isUnavailable(error)) {
        for (const later of all.slice(r)) for (const i of later) outcomes[i] = { ok: false, error };
        break;
      }
      if (round.length === 1) {
        outcomes[round[0]] = { ok: false, error };
        continue;
      }
    }
    // The round's statement failed as a whole (and committed nothing): find the culprit by writing them one by one.
    for (const i of round) {
      try {
        [outcomes[i]] = await acceptRound(writer, [inputs[i]]);
      } catch (error) {
        outcomes[i] = { ok: false, error };
      }
    }
  }
  return outcomes;
}

function rounds(inputs: AcceptInput[]): number[][] {
  const out: number[][] = [];
  const lastRound = new Map<string, number>();
  inputs.forEach((input, i) => {
    const keys: string[] = [];
    if (input.idempotencyKey !== null) keys.push(`k\0${input.appId}\0${input.idempotencyKey}`);
    // Only a client's eventId is unique; a source message's (the provider's delivery id) may repeat.
    if (input.eventId !== null && !input.source) keys.push(`e\0${input.appId}\0${input.eventId}`);
    const round = Math.max(-1, ...keys.map((k) => lastRound.get(k) ?? -1)) + 1;
    for (const k of keys) lastRound.set(k, round);
    (out[round] ??= []).push(i);
  });
  return out;
}

/**
 * One statement (so one transaction) for a round: claims the fresh idempotency keys, inserts the messages whose key
 * was fresh (or that have none), fans each one out to the enabled endpoints of its app whose filter matches — the
 * SQL form of `endpointMatches` (domain/filter.ts), which the conformance suite holds both stores to — in accept
 * order (the FIFO order), and notifies the other processes when that created deliveries.
 * Content filters are matched in the process beforehand (`FilteredEndpoints`): each input carries the versions
 * (`id:updated_at`) of the filtered endpoints it passed, and $3 lists every version evaluated. An app with an enabled
 * filtered endpoint whose version was not evaluated is `stale`: none of its inputs is written (no key, no message),
 * and the caller evaluates them again with fresh filters. So every message is routed by filters as they are at commit.
 * Keys are written in key order and messages in eventId order, so two processes writing overlapping ones queue
 * instead of deadlocking. A key or eventId that already exists (committed by anyone) inserts nothing.
 * The round comes as one array per column, so the text is the same for every round: it is a named statement, planned
 * once per connection (a VALUES list per round size was planned at every round, a fifth of its time in the database).
 * The payloads come as one binary parameter cut by offset and length, so their bytes are neither escaped nor re-encoded.
 */
const INSERT = `
  WITH input AS (
    SELECT t.id, t.app_id, t.event_type, t.event_id, substring($4::bytea FROM t.payload_at FOR t.payload_length) AS payload, t.content_type,
      t.channels, t.tags, t.created_at, t.source_id, t.headers, t.verified, t.key, t.key_expires_at, t.due_at, t.n, t.only_endpoint, t.matched,
      t.trace_context, t.ordering_key
    FROM unnest($5::text[], $6::text[], $7::text[], $8::text[], $9::int[], $10::int[], $11::text[], $12::jsonb[], $13::jsonb[], $14::bigint[],
      $15::text[], $16::jsonb[], $17::boolean[], $18::text[], $19::bigint[], $20::bigint[], $21::text[], $22::jsonb[], $23::text[], $24::text[])
      WITH ORDINALITY AS t(id, app_id, event_type, event_id, payload_at, payload_length, content_type, channels, tags, created_at,
        source_id, headers, verified, key, key_expires_at, due_at, only_endpoint, matched, trace_context, ordering_key, n)
  ), stale AS (
    SELECT DISTINCT e.app_id FROM endpoint e
    WHERE e.app_id IN (SELECT app_id FROM input) AND e.filter IS NOT NULL AND NOT e.disabled AND NOT ((e.id || ':' || e.updated_at) = ANY($3::text[]))
  ), keys AS (
    INSERT INTO idempotency_key (app_id, key, message_id, expires_at)
    SELECT app_id, key, id, key_expires_at FROM input WHERE key IS NOT NULL AND app_id NOT IN (SELECT app_id FROM stale) ORDER BY app_id, key
    ON CONFLICT (app_id, key) DO NOTHING RETURNING message_id
  ), messages AS (
    INSERT INTO message (id, app_id, event_type, event_id, payload, content_type, channels, tags, created_at, source_id, headers, verified, trace_context, ordering_key)
    SELECT id, app_id, event_type, event_id, payload, content_type, channels, tags, created_at, source_id, headers, verified, trace_context, ordering_key
    FROM input WHERE (key IS NULL OR id IN (SELECT message_id FROM keys)) AND app_id NOT IN (SELECT app_id FROM stale) ORDER BY app_id, event_id
    ON CONFLICT (app_id, event_id) WHERE event_id IS NOT NULL AND source_id IS NULL DO NOTHING RETURNING id
  ), deliveries AS (
    INSERT INTO delivery (message_id, app_id, endpoint_id, status, next_attempt_at, created_at, updated_at, ordering_key)
    SELECT i.id, i.app_id, e.id, 'pending', i.due_at, i.created_at, i.created_at, CASE WHEN e.ordering = 'key' THEN coalesce(i.ordering_key, i.id) END
    FROM messages m JOIN input i ON i.id = m.id
    JOIN endpoint e ON e.app_id = i.app_id AND NOT e.disabled
      AND (i.only_endpoint IS NULL OR e.id = i.only_endpoint)
      AND (i.only_endpoint IS NOT NULL OR (
        (e.filter_types IS NULL OR e.filter_types ? i.event_type)
        AND (e.channels IS NULL OR (i.channels IS NOT NULL AND e.channels ?| ARRAY(SELECT jsonb_array_elements_text(i.channels))))
        AND (e.filter IS NULL OR i.matched ? (e.id || ':' || e.updated_at))))
    ORDER BY i.n, e.id
    RETURNING message_id
  )
  SELECT 'key' AS kind, message_id AS id FROM keys
  UNION ALL SELECT 'message', id FROM messages
  UNION ALL SELECT 'delivery', message_id FROM deliveries
  UNION ALL SELECT 'stale', app_id FROM stale
  UNION ALL SELECT 'notified', pg_notify($1, $2)::text FROM (SELECT 1 FROM deliveries LIMIT 1) AS created`;

interface Written {
  freshKeys: Set<string>;
  inserted: Set<string>;
  deliveries: Map<string, number>;
  /** Apps whose inputs were not written because this process's copy of their content filters was out of date. */
  stale: Set<string>;
}

/** One array per column of `input`, a value per accept in the round. */
const COLUMNS = 20;

async function insert({ client, notify, filtered }: Writer, inputs: AcceptInput[], ids: string[], which: number[], withKeys: boolean): Promise<Written> {
  const columns: unknown[][] = Array.from({ length: COLUMNS }, () => new Array(which.length));
  const payloads: Uint8Array[] = new Array(which.length);
  let at = 1;
  which.forEach((i, n) => {
    const input = inputs[i];
    const source = input.source ?? null;
    const key = withKeys ? input.idempotencyKey : null;
    payloads[n] = input.payload;
    const row = [
      ids[i],
      input.appId,
      input.eventType,
      input.eventId,
      at,
      input.payload.byteLength,
      input.contentType,
      json(input.channels),
      json(input.tags),
      input.now,
      source?.id ?? null,
      json(source?.headers),
      source === null ? null : source.verified,
      key,
      key === null ? null : input.now + input.idempotencyTtlMs,
      input.dueAt,
      input.endpointId ?? null,
      JSON.stringify(filtered.matched(input)),
      input.traceContext ?? null,
      input.orderingKey ?? null,
    ];
    for (let c = 0; c < COLUMNS; c++) columns[c][n] = row[c];
    at += input.payload.byteLength;
  });
  const values = [notify.channel, notify.payload, filtered.evaluated(which.map((i) => inputs[i])), Buffer.concat(payloads), ...columns];
  const result = await client.query<{ kind: 'key' | 'message' | 'delivery' | 'notified' | 'stale'; id: string }>({ name: 'hookrelay-accept', text: INSERT, values });
  const written: Written = { freshKeys: new Set(), inserted: new Set(), deliveries: new Map(), stale: new Set() };
  for (const row of result.rows) {
    if (row.kind === 'key') written.freshKeys.add(row.id);
    else if (row.kind === 'message') written.inserted.add(row.id);
    else if (row.kind === 'delivery') written.deliveries.set(row.id, (written.deliveries.get(row.id) ?? 0) + 1);
    else if (row.kind === 'stale') written.stale.add(row.id);
  }
  return written;
}

/** How often a round is written again because filters changed under it, before its accepts fail (retryable). */
const MAX_STALE_RETRIES = 5;

async function acceptRound(writer: Writer, inputs: AcceptInput[], retries = 0): Promise<Outcome[]> {
  const { client } = writer;
  const outcomes: (Outcome | undefined)[] = new Array(inputs.length);
  const ids = inputs.map((input) => newId(ID_PREFIX.message, input.now));
  let all = inputs.map((_, i) => i);
  const written = await insert(writer, inputs, ids, all, true);
  if (written.stale.size > 0) {
    // Nothing of these apps' inputs was written: evaluate them again with the filters as they are now.
    const again = all.filter((i) => written.stale.has(inputs[i].appId));
    all = all.filter((i) => !written.stale.has(inputs[i].appId));
    if (retries >= MAX_STALE_RETRIES) {
      const error = new HookrelayError('unavailable', 'the endpoints of this application kept changing while the message was accepted; retry');
      for (const i of again) outcomes[i] = { ok: false, error };
    } else {
      await writer.filtered.refresh(client, [...written.stale]);
      const done = await acceptRound(writer, again.map((i) => inputs[i]), retries + 1);
      again.forEach((i, k) => (outcomes[i] = done[k]));
    }
  }
  const accepted = (i: number): Outcome => ({ ok: true, value: { kind: 'accepted', message: messageOf(inputs[i], ids[i]), deliveries: written.deliveries.get(ids[i]) ?? 0 } });
  const conflict = (i: number): Outcome => ({ ok: true, value: { kind: 'event_id_conflict', eventId: inputs[i].eventId! } });

  const seen: number[] = [];
  const claimedButConflicting: number[] = [];
  for (const i of all) {
    if (written.inserted.has(ids[i])) outcomes[i] = accepted(i);
    else if (inputs[i].idempotencyKey !== null && !written.freshKeys.has(ids[i])) seen.push(i);
    else {
      outcomes[i] = conflict(i);
      if (inputs[i].idempotencyKey !== null) claimedButConflicting.push(i);
    }
  }
  // A conflicting accept records no idempotency key. Until this runs the key points at a message that does not exist,
  // which any other accept of that key treats as free (as an expired key), so the gap is harmless.
  if (claimedButConflicting.length > 0) await forgetKeys(client, inputs, ids, claimedButConflicting).catch(() => undefined);

  if (seen.length > 0) {
    try {
      const resolved = await inTransaction(client, async () => {
        const outcomesOfSeen = new Map<number, Outcome>();
        const takeOver = await resolveSeenKeys(client, inputs, ids, seen, outcomesOfSeen);
        if (takeOver.length > 0) {
          await writer.filtered.refresh(client, [...new Set(takeOver.map((i) => inputs[i].appId))]);
          const again = await insert(writer, inputs, ids, takeOver, false);
          // Filters changed between the refresh and the insert (a race of microseconds): fail these accepts, retryably.
          if (again.stale.size > 0) throw new HookrelayError('unavailable', 'the endpoints of this application changed while the message was accepted; retry');
          const conflicting = takeOver.filter((i) => !again.inserted.has(ids[i]));
          for (const i of takeOver) {
            outcomesOfSeen.set(
              i,
              again.inserted.has(ids[i]) ? { ok: true, value: { kind: 'accepted', message: messageOf(inputs[i], ids[i]), deliveries: again.deliveries.get(ids[i]) ?? 0 } } : conflict(i),
            );
          }
          if (conflicting.length > 0) await forgetKeys(client, inputs, ids, conflicting);
        }
        return outcomesOfSeen;
      });
      for (const [i, outcome] of resolved) outcomes[i] = outcome;
    } catch (error) {
      for (const i of seen) outcomes[i] = { ok: false, error };
    }
  }
  return outcomes as Outcome[];
}

function messageOf(input: AcceptInput, id: string): Message {
  const source = input.source ?? null;
  return {
    id,
    appId: input.appId,
    eventType: input.eventType,
    eventId: input.eventId,
    payload: input.payload,
    contentType: input.contentType,
    channels: input.channels,
    tags: input.tags,
    orderingKey: input.orderingKey ?? null,
    createdAt: input.now,
    sourceId: source?.id ?? null,
    headers: source?.headers ?? null,
    verified: source?.verified ?? null,
  };
}

async function forgetKeys(client: Client, inputs: AcceptInput[], ids: string[], which: number[]): Promise<void> {
  await client.query(
    `DELETE FROM idempotency_key k USING unnest($1::text[], $2::text[], $3::text[]) AS t(a, k, m)
     WHERE k.app_id = t.a AND k.key = t.k AND k.message_id = t.m`,
    [which.map((i) => inputs[i].appId), which.map((i) => inputs[i].idempotencyKey), which.map((i) => ids[i])],
  );
}

/**
 * Keys that already had a row: a live key whose message exists makes the accept a duplicate of that message;
 * an expired one (or one whose message is gone) is taken over by this accept (returned, for its message to be
 * inserted). The rows are locked, so two processes taking over the same expired key serialise.
 */
async function resolveSeenKeys(client: Client, inputs: AcceptInput[], ids: string[], seen: number[], outcomes: Map<number, Outcome>): Promise<number[]> {
  const existing = await client.query<{ app_id: string; key: string; message_id: string; expires_at: number }>(
    `SELECT k.app_id, k.key, k.message_id, k.expires_at FROM idempotency_key k
     JOIN unnest($1::text[], $2::text[]) AS t(a, k) ON k.app_id = t.a AND k.key = t.k
     ORDER BY k.app_id, k.key FOR UPDATE OF k`,
    [seen.map((i) => inputs[i].appId), seen.map((i) => inputs[i].idempotencyKey)],
  );
  const rowOf = new Map(existing.rows.map((r) => [`${r.app_id}\0${r.key}`, r]));
  const keyRow = (i: number) => rowOf.get(`${inputs[i].appId}\0${inputs[i].idempotencyKey}`);
  const live = seen.filter((i) => (keyRow(i)?.expires_at ?? -Infinity) > inputs[i].now);
  const originals = new Map<string, Message>();
  if (live.length > 0) {
    const found = await client.query('SELECT * FROM message WHERE id = ANY($1)', [live.map((i) => keyRow(i)!.message_id)]);
    for (const row of found.rows) originals.set(row.id, toMessage(row));
  }
  const takeOver: number[] = [];
  for (const i of seen) {
    const row = keyRow(i);
    const original = row && row.expires_at > inputs[i].now ? originals.get(row.message_id) : undefined;
    if (original && original.appId === inputs[i].appId) outcomes.set(i, { ok: true, value: { kind: 'duplicate', message: original } });
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
