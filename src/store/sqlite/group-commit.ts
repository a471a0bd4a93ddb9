import type Database from 'better-sqlite3';
import type { WalSync } from './wal-sync.js';

export interface CommitHooks {
  /** Runs just before COMMIT; throwing rolls the batch back and rejects every caller with that error. */
  beforeCommit?: () => void;
  /** Runs right after COMMIT, before any caller is answered: in-memory state that follows what the batch wrote. */
  committed?: () => void;
  /** The batch committed (null) or failed as a whole (the error). */
  settled?: (error: unknown) => void;
  /** A write threw and the batch was rolled back to run again write by write: in-memory state its writes changed is stale. */
  rolledBack?: () => void;
}

interface Outcome {
  ok: boolean;
  value: unknown;
}

interface Pending {
  work: () => unknown;
  /** Answered only once the commit is on disk (an accept), or as soon as it is committed (an attempt's outcome). */
  durable: boolean;
  resolve: (value: any) => void;
  reject: (error: unknown) => void;
}

/**
 * Group commit: writes queued during one event-loop turn run in one transaction, so one fsync
 * covers them all. A write that throws is rolled back alone and rejects only its own caller: the batch is rolled
 * back and runs again with a savepoint per write (so a write must be safe to run again after a rollback; a savepoint
 * for every write, every time, cost as much as the write). A failing commit rejects every caller of the batch — nothing is
 * acknowledged that was not committed. With a `WalSync`, the commit itself does not sync: durable callers are answered
 * once a sync asked for after it has finished, on the sync thread, while the event loop goes on with the next batch.
 * Callers that need no durability (attempt outcomes: one lost to a power cut is a delivery sent again, as after a
 * kill -9 before its commit) are answered at the commit, so the dispatcher claims again without waiting for the disk;
 * their batch is synced all the same.
 */
export class GroupCommit {
  private queue: Pending[] = [];
  private scheduled = false;
  private readonly sql;
  private readonly syncMode;

  constructor(
    private readonly db: Database.Database,
    private readonly maxBatch = 2048,
    private readonly hooks: CommitHooks = {},
    private readonly wal: WalSync | null = null,
  ) {
    // Only with a WalSync, strict last: a PRAGMA synchronous takes effect when it is prepared, not only when it runs.
    this.syncMode = wal ? { relaxed: db.prepare('PRAGMA synchronous = NORMAL'), strict: db.prepare('PRAGMA synchronous = FULL') } : null;
    this.sql = {
      begin: db.prepare('BEGIN IMMEDIATE'),
      commit: db.prepare('COMMIT'),
      savepoint: db.prepare('SAVEPOINT write'),
      release: db.prepare('RELEASE write'),
      rollbackTo: db.prepare('ROLLBACK TO write'),
    };
  }

  run<T>(work: () => T, durable = true): Promise<T> {
    // Every queued write looks whether a sync has ended: on a busy event loop that answers its callers soonest.
    this.wal?.poll();
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ work, durable, resolve, reject });
      if (this.queue.length >= this.maxBatch) this.flush();
      else if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  flush(): void {
    this.scheduled = false;
    const batch = this.queue;
    this.queue = [];
    if (batch.length === 0) return;
    let outcomes: Outcome[];
    try {
      this.syncMode?.relaxed.run();
      this.sql.begin.run();
      outcomes = this.runAll(batch) ?? this.runEachAlone(batch);
      this.hooks.beforeCommit?.();
      this.sql.commit.run();
      this.hooks.committed?.();
    } catch (error) {
      this.rollback();
      this.hooks.settled?.(error);
      for (const item of batch) item.reject(error);
      return;
    } finally {
      // A write flushed after the store closed fails above; this must not throw out of the event loop after it.
      if (this.db.open) this.syncMode?.strict.run();
    }
    const answer = (durable: boolean | null) => {
      batch.forEach((item, i) => {
        if (durable !== null && item.durable !== durable) return;
        if (outcomes[i].ok) item.resolve(outcomes[i].value);
        else item.reject(outcomes[i].value);
      });
    };
    if (!this.wal) {
      this.hooks.settled?.(null);
      return answer(null);
    }
    answer(false);
    // Every batch is synced, outcomes alone too: a sync never has to carry what piled up unsynced (an accept's 202 waits for it).
    this.wal.sync().then(
      () => {
        this.hooks.settled?.(null);
        answer(true);
      },
      (error) => {
        this.hooks.settled?.(error);
        for (const item of batch) if (item.durable) item.reject(error);
      },
    );
  }

  /**
   * The batch as one transaction without savepoints (a savepoint per write costs about as much as the write itself).
   * Null when a write threw: everything is rolled back, for the batch to run again with a savepoint per write.
   */
  private runAll(batch: Pending[]): Outcome[] | null {
    const outcomes: Outcome[] = [];
    try {
      for (const item of batch) outcomes.push({ ok: true, value: item.work() });
      return outcomes;
    } catch {
      this.rollback();
      this.hooks.rolledBack?.();
      this.sql.begin.run();
      return null;
    }
  }

  /** Each write in its own savepoint: a failing write is rolled back alone and rejects only its own caller. */
  private runEachAlone(batch: Pending[]): Outcome[] {
    const outcomes: Outcome[] = [];
    for (const item of batch) {
      this.sql.savepoint.run();
      try {
        outcomes.push({ ok: true, value: item.work() });
        this.sql.release.run();
      } catch (error) {
        this.sql.rollbackTo.run();
        this.sql.release.run();
        outcomes.push({ ok: false, value: error });
      }
    }
    return outcomes;
  }

  private rollback(): void {
    // SQLite may already have rolled back (a full disk or I/O error can end the transaction by itself).
    if (this.db.inTransaction) this.db.exec('ROLLBACK');
  }
}
