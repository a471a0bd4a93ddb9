import { PostgresStore } from './postgres/postgres-store.js';
import { SqliteStore } from './sqlite/sqlite-store.js';
import { guardStorage } from './sqlite/storage-guard.js';
import type { Store } from './store.js';
import type { Synchronous } from './sqlite/open.js';

export { isPostgresUrl, sqlitePath } from './location.js';
import { isPostgresUrl, sqlitePath } from './location.js';

export interface OpenStoreOptions {
  synchronous: Synchronous;
  /** Problems of idle PostgreSQL connections (they are reconnected); SQLite has none. */
  onError?: (error: Error) => void;
}

/** Opens the store a `--db` value names and brings its schema up to date. */
export async function openStore(db: string, options: OpenStoreOptions): Promise<Store> {
  if (isPostgresUrl(db)) return PostgresStore.open({ url: db, onError: options.onError });
  const store = new SqliteStore({ path: sqlitePath(db)!, synchronous: options.synchronous });
  return guardStorage(store, store.problems);
}
