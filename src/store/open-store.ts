import { ConfigError } from '../config.js';
import { SqliteStore } from './sqlite/sqlite-store.js';
import type { Store } from './store.js';
import type { Synchronous } from './sqlite/open.js';

/** The SQLite file a `--db` value names: a path, `sqlite:path` or `file:path`. */
export function sqlitePath(db: string): string | null {
  if (/^postgres(ql)?:\/\//i.test(db)) return null;
  return db.replace(/^(sqlite|file):(\/\/)?/i, '');
}

/** Opens the store a `--db` value names. */
export function openStore(db: string, options: { synchronous: Synchronous }): Store {
  const path = sqlitePath(db);
  if (path === null) {
    throw new ConfigError([`--db (HOOKRELAY_DB): PostgreSQL URLs are not supported by this version of hookrelay yet; use an SQLite file path`]);
  }
  return new SqliteStore({ path, synchronous: options.synchronous });
}
