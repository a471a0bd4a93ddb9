import { closeSync, fsync, openSync } from 'node:fs';

/**
 * The fsync that `synchronous=FULL` makes at every WAL commit, done off the event loop. A group commit's transaction
 * commits with `synchronous=NORMAL` (its frames reach the WAL file but are not synced), then its callers wait for one
 * of these: an fsync of the WAL in libuv's thread pool, started after their commit. Meanwhile the event loop goes on
 * serving requests and sending deliveries — a FULL commit would have blocked it for the whole sync — and the next
 * batch may already commit. Commits that finish while a sync runs share the next one.
 *
 * Same guarantee as FULL: a caller is answered only after the WAL frames of its commit are on disk. (In WAL mode FULL
 * differs from NORMAL only by that per-commit sync; checkpoints sync in both.) Fsync works per file, so the WAL's own
 * descriptor here covers the writes SQLite made through its descriptor.
 */
export class WalSync {
  private fd: number | null = null;
  private running: Promise<void> | null = null;
  private next: Promise<void> | null = null;

  constructor(private readonly walPath: string) {}

  /** Resolves once everything committed before this call is durable. */
  sync(): Promise<void> {
    if (!this.running) {
      this.running = this.fsync().finally(() => (this.running = null));
      return this.running;
    }
    // The running sync may have started before the caller's commit: the caller needs the one after it.
    return (this.next ??= this.running.then(
      () => this.startNext(),
      () => this.startNext(),
    ));
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }

  private startNext(): Promise<void> {
    this.next = null;
    return this.sync();
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
