import type Database from 'better-sqlite3';
import { reserveSlots, sendQuota } from '../../domain/rate.js';
import type { ClaimedDelivery, Endpoint } from '../../domain/types.js';
import type { ClaimRequest } from '../store.js';
import type { Leases } from './leases.js';
import { namedRows, toDelivery, toEndpoint, toMessage } from './rows.js';

const statements = new WeakMap<Database.Database, ReturnType<typeof prepare>>();

function prepare(db: Database.Database) {
  return {
    // Loose index scan: the next endpoint (by id) that has any pending delivery, one index seek each.
    nextEndpoint: db.prepare("SELECT min(endpoint_id) AS id FROM delivery WHERE status = 'pending' AND endpoint_id > ?"),
    endpoint: db.prepare('SELECT * FROM endpoint WHERE id = ?'),
    // Plucked: a row object per id cost 2–3 times as much as the walk itself.
    dueOf: db
      .prepare("SELECT id FROM delivery WHERE status = 'pending' AND endpoint_id = ? AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?")
      .pluck(),
    headOf: db.prepare("SELECT id, next_attempt_at FROM delivery WHERE status = 'pending' AND endpoint_id = ? ORDER BY id LIMIT 1"),
    // One statement each for the whole batch: per-row statements cost more than the rows.
    deliveries: namedRows(db.prepare('SELECT * FROM delivery WHERE id IN (SELECT value FROM json_each(?))')),
    messages: namedRows(db.prepare('SELECT * FROM message WHERE id IN (SELECT value FROM json_each(?))')),
    // Ordering keys (`ordering = 'key'`), all on the partial indexes of migration 0015.
    earliestDue: db.prepare("SELECT min(next_attempt_at) FROM delivery WHERE status = 'pending' AND endpoint_id = ?").pluck(),
    // The next key (after `?`) with a pending delivery, and its oldest one: one seek of delivery_key_pending.
    nextKeyHead: db.prepare(
      "SELECT ordering_key AS key, id, next_attempt_at AS at FROM delivery WHERE status = 'pending' AND endpoint_id = ? AND ordering_key > ? ORDER BY ordering_key, id LIMIT 1",
    ),
    parkedBefore: db.prepare("SELECT 1 FROM delivery WHERE status = 'failed' AND endpoint_id = ? AND ordering_key = ? AND id < ? LIMIT 1").pluck(),
  };
}

/** Keys looked at per endpoint and claim at most; the walk goes on from there in the next claim. */
const KEY_WALK_BUDGET = 4096;

/** Where each key-ordered endpoint's walk over its keys stopped (round robin over keys, as over endpoints). */
export type KeyCursors = Map<string, string>;

/**
 * The heads of an `ordering: 'key'` endpoint's keys that may go now, up to `room`: a key's oldest pending delivery, when
 * it is due, nothing of the key is in flight and (`orderingOnPark: 'hold'`) no older delivery of the key is parked.
 * One index seek per key looked at; keys are walked round robin from where the previous claim stopped.
 */
function keyHeads(stmt: Statements, endpoint: Endpoint, now: number, room: number, cursors: KeyCursors, leases: Leases): number[] {
  const due = stmt.earliestDue.get(endpoint.id) as number | null;
  if (due === null || due > now) return [];
  const busy = leases.keysOf(endpoint.id);
  const hold = endpoint.orderingOnPark === 'hold';
  const start = cursors.get(endpoint.id) ?? '';
  const picked: number[] = [];
  let after = start;
  let wrapped = false;
  for (let looked = 0; picked.length < room && looked < KEY_WALK_BUDGET; looked++) {
    const head = stmt.nextKeyHead.get(endpoint.id, after) as { key: string; id: number; at: number } | undefined;
    if (!head || (wrapped && head.key > start)) {
      if (wrapped || start === '') break;
      wrapped = true;
      after = '';
      continue;
    }
    after = head.key;
    // A held head holds its key too: leased before the endpoint ordered by key, its lease carries no key.
    if (busy.has(head.key) || leases.has(head.id) || head.at > now) continue;
    if (hold && stmt.parkedBefore.get(endpoint.id, head.key, head.id) !== undefined) continue;
    picked.push(head.id);
  }
  cursors.set(endpoint.id, after);
  return picked;
}

type Statements = ReturnType<typeof prepare>;

/** Where the claims of a store go on from: the round-robin cursor over endpoints, and over each key-ordered endpoint's keys. */
export interface ClaimCursor {
  endpointId: string;
  keys?: KeyCursors;
}

/**
 * Leases due deliveries endpoint by endpoint, round robin from where the last claim stopped, so one endpoint's
 * backlog cannot crowd the others out of a batch. An endpoint at its concurrency cap is skipped; a FIFO
 * endpoint yields only its oldest pending delivery, and only when nothing of it is held; a key-ordered one the
 * oldest pending delivery of each key that has nothing held (`keyHeads`). An endpoint whose
 * circuit is open is skipped; once its cool-down is over (half-open) it yields one probe when nothing of it is in
 * flight. A rate-limited endpoint yields only the send slots of the look-ahead window (domain/rate.ts); the new
 * send times it reserved are returned for the caller to write (the only write of a claim).
 * The leases are taken in `leases` only (leases.ts): held deliveries stay pending in the table, and a walk of an
 * endpoint's due deliveries reads past them. The cost is one index seek per endpoint with pending work, whatever the
 * size of the backlog.
 */
export function claimDue(
  db: Database.Database,
  request: ClaimRequest,
  cursor: ClaimCursor,
  leases: Leases,
): { claimed: ClaimedDelivery[]; paced: [endpointId: string, nextSendAt: number][] } {
  let stmt = statements.get(db);
  if (!stmt) statements.set(db, (stmt = prepare(db)));
  const { now, owner, limit } = request;
  leases.expire(now);

  const picked: { id: number; endpoint: Endpoint; notBefore?: number }[] = [];
  const paced: [string, number][] = [];
  // Two passes: endpoints after the cursor, then from the first one up to the cursor.
  const start = cursor.endpointId;
  let after = start;
  let secondPass = false;
  while (picked.length < limit) {
    const next = (stmt.nextEndpoint.get(after) as { id: string | null }).id;
    if (next === null) {
      if (secondPass || start === '') break;
      secondPass = true;
      after = '';
      continue;
    }
    if (secondPass && next > start) break;
    after = next;
    cursor.endpointId = next;
    const endpoint = toEndpoint(stmt.endpoint.get(next));
    if (endpoint.disabled) continue;
    if (endpoint.verification.state !== 'verified') continue; // held until its registration handshake verifies it
    const { openUntil } = endpoint.health;
    if (openUntil !== null && openUntil > now) continue;
    const cap = openUntil === null ? endpoint.maxInFlight : 1;
    const quota = sendQuota(endpoint.rateLimit, endpoint.nextSendAt, now);
    const busy = leases.slotsOf(next);
    const from = picked.length;
    if (endpoint.ordering === 'fifo') {
      if (leases.heldOf(next) > 0 || quota < 1) continue;
      const head = stmt.headOf.get(next) as { id: number; next_attempt_at: number };
      if (head.next_attempt_at <= now) picked.push({ id: head.id, endpoint });
    } else if (endpoint.ordering === 'key') {
      const room = Math.min(cap - busy, limit - picked.length, quota);
      if (room <= 0) continue;
      for (const id of keyHeads(stmt, endpoint, now, room, (cursor.keys ??= new Map()), leases)) picked.push({ id, endpoint });
    } else {
      const room = Math.min(cap - busy, limit - picked.length, quota);
      if (room <= 0) continue;
      // Held deliveries are still pending in the table: read past as many as the endpoint holds.
      for (const id of stmt.dueOf.all(next, now, room + leases.heldOf(next)) as number[]) {
        if (picked.length - from === room) break;
        if (!leases.has(id)) picked.push({ id, endpoint });
      }
    }
    if (endpoint.rateLimit !== null && picked.length > from) {
      const { slots, nextSendAt } = reserveSlots(endpoint.rateLimit, endpoint.nextSendAt, now, picked.length - from);
      slots.forEach((slot, i) => (picked[from + i].notBefore = slot));
      paced.push([next, nextSendAt]);
    }
  }

  if (picked.length === 0) return { claimed: [], paced };
  const endpointOf = new Map(picked.map((p) => [p.id, p]));
  const rows = stmt.deliveries(JSON.stringify([...endpointOf.keys()])) as { id: number; message_id: string; ordering_key: string | null }[];
  const messages = new Map(
    stmt.messages(JSON.stringify([...new Set(rows.map((r) => r.message_id))])).map(toMessage).map((m) => [m.id, m]),
  );
  const terms = { owner, until: now + request.leaseMs };
  const claimed = rows
    .sort((a, b) => a.id - b.id)
    .map((row) => {
      const delivery = toDelivery(row);
      const { endpoint, notBefore } = endpointOf.get(delivery.id)!;
      delivery.status = 'in_flight';
      leases.take(delivery.id, terms, { endpointId: delivery.endpointId, appId: delivery.appId, key: row.ordering_key ?? null, createdAt: delivery.createdAt });
      const claimed: ClaimedDelivery = { delivery, endpoint, message: messages.get(delivery.messageId)! };
      if (notBefore !== undefined) claimed.notBefore = notBefore;
      return claimed;
    });
  return { claimed, paced };
}
