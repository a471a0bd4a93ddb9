import { Worker } from 'node:worker_threads';

/** Slots of the shared state: a count of commits (it wraps; only a change matters) and the stop flag. */
export const COMMITS = 0;
export const STOPPED = 1;

export interface CheckpointThreadData {
  path: string;
  state: SharedArrayBuffer;
  /** The least time between two checkpoints while commits go on. */
  intervalMs: number;
}

/**
 * Copies the write-ahead log into the database file on a thread of its own, with a second connection: a checkpoint
 * writes every page the log changed and syncs the database file, 10–30 ms on the event loop when a commit did it (every
 * ~32 MiB of log at 10,000 deliveries/s), long enough for the API's clients to open more connections, which the event
 * loop then accepts one per turn. The thread checkpoints passively (it never waits for, nor blocks, the writer) at most
 * every `intervalMs` while commits go on; a commit that finds the log long finishes the copy itself (open.ts).
 *
 * Asking costs the event loop an atomic add and a wake-up per group commit.
 */
export class CheckpointThread {
  private readonly state = new Int32Array(new SharedArrayBuffer(2 * Int32Array.BYTES_PER_ELEMENT));
  private readonly worker: Worker;
  private readonly exited: Promise<void>;
  private ended = false;

  constructor(path: string, intervalMs = 200) {
    const data: CheckpointThreadData = { path, state: this.state.buffer as SharedArrayBuffer, intervalMs };
    this.worker = new Worker(new URL('./checkpoint-thread-worker.js', import.meta.url), { workerData: data });
    // Never what keeps a process alive: the last commits are checkpointed by the connection's close.
    this.worker.unref();
    this.exited = new Promise((resolve) => this.worker.once('exit', () => resolve()));
    // A thread that failed to start leaves the checkpoints to the commits, as before it existed.
    this.worker.on('error', () => undefined);
  }

  /** A group commit wrote to the log. */
  committed(): void {
    if (this.ended) return;
    Atomics.add(this.state, COMMITS, 1);
    Atomics.notify(this.state, COMMITS, 1);
  }

  /** Stops the thread and waits for its connection to close (so that the main connection's close removes the log). */
  close(): Promise<void> {
    if (!this.ended) {
      this.ended = true;
      // Waited for now: alive until it has exited, or a process with nothing else to do would end here, mid-close.
      this.worker.ref();
      Atomics.store(this.state, STOPPED, 1);
      Atomics.add(this.state, COMMITS, 1);
      Atomics.notify(this.state, COMMITS, 1);
      Atomics.notify(this.state, STOPPED, 1);
    }
    return this.exited;
  }
}
