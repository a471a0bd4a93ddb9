import type Database from 'better-sqlite3';
import { reserveSlots, sendQuota } from '../../domain/rate.js';
import type { ClaimedDelivery, Endpoint } from '../../domain/types.js';
import type { ClaimRequest } from '../store.js';
import { namedRows, toDelivery, toEndpoint, toMessage } from './rows.js';

const statements = new WeakMap<Database.Database, ReturnType<typeof prepare>>();

function prepare(db: Database.Database) {
  return {
    expireLeases: db.prepare(
      "UPDATE delivery SET status = 'pending', leased_by = NULL, lease_until = NULL WHERE status = 'in_flight' AND lease_until < ?",
    ),
    inFlight: db.prepare("SELECT endpoint_id, count(*) AS n FROM delivery WHERE status = 'in_flight' GROUP BY endpoint_id"),
    // Loose index scan: the next endpoint (by id) that has any pending delivery, one index seek each.
    nextEndpoint: db.prepare("SELECT min(endpoint_id) AS id FROM delivery WHERE status = 'pending' AND endpoint_id > ?"),
    endpoint: db.prepare('SELECT * FROM endpoint WHERE id = ?'),
    dueOf: db.prepare(
      "SELECT id FROM delivery WHERE status = 'pending' AND endpoint_id = ? AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?",
    ),
    headOf: db.prepare("SELECT id, next_attempt_at FROM delivery WHERE status = 'pending' AND endpoint_id = ? ORDER BY id LIMIT 1"),
    // One statement each for the whole batch: per-row statements cost more than the rows.
    lease: namedRows(
      db.prepare("UPDATE delivery SET status = 'in_flight', leased_by = ?, lease_until = ? WHERE id IN (SELECT value FROM json_each(?)) RETURNING *"),
    ),
    messages: namedRows(db.prepare('SELECT * FROM message WHERE id IN (SELECT value FROM json_each(?))')),
    paced: db.prepare('UPDATE endpoint SET next_send_at = ? WHERE id = ?'),
    // Ordering keys (`ordering = 'key'`), all on the partial indexes of migration 0015.
    earliestDue: db.prepare("SELECT min(next_attempt_at) FROM delivery WHERE status = 'pending' AND endpoint_id = ?").pluck(),
    keysInFlight: db.prepare("SELECT ordering_key FROM delivery WHERE status = 'in_flight' AND endpoint_id = ?").pluck(),
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
function keyHeads(stmt: Statements, endpoint: Endpoint, now: number, room: number, cursors: KeyCursors): number[] {
  const due = stmt.earliestDue.get(endpoint.id) as number | null;
  if (due === null || due > now) return [];
  const busy = new Set(stmt.keysInFlight.all(endpoint.id) as string[]);
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
    if (busy.has(head.key) || head.at > now) continue;
    if (hold && stmt.parkedBefore.get(endpoint.id, head.key, head.id) !== undefined) continue;
    picked.push(head.id);
  }
  cursors.set(endpoint.id, after);
  return picked;
}

type Statements = ReturnType<typeof prepare>;

/**
 * What the claimer keeps between claims: the round-robin cursor, and the number of deliveries in flight per endpoint.
 * This process is the file's only writer, so the counts stay exact as long as every change to an in-flight row goes
 * through `leased`/`finished`, or `forget` (count again from the table at the next claim: lease expiry, release, a
 * rolled-back completion). Expired leases are looked for at most once a second: a lease outlives its attempt's
 * deadline by a margin of seconds, so the wait changes nothing, and the scan no longer runs with every claim.
 */
export class ClaimBook {
  endpointId = '';
  /** Where each key-ordered endpoint's walk over its keys stopped. */
  keys?: KeyCursors;
  private counts: Map<string, number> | null = null;
  /**
   * Deliveries leased since the counts were last taken from the table, whose slot is still counted: only these can
   * have it freed early (one whose lease expired meanwhile is not counted, and must not free another's slot).
   */
  private readonly counted = new Set<number>();
  /** Deliveries whose slot was freed when their attempt was answered (`answered`), until their outcome is written. */
  private readonly freedEarly = new Set<number>();
  private expiryCheckedAt = -Infinity;

  /** Count again from the table at the next claim (a lease expiry, a release, a batch that did not commit). */
  forget(): void {
    this.counts = null;
    // In the table, deliveries freed early are still in flight: their written outcomes free their slots then.
    this.counted.clear();
    this.freedEarly.clear();
  }

  /** The attempt of a leased delivery was answered: its endpoint's slot is free before its outcome is written. */
  answered(deliveryId: number, endpointId: string): void {
    if (this.counts === null || !this.counted.delete(deliveryId)) return;
    this.release(endpointId);
    this.freedEarly.add(deliveryId);
  }

  /** The outcome of a delivery was written: `moved` when it left `in_flight` (this process still held its lease). */
  settled(deliveryId: number, endpointId: string, moved: boolean): void {
    this.counted.delete(deliveryId);
    const early = this.freedEarly.delete(deliveryId);
    if (moved && !early) this.release(endpointId);
  }

  private release(endpointId: string): void {
    if (this.counts === null) return;
    const n = (this.counts.get(endpointId) ?? 0) - 1;
    if (n > 0) this.counts.set(endpointId, n);
    else this.counts.delete(endpointId);
  }

  inFlight(stmt: ReturnType<typeof prepare>, now: number): Map<string, number> {
    if (now - this.expiryCheckedAt >= 1000) {
      this.expiryCheckedAt = now;
      if (stmt.expireLeases.run(now).changes > 0) this.forget();
    }
    if (this.counts === null) {
      this.counts = new Map();
      for (const row of stmt.inFlight.all() as { endpoint_id: string; n: number }[]) this.counts.set(row.endpoint_id, row.n);
    }
    return this.counts;
  }

  leased(deliveryId: number, endpointId: string): void {
    if (this.counts === null) return;
    this.counts.set(endpointId, (this.counts.get(endpointId) ?? 0) + 1);
    this.counted.add(deliveryId);
  }
}

/**
 * Leases due deliveries endpoint by endpoint, round robin from where the last claim stopped, so one endpoint's
 * backlog cannot crowd the others out of a batch. An endpoint at its concurrency cap is skipped; a FIFO
 * endpoint yields only its oldest pending delivery, and only when nothing of it is in flight; a key-ordered one the
 * oldest pending delivery of each key that has nothing in flight (`keyHeads`). An endpoint whose
 * circuit is open is skipped; once its cool-down is over (half-open) it yields one probe when nothing of it is in
 * flight. A rate-limited endpoint yields only the send slots of the look-ahead window (domain/rate.ts).
 * The cost is one index seek per endpoint with pending work, whatever the size of the backlog.
 */
export function claimDue(db: Database.Database, request: ClaimRequest, cursor: ClaimBook): ClaimedDelivery[] {
  let stmt = statements.get(db);
  if (!stmt) statements.set(db, (stmt = prepare(db)));
  const { now, owner, limit } = request;
  const inFlight = cursor.inFlight(stmt, now);

  const picked: { id: number; endpoint: Endpoint; notBefore?: number }[] = [];
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
    const busy = inFlight.get(next) ?? 0;
    const from = picked.length;
    if (endpoint.ordering === 'fifo') {
      if (busy > 0 || quota < 1) continue;
      const head = stmt.headOf.get(next) as { id: number; next_attempt_at: number };
      if (head.next_attempt_at <= now) picked.push({ id: head.id, endpoint });
    } else if (endpoint.ordering === 'key') {
      const room = Math.min(cap - busy, limit - picked.length, quota);
      if (room <= 0) continue;
      for (const id of keyHeads(stmt, endpoint, now, room, (cursor.keys ??= new Map()))) picked.push({ id, endpoint });
    } else {
      const room = Math.min(cap - busy, limit - picked.length, quota);
      if (room <= 0) continue;
      for (const row of stmt.dueOf.all(next, now, room) as { id: number }[]) picked.push({ id: row.id, endpoint });
    }
    if (endpoint.rateLimit !== null && picked.length > from) {
      const { slots, nextSendAt } = reserveSlots(endpoint.rateLimit, endpoint.nextSendAt, now, picked.length - from);
      slots.forEach((slot, i) => (picked[from + i].notBefore = slot));
      stmt.paced.run(nextSendAt, next);
    }
  }

  if (picked.length === 0) return [];
  const endpointOf = new Map(picked.map((p) => [p.id, p]));
  const deliveries = stmt.lease(owner, now + request.leaseMs, JSON.stringify([...endpointOf.keys()])).map(toDelivery);
  const messages = new Map(
    stmt.messages(JSON.stringify([...new Set(deliveries.map((d) => d.messageId))])).map(toMessage).map((m) => [m.id, m]),
  );
  return deliveries
    .sort((a, b) => a.id - b.id)
    .map((delivery) => {
      const { endpoint, notBefore } = endpointOf.get(delivery.id)!;
      cursor.leased(delivery.id, endpoint.id);
      const claimed: ClaimedDelivery = { delivery, endpoint, message: messages.get(delivery.messageId)! };
      if (notBefore !== undefined) claimed.notBefore = notBefore;
      return claimed;
    });
}
