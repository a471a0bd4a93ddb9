import type BetterSqlite3 from 'better-sqlite3';
import { Database } from './driver.js';

export class DatabaseInUseError extends Error {}

/**
 * One hookrelay process per SQLite database: an exclusive lock on the companion file `<database>-lock`, taken before
 * the database is opened and held until `release` or the end of the process (the kernel drops the lock of a process
 * killed with -9, so a restart never finds a stale one). The database itself runs in SQLite's normal locking mode so
 * that the checkpoint thread can open it beside the main connection (checkpoint-thread.ts); this lock is what keeps a
 * second hookrelay away from it, as leases live in the owner's memory.
 *
 * The lock is SQLite's own (a POSIX record lock taken by `BEGIN EXCLUSIVE` and kept by `locking_mode=EXCLUSIVE`), on
 * a file that holds nothing else.
 */
export class OwnerLock {
  private constructor(private readonly handle: BetterSqlite3.Database) {}

  static acquire(databasePath: string): OwnerLock {
    const path = `${databasePath}-lock`;
    const handle = new Database(path, { timeout: 0 });
    try {
      handle.pragma('locking_mode = EXCLUSIVE');
      handle.pragma('journal_mode = OFF');
      handle.exec('BEGIN EXCLUSIVE; COMMIT');
      return new OwnerLock(handle);
    } catch (error) {
      handle.close();
      const code = (error as { code?: string }).code;
      if (code === 'SQLITE_BUSY') {
        throw new DatabaseInUseError(`the database ${databasePath} is in use by another hookrelay process (an SQLite database is served by one process; use PostgreSQL for several)`);
      }
      if (code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT') {
        throw new Error(`the lock file ${path} is damaged; stop every hookrelay using ${databasePath}, delete ${path} and start again`);
      }
      throw error;
    }
  }

  release(): void {
    if (this.handle.open) this.handle.close();
  }
}
