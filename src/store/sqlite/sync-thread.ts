import { Worker } from 'node:worker_threads';
import type { SyncRunner } from './wal-sync.js';

/** Slots of the shared state: the newest commit asked for (STOP ends the thread), and the newest one synced. */
export const REQUESTED = 0;
export const COMPLETED = 1;
export const STOP = -1n;

export interface SyncThreadData {
  path: string;
  state: SharedArrayBuffer;
}

/**
 * A thread of its own that syncs one file, one sync after another (see sync-thread-worker.ts). Asking costs the event
 * loop an atomic store and a wake-up; what is synced is read from shared memory, so the event loop learns it at its next
 * look (every write a group commit queues looks) without waiting for a message. The message each sync posts wakes the
 * loop only when it has nothing else to do.
 */
export class SyncThread implements SyncRunner {
  private readonly state = new BigInt64Array(new SharedArrayBuffer(2 * BigInt64Array.BYTES_PER_ELEMENT));
  private readonly worker: Worker;
  private ended = false;

  constructor(path: string, settled: (failure: Error | null) => void) {
    const data: SyncThreadData = { path, state: this.state.buffer as SharedArrayBuffer };
    this.worker = new Worker(new URL('./sync-thread-worker.js', import.meta.url), { workerData: data });
    // Alive only while a sync is waited for (keepAlive): an idle store must not keep the process running.
    this.worker.unref();
    this.worker.on('message', (message: null | { failed: string }) => settled(message === null ? null : new Error(message.failed)));
    this.worker.on('error', (error) => settled(error));
    this.worker.on('exit', (code) => {
      if (!this.ended) settled(new Error(`the sync thread stopped (exit code ${code})`));
    });
  }

  request(commit: number): void {
    if (this.ended) return;
    Atomics.store(this.state, REQUESTED, BigInt(commit));
    Atomics.notify(this.state, REQUESTED, 1);
  }

  completed(): number {
    return Number(Atomics.load(this.state, COMPLETED));
  }

  keepAlive(on: boolean): void {
    if (on) this.worker.ref();
    else this.worker.unref();
  }

  close(): void {
    if (this.ended) return;
    this.ended = true;
    this.worker.unref();
    Atomics.store(this.state, REQUESTED, STOP);
    Atomics.notify(this.state, REQUESTED, 1);
  }
}
