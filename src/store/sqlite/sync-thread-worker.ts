import { closeSync, fdatasyncSync, openSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { COMPLETED, REQUESTED, STOP, type SyncThreadData } from './sync-thread.js';

/**
 * The loop of a sync thread: waits for a commit number newer than the last one synced, syncs the file, publishes that
 * number and posts a message (to wake the event loop if it is waiting). One sync covers every commit requested before it
 * started. A failed sync ends the thread: a later sync could succeed without the pages the kernel dropped.
 */
const { path, state: buffer } = workerData as SyncThreadData;
const state = new BigInt64Array(buffer);
let fd: number | null = null;
try {
  for (;;) {
    const requested = Atomics.load(state, REQUESTED);
    if (requested === STOP) break;
    if (requested === Atomics.load(state, COMPLETED)) {
      Atomics.wait(state, REQUESTED, requested);
      continue;
    }
    fd ??= openSync(path, 'r');
    fdatasyncSync(fd);
    Atomics.store(state, COMPLETED, requested);
    parentPort!.postMessage(null);
  }
} catch (error) {
  parentPort!.postMessage({ failed: (error as Error).message });
} finally {
  if (fd !== null) closeSync(fd);
}
