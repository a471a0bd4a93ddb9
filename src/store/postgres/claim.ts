import type pg from 'pg';
import { reserveSlots, sendQuota } from '../../domain/rate.js';
import type { ClaimedDelivery, Endpoint } from '../../domain/types.js';
import type { ClaimRequest } from '../store.js';
import { transaction, type Client } from './pool.js';
import { toDelivery, toEndpoint, toMessage, unprefix } from './rows.js';

/** Endpoints examined per round trip of the walk. */
const CHUNK = 64;

/**
 * Returns expired leases (their dispatcher died or stalled) to pending. Rows another transaction holds are skipped,
 * never waited for, so concurrent claimers cannot deadlock on them; a later claim picks them up. It runs at the
 * start of the claim transaction, in the same round trip as BEGIN, hence a literal instead of a parameter.
 */
function expireLeases(now: number): string {
  if (!Number.isSafeInteger(now)) throw new TypeError(`claim: now must be an integer number of ms, not ${now}`);
  return `UPDATE delivery SET status = 'pending', leased_by = NULL, lease_until = NULL
    WHERE id IN (SELECT id FROM delivery WHERE status = 'in_flight' AND lease_until < ${now} FOR NO KEY UPDATE SKIP LOCKED)`;
}

// Loose index scan over delivery_pending: the next `$2` endpoints (by id) after `$1` (and up to `$3`, if given) that
// have a pending delivery, one index seek each, whatever the size of the backlog; each one is locked unless disabled,
// paused by its circuit breaker until after `$4`, or being claimed by another process right now (then `locked` is null
// and the walk moves on).
const WALK_AND_LOCK = `
  WITH RECURSIVE walk (endpoint_id, n) AS (
    SELECT (SELECT min(endpoint_id) FROM delivery WHERE status = 'pending' AND endpoint_id > $1 AND ($3::text IS NULL OR endpoint_id <= $3)), 1
    UNION ALL
    SELECT (SELECT min(d.endpoint_id) FROM delivery d WHERE d.status = 'pending' AND d.endpoint_id > walk.endpoint_id AND ($3::text IS NULL OR d.endpoint_id <= $3)), walk.n + 1
    FROM walk WHERE walk.endpoint_id IS NOT NULL AND walk.n < $2
  )
  SELECT walk.endpoint_id AS walked, e.id AS locked, e.* FROM walk
  LEFT JOIN LATERAL (
    SELECT * FROM endpoint WHERE id = walk.endpoint_id AND NOT disabled AND verification_state = 'verified' AND (circuit_open_until IS NULL OR circuit_open_until <= $4)
    FOR NO KEY UPDATE SKIP LOCKED
  ) e ON true
  WHERE walk.endpoint_id IS NOT NULL ORDER BY walk.n`;

const MESSAGE_COLUMNS = ['id', 'app_id', 'event_type', 'event_id', 'payload', 'content_type', 'channels', 'tags', 'created_at', 'source_id', 'headers', 'verified', 'trace_context', 'ordering_key'];

// For the locked endpoints (their place in the walk `n`, cap, FIFO or not, rate-limit quota), in one statement: what is
// in flight is counted now, in a statement that starts after the walk took the locks, so it sees every lease committed
// by whoever held them before. Parallel: due deliveries up to the room under the cap (and the quota), oldest due first.
// FIFO: the oldest pending delivery, when nothing is in flight, it is due and the quota allows one. Key-ordered
// endpoints' heads (`$8`, their places `$9`) were picked before. The first `$6` by walk order are leased, with their
// messages. The lease finds them by primary key alone: every one was read pending in this transaction, under locks
// only a claim of its endpoint could contend for (its own row lock here, or the endpoint's lock for a key head), so it
// is pending still. (A \`status = 'pending'\` there let the planner scan a whole pending partial index for the ids
// whenever its statistics said few deliveries were pending: 10,000 buffers and 17 ms for 256 rows, measured.)
export const PICK_AND_LEASE = `
  WITH x AS (
    SELECT * FROM unnest($1::text[], $2::int[], $3::int[], $4::bool[], $7::int[]) AS x(e, n, cap, fifo, quota)
  ), picked AS (
    SELECT n, id FROM unnest($8::bigint[], $9::int[]) AS k(id, n)
    UNION ALL
    (SELECT n, id FROM (
      SELECT x.n, d.next_attempt_at, d.id FROM x
      CROSS JOIN LATERAL (SELECT count(*)::int AS busy FROM delivery WHERE status = 'in_flight' AND endpoint_id = x.e) b
      CROSS JOIN LATERAL (
        SELECT id, next_attempt_at FROM delivery
        WHERE NOT x.fifo AND status = 'pending' AND endpoint_id = x.e AND next_attempt_at <= $5
        ORDER BY next_attempt_at, id LIMIT greatest(least(x.cap - b.busy, $6, x.quota), 0)
        FOR NO KEY UPDATE SKIP LOCKED
      ) d
      UNION ALL
      SELECT x.n, h.next_attempt_at, h.id FROM x
      CROSS JOIN LATERAL (SELECT count(*)::int AS busy FROM delivery WHERE status = 'in_flight' AND endpoint_id = x.e) b
      CROSS JOIN LATERAL (SELECT id, next_attempt_at FROM delivery WHERE status = 'pending' AND endpoint_id = x.e ORDER BY id LIMIT 1) h
      WHERE x.fifo AND b.busy = 0 AND x.quota >= 1 AND h.next_attempt_at <= $5
      ORDER BY 1, 2, 3 LIMIT $6
    ) due)
  ), leased AS (
    UPDATE delivery SET status = 'in_flight', leased_by = $10, lease_until = $11 WHERE id = ANY (ARRAY(SELECT id FROM picked)) RETURNING *
  )
  SELECT p.n, leased.*, ${MESSAGE_COLUMNS.map((c) => `m.${c} AS "m:${c}"`).join(', ')}
  FROM leased JOIN picked p ON p.id = leased.id JOIN message m ON m.id = leased.message_id
  ORDER BY p.n, leased.next_attempt_at, leased.id`;

// An `ordering: 'key'` endpoint (locked by the walk above, so no other process claims for it meanwhile): its keys with
// a pending delivery after `$2` (and up to `$3`, if given), `$4` at most, one seek of delivery_key_pending each, with
// each key's oldest pending delivery, whether anything of the key is in flight, and (`$6`: parked messages hold their
// key) whether an older one of the key is parked. Nothing when no pending delivery of the endpoint is due at `$5`.
export const KEY_HEADS = `
  WITH RECURSIVE walk (key, id, at, n) AS (
    (SELECT ordering_key, id, next_attempt_at, 1 FROM delivery
     WHERE status = 'pending' AND endpoint_id = $1 AND ordering_key > $2 AND ($3::text IS NULL OR ordering_key <= $3)
       AND (SELECT min(next_attempt_at) FROM delivery WHERE status = 'pending' AND endpoint_id = $1) <= $5
     ORDER BY ordering_key, id LIMIT 1)
    UNION ALL
    SELECT h.ordering_key, h.id, h.next_attempt_at, walk.n + 1 FROM walk CROSS JOIN LATERAL (
      SELECT ordering_key, id, next_attempt_at FROM delivery
      WHERE status = 'pending' AND endpoint_id = $1 AND ordering_key > walk.key AND ($3::text IS NULL OR ordering_key <= $3)
      ORDER BY ordering_key, id LIMIT 1
    ) h WHERE walk.n < $4
  )
  SELECT walk.key, walk.id, walk.at,
    (SELECT count(*)::int FROM delivery WHERE status = 'in_flight' AND endpoint_id = $1) AS endpoint_busy,
    EXISTS (SELECT 1 FROM delivery f WHERE f.status = 'in_flight' AND f.endpoint_id = $1 AND f.ordering_key = walk.key) AS busy,
    ($6 AND EXISTS (SELECT 1 FROM delivery p WHERE p.status = 'failed' AND p.endpoint_id = $1 AND p.ordering_key = walk.key AND p.id < walk.id)) AS held
  FROM walk ORDER BY walk.n`;

/** Keys per round trip of a key walk, and keys looked at per endpoint and claim at most (the next claim goes on from there). */
const KEY_CHUNK = 128;
const KEY_WALK_BUDGET = 4096;

/** Moves the rate-limited endpoints' next free slot past the slots this claim reserved (their rows are locked). */
const PACE = 'UPDATE endpoint e SET next_send_at = p.at FROM unnest($1::text[], $2::bigint[]) AS p(id, at) WHERE e.id = p.id';

/**
 * Leases due deliveries endpoint by endpoint, round robin from where this process's last claim stopped, with the
 * semantics of the SQLite claim (store/sqlite/claim.ts) holding across processes:
 *
 * - An endpoint's row is locked (`FOR NO KEY UPDATE SKIP LOCKED`) before its deliveries are counted and taken, and
 *   stays locked until the claim commits. Two processes therefore never claim for the same endpoint at the same
 *   time: the second skips it (and fills its batch from other endpoints), and when it next gets the lock, its fresh
 *   statement snapshot sees the first one's leases. So the concurrency cap and the FIFO "one in flight, oldest
 *   first" rule hold globally, not per process. `NO KEY` so that accepts inserting deliveries (which take a
 *   key-share lock on the endpoint through the foreign key) neither block a claim nor are skipped by one.
 * - Disabled endpoints, and endpoints whose circuit is open, are not locked, hence skipped; their deliveries wait. A
 *   half-open endpoint (cool-down over) has a cap of one: a single probe, when nothing of it is in flight.
 * - A rate-limited endpoint yields the send slots of the look-ahead window (domain/rate.ts); its next free slot is
 *   moved on under the same lock, so every process draws from one budget.
 *
 * Four round trips when one chunk of the walk covers the endpoints with due work: BEGIN with lease expiry, walk and lock,
 * pick and lease with the messages, COMMIT (one more to move rate-limited endpoints' slots, and one per key chunk of a
 * key-ordered endpoint). A claim that did not fill its batch leaves the cursor at the start: the next one walks once.
 */
export async function claimDue(pool: pg.Pool, request: ClaimRequest, cursor: { endpointId: string; keys?: Map<string, string> }): Promise<ClaimedDelivery[]> {
  const { now, limit } = request;
  return transaction(
    pool,
    async (client) => {
      const claimed: ClaimedDelivery[] = [];
      // Two passes: endpoints after the cursor, then from the first one up to the cursor.
      const start = cursor.endpointId;
      let after = start;
      let secondPass = false;
      while (claimed.length < limit) {
        const rows = (await client.query({ name: 'hookrelay-claim-walk', text: WALK_AND_LOCK, values: [after, CHUNK, secondPass ? start : null, now] })).rows;
        if (rows.length > 0) {
          after = rows[rows.length - 1].walked;
          cursor.endpointId = await leaseFrom(client, rows, request, claimed, (cursor.keys ??= new Map()));
        }
        if (rows.length === CHUNK) continue;
        if (secondPass || start === '') break;
        secondPass = true;
        after = '';
      }
      // Every endpoint with due work was offered all the room it could take: the next claim starts from the first.
      if (claimed.length < limit) cursor.endpointId = '';
      const paced = reserve(claimed, now);
      if (paced.length > 0) await client.query({ name: 'hookrelay-claim-pace', text: PACE }, [paced.map((p) => p.id), paced.map((p) => p.at)]);
      return claimed;
    },
    `BEGIN; ${expireLeases(now)}`,
  );
}

/** Gives each delivery of a rate-limited endpoint its send slot; returns the endpoints' next free slots to store. */
function reserve(claimed: ClaimedDelivery[], now: number): { id: string; at: number }[] {
  const byEndpoint = new Map<string, ClaimedDelivery[]>();
  for (const c of claimed) {
    if (c.endpoint.rateLimit === null) continue;
    let group = byEndpoint.get(c.endpoint.id);
    if (!group) byEndpoint.set(c.endpoint.id, (group = []));
    group.push(c);
  }
  return [...byEndpoint.values()].map((group) => {
    const { endpoint } = group[0];
    const { slots, nextSendAt } = reserveSlots(endpoint.rateLimit!, endpoint.nextSendAt, now, group.length);
    group.forEach((c, i) => (c.notBefore = slots[i]));
    return { id: endpoint.id, at: nextSendAt };
  });
}

/**
 * Leases due deliveries of the endpoints this walk step locked, appending them to `claimed`; returns the new cursor:
 * the endpoint that filled the batch, or the last one walked.
 */
async function leaseFrom(client: Client, rows: any[], request: ClaimRequest, claimed: ClaimedDelivery[], keyCursors: Map<string, string>): Promise<string> {
  const { now, limit } = request;
  const walkedTo = rows[rows.length - 1].walked as string;
  const endpoints = rows.filter((r) => r.locked !== null).map(toEndpoint);
  const room = limit - claimed.length;
  const keyIds: number[] = [];
  const keyPlaces: number[] = [];
  const others: number[] = [];
  for (let n = 0; n < endpoints.length && keyIds.length < room; n++) {
    const endpoint = endpoints[n];
    if (endpoint.ordering !== 'key') {
      others.push(n);
      continue;
    }
    for (const id of await keyHeads(client, endpoint, now, room - keyIds.length, keyCursors)) {
      keyIds.push(id);
      keyPlaces.push(n);
    }
  }
  // Key heads that filled the batch leave no room for the others: their deliveries are not even counted.
  if (keyIds.length >= room) others.length = 0;
  if (keyIds.length === 0 && others.length === 0) return walkedTo;
  const result = await client.query({ name: 'hookrelay-claim-pick-lease', text: PICK_AND_LEASE }, [
    others.map((n) => endpoints[n].id),
    others,
    // Half-open (the cool-down is over): one probe at a time.
    others.map((n) => (endpoints[n].health.openUntil === null ? endpoints[n].maxInFlight : 1)),
    others.map((n) => endpoints[n].ordering === 'fifo'),
    now,
    room - keyIds.length,
    others.map((n) => sendQuota(endpoints[n].rateLimit, endpoints[n].nextSendAt, now)),
    keyIds,
    keyPlaces,
    request.owner,
    now + request.leaseMs,
  ]);
  for (const row of result.rows) claimed.push({ delivery: toDelivery(row), endpoint: endpoints[row.n], message: toMessage(unprefix(row, 'm:')) });
  // Every endpoint was offered the whole remaining room: when the batch is full, the next claim resumes after the
  // endpoint that filled it.
  if (claimed.length >= limit && result.rows.length > 0) return endpoints[result.rows[result.rows.length - 1].n].id;
  return walkedTo;
}

/**
 * The heads of a key-ordered endpoint's keys that may go now, up to the room left under its cap, the batch and its
 * rate limit: each key's oldest pending delivery, when it is due, nothing of the key is in flight and (`hold`) no older
 * one of it is parked. Keys are walked round robin from where this process's previous claim stopped. The endpoint's row
 * lock makes the in-flight check hold across processes, as it does FIFO's.
 */
async function keyHeads(client: Client, endpoint: Endpoint, now: number, batchRoom: number, cursors: Map<string, string>): Promise<number[]> {
  const start = cursors.get(endpoint.id) ?? '';
  const cap = endpoint.health.openUntil === null ? endpoint.maxInFlight : 1;
  const quota = sendQuota(endpoint.rateLimit, endpoint.nextSendAt, now);
  const hold = endpoint.orderingOnPark === 'hold';
  const picked: number[] = [];
  let room = Math.min(batchRoom, quota);
  let after = start;
  let wrapped = false;
  for (let looked = 0; picked.length < room && looked < KEY_WALK_BUDGET; looked += KEY_CHUNK) {
    const { rows } = await client.query<{ key: string; id: number; at: number; endpoint_busy: number; busy: boolean; held: boolean }>({ name: 'hookrelay-claim-key-heads', text: KEY_HEADS }, [
      endpoint.id,
      after,
      wrapped ? start : null,
      KEY_CHUNK,
      now,
      hold,
    ]);
    if (rows.length > 0) room = Math.min(room, cap - rows[0].endpoint_busy);
    for (const row of rows) {
      if (picked.length >= room) break;
      after = row.key;
      if (!row.busy && !row.held && row.at <= now) picked.push(row.id);
    }
    if (rows.length === KEY_CHUNK || picked.length >= room) continue;
    if (wrapped || start === '') break;
    wrapped = true;
    after = '';
  }
  cursors.set(endpoint.id, after);
  return picked;
}
