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
  /** A sync in the thread pool; the WAL file's fdatasync unless a test holds it. */
  syncFile?: () => Promise<void>;
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
 *   slow sync (a failing disk), send syncs to the thread pool for a while, so that a slow disk never stalls the event
 *   loop for long; then the event loop tries again.
 * - `sync`, in libuv's thread pool, for everything else (attempt outcomes, whose callers do not wait) and while the
 *   disk is slow. Syncs overlap: a commit made while a sync runs starts its own at once (up to `maxRunning`; past
 *   that, one sync starts as soon as another ends and covers every commit waiting by then). A sync makes durable
 *   everything written to the file before it was called, so whichever sync ends first answers every commit made
 *   before it started.
 *
 * Same guarantee as FULL: a caller is answered only after the WAL frames of its commit are on disk. (In WAL mode FULL
 * differs from NORMAL only by that per-commit sync; checkpoints sync in both.) It is an fdatasync, as SQLite's own:
 * it covers the frames and the file's size, which is all that recovery reads. Syncs work per file, so the WAL's own
 * descriptor here covers the writes SQLite made through its descriptor.
 */
export class WalSync {
  private fd: number | null = null;
  /** Commits numbered in order; `durable` is the last one known to be on disk. */
  private committed = 0;
  private durable = 0;
  /** The last commit a started sync covers: commits after it need another sync. */
  private covered = 0;
  private running = 0;
  private waiters: Waiter[] = [];
  /** Syncs go to the thread pool until then (after a slow sync on the event loop). */
  private inlineAfter = 0;
  /** Moving average of the last syncs on the calling thread, in ms. */
  private inlineAverage = 0;
  private readonly inline: boolean;
  private readonly maxRunning: number;
  private readonly syncFile: () => Promise<void>;
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
    this.maxRunning = options.maxRunning ?? 2;
    this.syncFile = options.syncFile ?? (() => this.fdatasync());
    this.syncFileNow = options.syncFileNow ?? (() => fdatasyncSync(this.open()));
    this.now = options.now ?? (() => performance.now());
    this.inlineAverageMs = options.inlineAverageMs ?? 1;
    this.inlineLimitMs = options.inlineLimitMs ?? 10;
    this.inlinePauseMs = options.inlinePauseMs ?? 250;
  }

  /** Whether `syncNow` may be used: the last sync on the event loop was quick. */
  get inlineReady(): boolean {
    return this.inline && (this.inlineAfter === 0 || this.now() >= this.inlineAfter);
  }

  /** Resolves once everything committed before this call is durable. */
  sync(): Promise<void> {
    const commit = ++this.committed;
    const done = new Promise<void>((resolve, reject) => this.waiters.push({ commit, resolve, reject }));
    if (this.running < this.maxRunning) this.start();
    return done;
  }

  /** Syncs on the calling thread: everything committed before this call is durable when it returns. Throws when the sync fails. */
  syncNow(): void {
    const covers = ++this.committed;
    this.covered = covers;
    const started = this.now();
    let failure: unknown = null;
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
    this.settle(covers, failure);
    if (failure !== null) throw failure;
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }

  private start(): void {
    const covers = this.committed;
    this.covered = covers;
    this.running++;
    this.syncFile().then(
      () => this.ended(covers, null),
      (error) => this.ended(covers, error),
    );
  }

  private ended(covers: number, error: unknown): void {
    this.running--;
    this.settle(covers, error);
    if (this.covered < this.committed && this.running < this.maxRunning) this.start();
  }

  /** A sync covering the commits up to `covers` ended: answer every commit it made durable, or refuse those it covered. */
  private settle(covers: number, error: unknown): void {
    if (error === null) this.durable = Math.max(this.durable, covers);
    const still: Waiter[] = [];
    for (const waiter of this.waiters) {
      if (waiter.commit <= this.durable) waiter.resolve();
      // A failed sync may have lost what it covered (the kernel can drop the pages it could not write): refuse it.
      else if (error !== null && waiter.commit <= covers) waiter.reject(error);
      else still.push(waiter);
    }
    this.waiters = still;
  }

  /** Opened on first use: SQLite creates the WAL file at the first write. */
  private open(): number {
    this.fd ??= openSync(this.walPath, 'r');
    return this.fd;
  }

  private async fdatasync(): Promise<void> {
    try {
      const fd = this.open();
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
