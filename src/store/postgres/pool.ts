import pg from 'pg';

export type Client = pg.PoolClient;

/**
 * A connection pool for one database URL. Times and delivery ids are bigint columns that always fit in a double
 * (epoch ms, row counters), so they arrive as numbers rather than strings.
 */
export function createPool(url: string, options: { max: number; min?: number; onError: (error: Error) => void }): pg.Pool {
  const types = new pg.TypeOverrides();
  types.setTypeParser(pg.types.builtins.INT8, (value: string) => Number(value));
  const pool = new pg.Pool({
    connectionString: url,
    max: options.max,
    // Kept open when idle, so that a quiet process answers its first burst without connecting (and authenticating) first.
    min: options.min ?? 0,
    types,
    // Unreachable (rather than refusing) servers must not hold requests forever: they get 503 after this long.
    connectionTimeoutMillis: 5_000,
    idleTimeoutMillis: 30_000,
    keepAlive: true,
    application_name: 'hookrelay',
    // A transaction left open this long belongs to a stalled process: end it, so its row locks do not hold others up.
    idle_in_transaction_session_timeout: 30_000,
  });
  // An idle connection that dies (server restart, failover) is reported here; without a listener it would crash the process.
  pool.on('error', options.onError);
  return pool;
}

/**
 * Opens up to `count` connections now (at start), rather than under the first load, where each costs a round of
 * authentication. Best effort: a connection refused now (a connection limit) is opened on demand later, as before.
 */
export async function warm(pool: pg.Pool, count: number): Promise<void> {
  const opened = await Promise.allSettled(Array.from({ length: Math.min(count, pool.options.max) }, () => pool.connect()));
  for (const result of opened) if (result.status === 'fulfilled') result.value.release();
}

/**
 * A pooled connection for a unit of work. While checked out, a connection the server drops between two queries
 * emits 'error' with nobody listening (the pool listens only to idle ones), which would crash the process; the
 * listener here swallows it, and the next query on the connection fails instead. `release(true)` discards it.
 */
export async function checkout(pool: pg.Pool): Promise<{ client: Client; release: (broken: boolean) => void }> {
  const client = await pool.connect();
  const ignore = () => undefined;
  client.on('error', ignore);
  return {
    client,
    release: (broken) => {
      client.off('error', ignore);
      client.release(broken);
    },
  };
}

/**
 * Runs `work` in one transaction on one pooled connection; a connection that failed mid-way is discarded, not reused.
 * `begin` may carry parameterless statements to run first in the same round trip (`BEGIN; UPDATE …`).
 */
export async function transaction<T>(pool: pg.Pool, work: (client: Client) => Promise<T>, begin = 'BEGIN'): Promise<T> {
  const { client, release } = await checkout(pool);
  let broken = false;
  try {
    return await inTransaction(client, () => work(client), begin);
  } catch (error) {
    broken = (error as { rollbackFailed?: boolean }).rollbackFailed === true;
    throw error;
  } finally {
    release(broken);
  }
}

/** `work` between BEGIN and COMMIT on a connection already checked out; rolled back if it throws. */
export async function inTransaction<T>(client: Client, work: () => Promise<T>, begin = 'BEGIN'): Promise<T> {
  await client.query(begin);
  try {
    const result = await work();
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {
      if (error && typeof error === 'object') (error as { rollbackFailed?: boolean }).rollbackFailed = true;
    });
    throw error;
  }
}

/** Numbered placeholders for a statement built piece by piece: `p.add(value)` returns `$n`. */
export class Params {
  readonly values: unknown[] = [];

  add(value: unknown): string {
    this.values.push(value);
    return `$${this.values.length}`;
  }
}
