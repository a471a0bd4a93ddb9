import type BetterSqlite3 from 'better-sqlite3';
import { accessSync, constants, existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Database } from './driver.js';
import { DatabaseInUseError, OwnerLock } from './owner-lock.js';

export { DatabaseInUseError };

export type Synchronous = 'FULL' | 'NORMAL';

const MIGRATIONS_DIR = join(dirname(fileURLToPath(import.meta.url)), 'migrations');

/** The database file cannot be opened, with the real cause (permissions, a directory in the way…) and the path. */
export class DatabaseOpenError extends Error {}

/** Why `path` cannot be opened read-write, found by asking the file system what SQLite's CANTOPEN does not say. */
function cantOpen(path: string, error: Error): DatabaseOpenError {
  const dir = dirname(path);
  const uid = process.getuid?.();
  const who = uid === undefined ? 'hookrelay' : `hookrelay (uid ${uid})`;
  const denied = (target: string, mode: number) => {
    try {
      accessSync(target, mode);
      return false;
    } catch {
      return true;
    }
  };
  let cause = error.message;
  if (existsSync(path) && denied(path, constants.R_OK | constants.W_OK)) cause = `permission denied: ${who} cannot read and write ${path}`;
  else if (denied(dir, constants.W_OK | constants.X_OK)) cause = `permission denied: ${who} cannot create files in ${dir} (SQLite also writes ${path}-wal there)`;
  return new DatabaseOpenError(`cannot open the database ${path}: ${cause}`);
}

export interface OpenedDatabase {
  db: BetterSqlite3.Database;
  migration: MigrationReport;
  /** Closes the connection, then gives up the ownership of the file. */
  close(): void;
}

/**
 * Opens the database file for this process alone (`OwnerLock`: a second hookrelay is refused at once instead of racing
 * for the deliveries whose leases this one keeps in memory). WAL in SQLite's normal locking mode, so that the checkpoint
 * thread's connection can copy the log into the database beside this one (checkpoint-thread.ts).
 */
export function openDatabase(path: string, synchronous: Synchronous): OpenedDatabase {
  if (path !== ':memory:') {
    try {
      mkdirSync(dirname(path), { recursive: true });
    } catch (error) {
      throw new DatabaseOpenError(`cannot create the database directory ${dirname(path)}: ${(error as Error).message}`);
    }
  }
  let owner: OwnerLock | null = null;
  try {
    if (path !== ':memory:') owner = OwnerLock.acquire(path);
  } catch (error) {
    if ((error as { code?: string }).code === 'SQLITE_CANTOPEN') throw cantOpen(`${path}-lock`, error as Error);
    throw error;
  }
  let db: BetterSqlite3.Database;
  try {
    // A busy wait only where the checkpoint thread holds the checkpoint lock (an explicit TRUNCATE); writes never wait.
    db = new Database(path, { timeout: 5000 });
  } catch (error) {
    owner?.release();
    if ((error as { code?: string }).code === 'SQLITE_CANTOPEN') throw cantOpen(path, error as Error);
    throw error;
  }
  try {
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${synchronous}`);
    db.pragma('foreign_keys = ON');
    db.pragma('temp_store = MEMORY');
    // 8 MiB of page cache, not more: a commit whose inserts split a b-tree page walks the cache's whole hash table
    // (SQLite parks a page at the lock-byte page number while it reorders siblings, and the truncate at commit then
    // scans every bucket). With 64 MiB that walk was 4 % of the drain's CPU; at 8 MiB it is 0.7 %, with no more reads.
    db.pragma('cache_size = -8192');
    // The checkpoint thread copies the log into the database off the event loop. A commit still checkpoints once the
    // log reaches ~32 MiB: by then the thread has copied nearly all of it, so this finishes the copy (a few pages) and
    // lets the next commit start the log over, which a thread racing a busy writer cannot always do.
    db.pragma('wal_autocheckpoint = 8000');
    const migration = migrate(db);
    return {
      db,
      migration,
      close() {
        if (db.open) db.close();
        owner?.release();
      },
    };
  } catch (error) {
    db.close();
    owner?.release();
    const code = (error as { code?: string }).code;
    // A hookrelay from before the lock file holds the database itself.
    if (code === 'SQLITE_BUSY') throw new DatabaseInUseError(`the database ${path} is in use by another process`);
    if (code === 'SQLITE_CANTOPEN' || code?.startsWith('SQLITE_READONLY')) throw cantOpen(path, error as Error);
    throw error;
  }
}

export interface MigrationReport {
  applied: string[];
  current: number;
}

/**
 * A migration whose first line is this comment runs with foreign keys off: the way to rebuild a table that others
 * reference (SQLite cannot alter a constraint in place), since dropping the old table with them on would cascade.
 */
export const FOREIGN_KEYS_OFF = '-- hookrelay:foreign-keys-off';

/**
 * Applies the numbered `NNNN_name.sql` files newer than the database, each in its own transaction. `PRAGMA foreign_keys`
 * cannot change inside a transaction, so a file marked `FOREIGN_KEYS_OFF` gets them switched off around its
 * transaction, and `PRAGMA foreign_key_check` must find nothing before it commits.
 */
export function migrate(db: BetterSqlite3.Database): MigrationReport {
  db.exec('CREATE TABLE IF NOT EXISTS schema_migration (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)');
  const current = (db.prepare('SELECT coalesce(max(version), 0) AS v FROM schema_migration').get() as { v: number }).v;
  const files = readdirSync(MIGRATIONS_DIR).filter((f) => /^\d{4}_.+\.sql$/.test(f)).sort();
  const latest = files.length ? Number(files[files.length - 1].slice(0, 4)) : 0;
  if (current > latest) {
    throw new Error(`the database schema (version ${current}) is newer than this hookrelay (knows up to ${latest}); upgrade hookrelay`);
  }
  const applied: string[] = [];
  for (const file of files) {
    const version = Number(file.slice(0, 4));
    if (version <= current) continue;
    const sql = readFileSync(join(MIGRATIONS_DIR, file), 'utf8');
    applyMigration(db, version, file, sql);
    applied.push(file);
  }
  return { applied, current: Math.max(current, latest) };
}

/** One migration in one transaction (exported for the runner's own tests). */
export function applyMigration(db: BetterSqlite3.Database, version: number, file: string, sql: string): void {
  const keysOff = sql.split('\n', 1)[0].trim() === FOREIGN_KEYS_OFF;
  const run = db.transaction(() => {
    db.prepare('INSERT INTO schema_migration (version, name, applied_at) VALUES (?, ?, ?)').run(version, file, Date.now());
    db.exec(sql);
    if (keysOff) {
      const broken = db.pragma('foreign_key_check') as { table: string; rowid: number; parent: string }[];
      if (broken.length > 0) {
        const first = broken[0];
        throw new Error(`migration ${file} leaves rows whose foreign keys point nowhere (${broken.length}; first: ${first.table} row ${first.rowid} → ${first.parent})`);
      }
    }
  });
  if (!keysOff) return run.immediate();
  db.pragma('foreign_keys = OFF');
  try {
    run.immediate();
  } finally {
    db.pragma('foreign_keys = ON');
  }
}
