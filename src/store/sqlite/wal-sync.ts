import { closeSync, fdatasync, fdatasyncSync, openSync } from 'node:fs';

interface Waiter {
  commit: number;
  resolve: () => void;
  reject: (error: unknown) => void;
}

export interface WalSyncOptions {
  /** False: every sync runs in the thread pool. */
  inline?: boolean;
  /** Syncs running in the thread pool at once. */
  maxRunning?: number;
  /** A sync in the thread pool, the WAL file's fdatasync unless a test holds it; `slot` names its descriptor. */
  syncFile?: (slot: number) => Promise<void>;
  /** A sync on the calling thread; the WAL file's fdatasync unless a test replaces it. */
  syncFileNow?: () => void;
  /** Milliseconds, for timing syncs on the calling thread. */
  now?: () => number;
  /**
   * Syncs on the calling thread whose recent average passes `inlineAverageMs`, or one that passes `inlineLimitMs`, send
   * syncs to the thread pool for `inlinePauseMs`.
   */
  inlineAverageMs?: number;
  inlineLimitMs?: number;
  inlinePauseMs?: number;
}

/**
 * The sync that `synchronous=FULL` makes at every WAL commit, done by hookrelay instead. A group commit's transaction
 * commits with `synchronous=NORMAL` (its frames reach the WAL file but are not synced), then its callers wait for one
 * of these syncs, started after their commit.
 *
 * Two ways to sync:
 * - `syncNow`, on the event loop, for a batch whose callers wait for durability (accepts). On a disk that syncs in a
 *   fraction of a millisecond this costs less than a hand-off to the thread pool: no wake-ups between threads, and
 *   the requests that arrive meanwhile make the next batch larger. Syncs slow on average (a slow disk), or one very
 *   slow sync (a failing disk), send syncs to the thread pool for a while, then the event loop tries again: a disk
 *   that turns slow stalls the event loop for one sync, however long it takes, and no more until the pause ends.
 * - `sync`, in libuv's thread pool, for everything else (attempt outcomes, whose callers do not wait) and while the
 *   disk is slow. Syncs overlap: a commit made while a sync runs starts its own at once (up to `maxRunning`; past
 *   that, one sync starts as soon as another ends and covers every commit waiting by then). A sync makes durable
 *   everything written to the file before it was called, so whichever sync ends first answers every commit made
 *   before it started.
 *
 * Same guarantee as FULL: a caller is answered only after the WAL frames of its commit are on disk. (In WAL mode FULL
 * differs from NORMAL only by that per-commit sync; checkpoints sync in both.) It is an fdatasync: on Linux it covers
 * the frames and the file's size, which is all that recovery reads (the file's times are what it leaves out). Syncs
 * work per file, so the WAL's own descriptor here covers the writes SQLite made through its descriptor. A failed
 * sync is final for the process: see `fail`.
 */
export class WalSync {
  /**
   * One descriptor of the WAL per sync that may run at once (the last one for the event loop's): the kernel reports a
   * write-back error once per open file, so two syncs at once through one descriptor could see it in only one of them.
   */
  private readonly fds: (number | null)[];
  /** Which descriptors a thread-pool sync is using: as many syncs run there as are true. */
  private readonly slotBusy: boolean[];
  /** Commits numbered in order; `durable` is the last one known to be on disk. */
  private committed = 0;
  private durable = 0;
  /** The last commit a started sync covers: commits after it need another sync. */
  private covered = 0;
  private waiters: Waiter[] = [];
  /** Set by the first failed sync; from then on every sync fails (see `fail`). */
  private broken: Error | null = null;
  /** Syncs go to the thread pool until then (after a slow sync on the event loop). */
  private inlineAfter = 0;
  /** Moving average of the last syncs on the calling thread, in ms. */
  private inlineAverage = 0;
  private readonly inline: boolean;
  private readonly syncFile: (slot: number) => Promise<void>;
  private readonly syncFileNow: () => void;
  private readonly now: () => number;
  private readonly inlineAverageMs: number;
  private readonly inlineLimitMs: number;
  private readonly inlinePauseMs: number;

  constructor(
    private readonly walPath: string,
    options: WalSyncOptions = {},
  ) {
    this.inline = options.inline ?? true;
    const maxRunning = options.maxRunning ?? 2;
    this.fds = Array.from({ length: maxRunning + 1 }, () => null);
    this.slotBusy = Array.from({ length: maxRunning }, () => false);
    this.syncFile = options.syncFile ?? ((slot) => this.fdatasync(slot));
    this.syncFileNow = options.syncFileNow ?? (() => fdatasyncSync(this.open(maxRunning)));
    this.now = options.now ?? (() => performance.now());
    this.inlineAverageMs = options.inlineAverageMs ?? 1;
    this.inlineLimitMs = options.inlineLimitMs ?? 10;
    this.inlinePauseMs = options.inlinePauseMs ?? 250;
  }

  /** Whether `syncNow` may be used: the last syncs on the event loop were quick. */
  get inlineReady(): boolean {
    return this.inline && (this.inlineAfter === 0 || this.now() >= this.inlineAfter);
  }

  /** Resolves once everything committed before this call is durable. */
  sync(): Promise<void> {
    if (this.broken) return Promise.reject(this.broken);
    const commit = ++this.committed;
    const done = new Promise<void>((resolve, reject) => this.waiters.push({ commit, resolve, reject }));
    if (this.slotBusy.includes(false)) this.start();
    return done;
  }

  /** Syncs on the calling thread: everything committed before this call is durable when it returns. Throws when the sync fails. */
  syncNow(): void {
    if (this.broken) throw this.broken;
    const covers = ++this.committed;
    this.covered = covers;
    const started = this.now();
    let failure: Error | null = null;
    try {
      this.syncFileNow();
    } catch (error) {
      failure = this.named(error);
    }
    const ended = this.now();
    const took = ended - started;
    this.inlineAverage += (took - this.inlineAverage) / 8;
    if (this.inlineAverage > this.inlineAverageMs || took > this.inlineLimitMs) {
      this.inlineAfter = ended + this.inlinePauseMs;
      this.inlineAverage = 0;
    }
    if (failure !== null) throw this.fail(failure);
    this.settle(covers);
  }

  close(): void {
    this.fds.forEach((fd, slot) => {
      if (fd !== null) closeSync(fd);
      this.fds[slot] = null;
    });
  }

  private start(): void {
    const covers = this.committed;
    this.covered = covers;
    const slot = this.slotBusy.indexOf(false);
    this.slotBusy[slot] = true;
    this.syncFile(slot).then(
      () => this.ended(slot, covers, null),
      (error) => this.ended(slot, covers, error),
    );
  }

  private ended(slot: number, covers: number, error: unknown): void {
    this.slotBusy[slot] = false;
    if (this.broken) return;
    if (error !== null) {
      this.fail(error as Error);
      return;
    }
    this.settle(covers);
    if (this.covered < this.committed) this.start();
  }

  /** A sync covering the commits up to `covers` succeeded: answer every commit it made durable. */
  private settle(covers: number): void {
    this.durable = Math.max(this.durable, covers);
    const still: Waiter[] = [];
    for (const waiter of this.waiters) {
      if (waiter.commit <= this.durable) waiter.resolve();
      else still.push(waiter);
    }
    this.waiters = still;
  }

  /**
   * A sync failed. The kernel may have dropped the pages it could not write and marked them clean, so a later sync
   * can succeed without them; and SQLite's recovery stops at the first frame missing from the WAL, so no commit made
   * after the lost frames would survive a restart either. Every waiting commit is refused, and every later sync fails
   * until a restart recovers the file (as PostgreSQL stops after a failed fsync).
   */
  private fail(error: Error): Error {
    this.broken = Object.assign(new Error(`${error.message}; what was written since may not be on disk: restart hookrelay`), { code: 'SQLITE_IOERR_FSYNC' });
    for (const waiter of this.waiters) waiter.reject(error);
    this.waiters = [];
    return error;
  }

  /** Opened on first use: SQLite creates the WAL file at the first write. */
  private open(slot: number): number {
    return (this.fds[slot] ??= openSync(this.walPath, 'r'));
  }

  private async fdatasync(slot: number): Promise<void> {
    try {
      const fd = this.open(slot);
      await new Promise<void>((resolve, reject) => fdatasync(fd, (error) => (error ? reject(error) : resolve())));
    } catch (error) {
      throw this.named(error);
    }
  }

  /** Named as SQLite names a failed sync, so that it is answered like any storage failure (503). */
  private named(error: unknown): Error {
    return Object.assign(new Error(`syncing the write-ahead log ${this.walPath} failed: ${(error as Error).message}`), { code: 'SQLITE_IOERR_FSYNC' });
  }
}
