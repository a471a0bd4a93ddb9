interface Lease {
  owner: string;
  until: number;
  endpointId: string;
  appId: string;
  /** The delivery's ordering key (`ordering: 'key'` endpoints), else null. */
  key: string | null;
  createdAt: number;
  /** Its endpoint's slot is still taken (an answered success frees it before the outcome is written). */
  counted: boolean;
  /** Its outcome is written in the open batch. */
  staged: boolean;
}

/** What a claim made leases with. */
export interface LeaseTerms {
  owner: string;
  until: number;
}

/**
 * The leases of an SQLite store, in memory only. One process owns the file, so nothing but this process can take a
 * delivery: a lease written to the table would cost a status change in and out of `in_flight` (the row and two indexes,
 * at the claim and again at the outcome) and protect against nobody. In the table a leased delivery stays `pending`; the
 * claim skips what is held here, and readers of the queue (stats, listings, endpoint counts) add what is held as in
 * flight. A crash loses the leases and nothing else: their deliveries are pending and go again, as they would after
 * a lease expired.
 *
 * An outcome frees its lease only once its write is committed (`stage`, then `committed`): a batch that rolls back or
 * fails keeps the delivery held, so no claim takes it again before its lease expires, as when the lease was a row.
 */
export class Leases {
  private readonly byId = new Map<number, Lease>();
  /** Slots taken per endpoint: leases not yet answered. */
  private readonly slots = new Map<string, number>();
  /** Leases per endpoint, answered or not: the rows a claim of the endpoint skips. */
  private readonly held = new Map<string, number>();
  /** Per key-ordered endpoint, how many leases each key holds. */
  private readonly keys = new Map<string, Map<string, number>>();
  /** Deliveries whose outcome the open batch has written: freed when it commits. */
  private staged: number[] = [];
  private expiryCheckedAt = -Infinity;

  get size(): number {
    return this.byId.size;
  }

  has(deliveryId: number): boolean {
    return this.byId.has(deliveryId);
  }

  /** Slots of the endpoint's `maxInFlight` taken. */
  slotsOf(endpointId: string): number {
    return this.slots.get(endpointId) ?? 0;
  }

  /** Deliveries of the endpoint held, answered or not. */
  heldOf(endpointId: string): number {
    return this.held.get(endpointId) ?? 0;
  }

  /** The keys of a key-ordered endpoint with a delivery held. */
  keysOf(endpointId: string): ReadonlyMap<string, number> {
    return this.keys.get(endpointId) ?? EMPTY;
  }

  /** The held deliveries, optionally of one endpoint. */
  ids(endpointId?: string): number[] {
    const ids: number[] = [];
    for (const [id, lease] of this.byId) if (endpointId === undefined || lease.endpointId === endpointId) ids.push(id);
    return ids;
  }

  /** How many held deliveries of an endpoint were created in [since, until). */
  countOf(appId: string, endpointId: string, since: number, until: number): number {
    let n = 0;
    for (const lease of this.byId.values()) {
      if (lease.endpointId === endpointId && lease.appId === appId && lease.createdAt >= since && lease.createdAt < until) n++;
    }
    return n;
  }

  take(deliveryId: number, terms: LeaseTerms, delivery: { endpointId: string; appId: string; key: string | null; createdAt: number }): void {
    // A claim never picks a held delivery (claim.ts); were one taken again, its counts must not be taken twice.
    if (this.byId.has(deliveryId)) this.free(deliveryId);
    this.byId.set(deliveryId, {
      owner: terms.owner,
      until: terms.until,
      endpointId: delivery.endpointId,
      appId: delivery.appId,
      key: delivery.key,
      createdAt: delivery.createdAt,
      counted: true,
      staged: false,
    });
    bump(this.slots, delivery.endpointId, 1);
    bump(this.held, delivery.endpointId, 1);
    if (delivery.key !== null) {
      let keys = this.keys.get(delivery.endpointId);
      if (!keys) this.keys.set(delivery.endpointId, (keys = new Map()));
      bump(keys, delivery.key, 1);
    }
  }

  /** The attempt was answered: its endpoint's slot is free before its outcome is written. */
  answered(deliveryId: number): void {
    const lease = this.byId.get(deliveryId);
    if (!lease || !lease.counted) return;
    lease.counted = false;
    bump(this.slots, lease.endpointId, -1);
  }

  /** Whether `owner` holds the lease, as an outcome written now would find it (not already written in the open batch). */
  holds(deliveryId: number, owner: string): boolean {
    const lease = this.byId.get(deliveryId);
    return lease !== undefined && lease.owner === owner && !lease.staged;
  }

  /** The outcome of a held delivery is written in the open batch; `committed` frees it, `unstage` forgets it. */
  stage(deliveryId: number): void {
    const lease = this.byId.get(deliveryId);
    if (!lease || lease.staged) return;
    lease.staged = true;
    this.staged.push(deliveryId);
  }

  /** How many outcomes are staged: a mark for `unstage`. */
  get stagedCount(): number {
    return this.staged.length;
  }

  /** The writes staged since `mark` were rolled back. */
  unstage(mark = 0): void {
    for (const id of this.staged.splice(mark)) {
      const lease = this.byId.get(id);
      if (lease) lease.staged = false;
    }
  }

  committed(): void {
    for (const id of this.staged) this.free(id);
    this.staged = [];
  }

  renew(owner: string, deliveryIds: number[], until: number): void {
    for (const id of deliveryIds) {
      const lease = this.byId.get(id);
      if (lease?.owner === owner) lease.until = until;
    }
  }

  /** Drops the leases of `owner` (every lease when null); returns how many. */
  release(owner: string | null): number {
    let n = 0;
    for (const [id, lease] of this.byId) {
      if (owner !== null && lease.owner !== owner) continue;
      this.free(id);
      n++;
    }
    return n;
  }

  /**
   * Drops the leases that ran out before `now`, looking at most once a second: a lease outlives its attempt's deadline
   * by a margin of seconds (and the dispatcher renews it), so the wait changes nothing.
   */
  expire(now: number): void {
    if (now - this.expiryCheckedAt < 1000) return;
    this.expiryCheckedAt = now;
    for (const [id, lease] of this.byId) if (lease.until < now) this.free(id);
  }

  /** Ends a lease whatever its state. */
  free(deliveryId: number): void {
    const lease = this.byId.get(deliveryId);
    if (!lease) return;
    this.byId.delete(deliveryId);
    if (lease.counted) bump(this.slots, lease.endpointId, -1);
    bump(this.held, lease.endpointId, -1);
    if (lease.key !== null) {
      const keys = this.keys.get(lease.endpointId)!;
      bump(keys, lease.key, -1);
      if (keys.size === 0) this.keys.delete(lease.endpointId);
    }
  }
}

const EMPTY: ReadonlyMap<string, number> = new Map();

function bump(counts: Map<string, number>, key: string, by: number): void {
  const n = (counts.get(key) ?? 0) + by;
  if (n > 0) counts.set(key, n);
  else counts.delete(key);
}
