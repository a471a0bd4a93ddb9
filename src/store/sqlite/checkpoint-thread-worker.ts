import { workerData } from 'node:worker_threads';
import { COMMITS, STOPPED, type CheckpointThreadData } from './checkpoint-thread.js';
import { Database } from './driver.js';

/**
 * The loop of the checkpoint thread: waits for a commit, lets `intervalMs` pass since the last checkpoint, then runs a
 * passive checkpoint (the frames no reader still needs go into the database file, which is synced once they are in).
 * The commits made meanwhile wait for the next round.
 */
const { path, state: buffer, intervalMs } = workerData as CheckpointThreadData;
const state = new Int32Array(buffer);
const db = new Database(path, { timeout: 0 });
try {
  // In WAL mode NORMAL syncs the log before a checkpoint's copy and the database after it: what a checkpoint needs.
  db.pragma('synchronous = NORMAL');
  const stopped = () => Atomics.load(state, STOPPED) === 1;
  // From the count's start, not from its value now: commits made while this thread started are in the log too.
  let seen = 0;
  let last = 0;
  while (!stopped()) {
    Atomics.wait(state, COMMITS, seen);
    const wait = last + intervalMs - performance.now();
    // The stop flag's own slot: commits do not wake this wait, close does.
    if (wait > 0 && !stopped()) Atomics.wait(state, STOPPED, 0, wait);
    if (stopped()) break;
    seen = Atomics.load(state, COMMITS);
    try {
      db.pragma('wal_checkpoint(PASSIVE)');
    } catch {
      // A full disk or an I/O error: the log keeps the frames, and the next round tries again.
    }
    last = performance.now();
  }
} finally {
  db.close();
}
