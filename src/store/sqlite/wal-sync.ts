import { closeSync, fsync, openSync } from 'node:fs';

interface Waiter {
  commit: number;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * The fsync that `synchronous=FULL` makes at every WAL commit, done off the event loop. A group commit's transaction
 * commits with `synchronous=NORMAL` (its frames reach the WAL file but are not synced), then its callers wait for one
 * of these: an fsync of the WAL in libuv's thread pool, started after their commit. Meanwhile the event loop goes on
 * serving requests and sending deliveries — a FULL commit would have blocked it for the whole sync — and the next
 * batch may already commit.
 *
 * Syncs overlap: a commit made while a sync runs starts its own at once (up to `maxRunning`; past that, one sync
 * starts as soon as another ends and covers every commit waiting by then). An fsync makes durable everything written
 * to the file before it was called, so whichever sync ends first answers every commit made before it started — a
 * caller waits about one sync, not the rest of the running one and then its own.
 *
 * Same guarantee as FULL: a caller is answered only after the WAL frames of its commit are on disk. (In WAL mode FULL
 * differs from NORMAL only by that per-commit sync; checkpoints sync in both.) Fsync works per file, so the WAL's own
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

  constructor(
    private readonly walPath: string,
    private readonly maxRunning = 2,
    /** The sync itself; the WAL file's fsync unless a test holds it. */
    private readonly syncFile: () => Promise<void> = () => this.fsync(),
  ) {}

  /** Resolves once everything committed before this call is durable. */
  sync(): Promise<void> {
    const commit = ++this.committed;
    const done = new Promise<void>((resolve, reject) => this.waiters.push({ commit, resolve, reject }));
    if (this.running < this.maxRunning) this.start();
    return done;
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
    if (error === null) this.durable = Math.max(this.durable, covers);
    const still: Waiter[] = [];
    for (const waiter of this.waiters) {
      if (waiter.commit <= this.durable) waiter.resolve();
      // A failed sync may have lost what it covered (the kernel can drop the pages it could not write): refuse it.
      else if (error !== null && waiter.commit <= covers) waiter.reject(error);
      else still.push(waiter);
    }
    this.waiters = still;
    if (this.covered < this.committed && this.running < this.maxRunning) this.start();
  }

  private async fsync(): Promise<void> {
    try {
      // Opened on first use: SQLite creates the WAL file at the first write.
      this.fd ??= openSync(this.walPath, 'r');
      const fd = this.fd;
      await new Promise<void>((resolve, reject) => fsync(fd, (error) => (error ? reject(error) : resolve())));
    } catch (error) {
      // Named as SQLite names a failed sync, so that it is answered like any storage failure (503).
      throw Object.assign(new Error(`syncing the write-ahead log ${this.walPath} failed: ${(error as Error).message}`), { code: 'SQLITE_IOERR_FSYNC' });
    }
  }
}
