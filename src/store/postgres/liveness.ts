import { randomBytes } from 'node:crypto';
import pg from 'pg';

export interface LivenessOptions {
  url: string;
  pool: pg.Pool;
  /** How often the other owners are checked. @default 1000 */
  checkEveryMs?: number;
  /** Called after leases of a dead owner went back to pending (so dispatchers may claim them at once). */
  onReleased: (count: number) => void;
  onError: (error: Error) => void;
}

const RECONNECT_MS = 1000;

/**
 * Failover in seconds instead of a lease period. Each dispatcher (lease owner) holds a session advisory lock on a
 * dedicated connection and registers the lock's key in `dispatcher`. PostgreSQL drops a session's locks the moment
 * its connection closes — which a killed process's does at once — so every process checks, about once a second, which
 * registered owners' locks it can take: those owners are gone, and their leases go back to pending right away.
 *
 * Leases still expire as before; that covers what this cannot see quickly (a host that vanished without closing its
 * connections, until TCP keepalive gives up). An owner that only lost its lock connection for a moment is taken for
 * dead too: its deliveries may then be sent twice (at least once, as always), and it registers again on reconnect.
 */
export class Liveness {
  private readonly owners = new Map<string, bigint>();
  private client: pg.Client | null = null;
  private connecting: Promise<pg.Client> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private checking: Promise<void> | null = null;
  private stopped = false;

  constructor(private readonly options: LivenessOptions) {}

  /** Makes `owner` visible as alive before it takes its first lease (once per owner; cheap afterwards). */
  async register(owner: string): Promise<void> {
    if (this.owners.has(owner) || this.stopped) return;
    const key = randomBytes(8).readBigInt64BE();
    this.owners.set(owner, key);
    try {
      await this.hold(await this.connection(), owner, key);
    } catch (error) {
      this.owners.delete(owner);
      throw error;
    }
    this.timer ??= setInterval(() => void this.check(), this.options.checkEveryMs ?? 1000);
    this.timer.unref();
  }

  /** `owner` stopped cleanly (its leases were returned): it no longer needs to look alive. */
  async unregister(owner: string): Promise<void> {
    const key = this.owners.get(owner);
    if (key === undefined) return;
    this.owners.delete(owner);
    await this.options.pool.query('DELETE FROM dispatcher WHERE owner = $1', [owner]).catch(() => undefined);
    await this.client?.query('SELECT pg_advisory_unlock($1)', [key]).catch(() => undefined);
  }

  /** Releases the leases of every registered owner whose lock is free; returns how many deliveries went back. */
  check(): Promise<void> {
    return (this.checking ??= this.releaseDead()
      .catch((error) => this.options.onError(error as Error))
      .finally(() => (this.checking = null)));
  }

  async close(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.checking;
    const client = this.client;
    this.client = null;
    await client?.end().catch(() => undefined);
  }

  private async releaseDead(): Promise<void> {
    if (this.stopped) return;
    const client = await this.options.pool.connect();
    try {
      await client.query('BEGIN');
      // The transaction-level try-lock succeeds only on a key no session holds; it is let go at COMMIT.
      const dead = await client.query<{ owner: string }>(
        'SELECT owner FROM dispatcher WHERE NOT (owner = ANY($1)) AND pg_try_advisory_xact_lock(lock_key)',
        [[...this.owners.keys()]],
      );
      let released = 0;
      if (dead.rows.length > 0) {
        const owners = dead.rows.map((r) => r.owner);
        const result = await client.query("UPDATE delivery SET status = 'pending', leased_by = NULL, lease_until = NULL WHERE status = 'in_flight' AND leased_by = ANY($1)", [owners]);
        released = result.rowCount ?? 0;
        await client.query('DELETE FROM dispatcher WHERE owner = ANY($1)', [owners]);
      }
      await client.query('COMMIT');
      if (released > 0) this.options.onReleased(released);
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
  }

  private async hold(client: pg.Client, owner: string, key: bigint): Promise<void> {
    // The lock first, then the row: a row whose lock is free is an owner that is gone.
    await client.query('SELECT pg_advisory_lock($1)', [key]);
    await client.query(
      'INSERT INTO dispatcher (owner, lock_key, registered_at) VALUES ($1, $2, $3) ON CONFLICT (owner) DO UPDATE SET lock_key = EXCLUDED.lock_key, registered_at = EXCLUDED.registered_at',
      [owner, key, Date.now()],
    );
  }

  private connection(): Promise<pg.Client> {
    if (this.client) return Promise.resolve(this.client);
    return (this.connecting ??= this.connect().finally(() => (this.connecting = null)));
  }

  private async connect(): Promise<pg.Client> {
    const client = new pg.Client({ connectionString: this.options.url, keepAlive: true, connectionTimeoutMillis: 5_000, application_name: 'hookrelay-liveness' });
    client.on('error', (error) => {
      this.options.onError(error);
      if (this.client === client) this.client = null;
      client.end().catch(() => undefined);
      if (!this.stopped) setTimeout(() => void this.reconnect(), RECONNECT_MS).unref();
    });
    await client.connect();
    this.client = client;
    return client;
  }

  /** After losing the lock connection: take every owner's lock again (others may have released its leases meanwhile). */
  private async reconnect(): Promise<void> {
    if (this.stopped || this.client || this.owners.size === 0) return;
    try {
      const client = await this.connection();
      for (const [owner, key] of this.owners) await this.hold(client, owner, key);
    } catch (error) {
      this.options.onError(error as Error);
      if (!this.stopped) setTimeout(() => void this.reconnect(), RECONNECT_MS).unref();
    }
  }
}
