import { PostgresStore } from './postgres/postgres-store.js';
import { SqliteStore } from './sqlite/sqlite-store.js';
import { guardStorage } from './sqlite/storage-guard.js';
import type { Store } from './store.js';
import type { Synchronous } from './sqlite/open.js';

/** Whether a `--db` value names a PostgreSQL database (`postgres://…` or `postgresql://…`). */
export const isPostgresUrl = (db: string) => /^postgres(ql)?:\/\//i.test(db);

/** The SQLite file a `--db` value names: a path, `sqlite:path` or `file:path`. */
export function sqlitePath(db: string): string | null {
  if (isPostgresUrl(db)) return null;
  return db.replace(/^(sqlite|file):(\/\/)?/i, '');
}

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
