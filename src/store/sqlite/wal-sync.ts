import { SyncThread } from './sync-thread.js';

/** Where the syncs of a file run: one at a time, each covering every commit asked for before it started. */
export interface SyncRunner {
  /** Asks for a sync covering commit `commit` and every one before it. */
  request(commit: number): void;
  /** The newest commit a finished sync covers. */
  completed(): number;
  /** Whether a sync asked for keeps the process alive (as any pending I/O does) until it ends. */
  keepAlive(on: boolean): void;
  /** Ends the runner; requests after it are ignored. */
  close(): void;
}

/** Builds the runner; `settled` is told of each sync that ends (null), or of the failure that ended them all. */
export type StartRunner = (path: string, settled: (failure: Error | null) => void) => SyncRunner;

interface Waiter {
  commit: number;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * The sync that `synchronous=FULL` makes at every WAL commit, done by hookrelay instead. A group commit's transaction
 * commits with `synchronous=NORMAL` (its frames reach the WAL file but are not synced), then its callers wait for a sync
 * asked for after their commit.
 *
 * The syncs run on a thread of their own (`SyncThread`), one after another, so the event loop never waits for the disk:
 * it parses, verifies and inserts the next requests while the last batch syncs, and a slow disk slows answers, not the
 * loop. A commit made while a sync runs is covered by the next sync, which starts as soon as the running one ends and
 * covers every commit made by then. The event loop learns which commits are durable from shared memory each time a
 * write is queued (`poll`), and from the thread's message when it has nothing else to do.
 *
 * Same guarantee as FULL: a caller is answered only after the WAL frames of its commit are on disk. (In WAL mode FULL
 * differs from NORMAL only by that per-commit sync; checkpoints sync in both.) It is an fdatasync: on Linux it covers
 * the frames and the file's size, which is all that recovery reads (the file's times are what it leaves out). Syncs
 * work per file, so the thread's own descriptor of the WAL covers the writes SQLite made through its descriptor. A
 * failed sync is final for the process: see `fail`.
 */
export class WalSync {
  /** Commits numbered in order; `durable` is the newest one known to be on disk. */
  private committed = 0;
  private durable = 0;
  /** In commit order. */
  private waiters: Waiter[] = [];
  /** Set by the first failed sync; from then on every sync fails (see `fail`). */
  private broken: Error | null = null;
  private closing: Promise<void> | null = null;
  private closed = false;
  private readonly runner: SyncRunner;

  constructor(
    private readonly walPath: string,
    start: StartRunner = (path, settled) => new SyncThread(path, settled),
  ) {
    this.runner = start(walPath, (failure) => (failure ? this.fail(this.named(failure)) : this.poll()));
  }

  /** Resolves once everything committed before this call is durable. */
  sync(): Promise<void> {
    if (this.broken) return Promise.reject(this.broken);
    if (this.closed) return Promise.reject(this.named(new Error('the store is closed')));
    const commit = ++this.committed;
    // While someone waits, the thread keeps the process alive, as any pending I/O does.
    if (this.waiters.length === 0) this.runner.keepAlive(true);
    const done = new Promise<void>((resolve, reject) => this.waiters.push({ commit, resolve, reject }));
    this.runner.request(commit);
    return done;
  }

  /** Answers the commits that syncs ended since the last look made durable. Cheap: one read of shared memory. */
  poll(): void {
    if (this.broken || this.waiters.length === 0) return;
    const synced = this.runner.completed();
    if (synced <= this.durable) return;
    this.durable = synced;
    let answered = 0;
    while (answered < this.waiters.length && this.waiters[answered].commit <= synced) this.waiters[answered++].resolve();
    this.waiters = this.waiters.slice(answered);
    if (this.waiters.length === 0) this.runner.keepAlive(false);
  }

  /** Waits for a sync of everything committed so far (commits made meanwhile included), then stops the thread. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      while (!this.broken && this.committed > this.durable) await this.sync().catch(() => undefined);
      this.closed = true;
      this.runner.close();
    })();
    return this.closing;
  }

  /**
   * A sync failed. The kernel may have dropped the pages it could not write and marked them clean, so a later sync
   * can succeed without them; and SQLite's recovery stops at the first frame missing from the WAL, so no commit made
   * after the lost frames would survive a restart either. Every waiting commit is refused, and every later sync fails
   * until a restart recovers the file (as PostgreSQL stops after a failed fsync).
   */
  private fail(error: Error): void {
    if (this.broken) return;
    this.broken = Object.assign(new Error(`${error.message}; what was written since may not be on disk: restart hookrelay`), { code: 'SQLITE_IOERR_FSYNC' });
    for (const waiter of this.waiters) waiter.reject(error);
    this.waiters = [];
    this.runner.keepAlive(false);
  }

  /** Named as SQLite names a failed sync, so that it is answered like any storage failure (503). */
  private named(error: Error): Error {
    return Object.assign(new Error(`syncing the write-ahead log ${this.walPath} failed: ${error.message}`), { code: 'SQLITE_IOERR_FSYNC' });
  }
}
