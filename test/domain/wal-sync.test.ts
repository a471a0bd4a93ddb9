import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { WalSync } from '../../src/store/sqlite/wal-sync.js';

type Held = { slot: number; finish: () => void; fail: (error: Error) => void };

/** A WalSync whose thread-pool syncs are held until the test ends them, in any order. */
function held(maxRunning = 2) {
  const syncs: Held[] = [];
  const wal = new WalSync('/nonexistent-wal', { maxRunning, syncFile: (slot) => new Promise<void>((finish, fail) => syncs.push({ slot, finish, fail })) });
  return { wal, syncs };
}

/** A WalSync whose syncs on the calling thread take `took` ms of a fake clock, or fail with `failure`; thread-pool syncs are held. */
function timed(options: { inlineAverageMs?: number; inlineLimitMs?: number; inlinePauseMs?: number } = {}) {
  const clock = { ms: 1_000, took: 0.2, failure: null as Error | null, inlineSyncs: 0 };
  const syncs: Held[] = [];
  const wal = new WalSync('/nonexistent-wal', {
    ...options,
    maxRunning: 1,
    now: () => clock.ms,
    syncFile: (slot) => new Promise<void>((finish, fail) => syncs.push({ slot, finish, fail })),
    syncFileNow: () => {
      clock.inlineSyncs++;
      clock.ms += clock.took;
      if (clock.failure) throw clock.failure;
    },
  });
  return { wal, syncs, clock };
}

const turn = () => new Promise((resolve) => setImmediate(resolve));

function watch(promise: Promise<void>) {
  const state = { settled: 'no' as 'no' | 'resolved' | 'rejected' };
  promise.then(() => (state.settled = 'resolved'), () => (state.settled = 'rejected'));
  return state;
}

describe('WAL sync', () => {
  it('a commit made while a sync runs starts its own at once, on a descriptor of its own; the later sync, ending first, answers both commits', async () => {
    const { wal, syncs } = held();
    const first = watch(wal.sync());
    const second = watch(wal.sync());
    assert.equal(syncs.length, 2, 'two syncs overlap');
    assert.deepEqual(syncs.map((s) => s.slot), [0, 1], 'each sees write-back errors itself');
    syncs[1].finish();
    await turn();
    assert.deepEqual([first.settled, second.settled], ['resolved', 'resolved'], 'the second sync started after both commits');
    syncs[0].finish();
    await turn();
    const third = watch(wal.sync());
    assert.equal(syncs[2].slot, 0, 'a free descriptor is used again');
    syncs[2].finish();
    await turn();
    assert.equal(third.settled, 'resolved');
  });

  it('the earlier sync ending first answers only the commits made before it started', async () => {
    const { wal, syncs } = held();
    const first = watch(wal.sync());
    const second = watch(wal.sync());
    syncs[0].finish();
    await turn();
    assert.deepEqual([first.settled, second.settled], ['resolved', 'no']);
    const third = watch(wal.sync());
    assert.equal(syncs[2].slot, 0, 'not the descriptor of the sync still running');
    syncs[1].finish();
    await turn();
    assert.deepEqual([second.settled, third.settled], ['resolved', 'no']);
    syncs[2].finish();
    await turn();
    assert.equal(third.settled, 'resolved');
  });

  it('past the limit, commits wait for a running sync to end, then share one new sync', async () => {
    const { wal, syncs } = held(1);
    const first = watch(wal.sync());
    const second = watch(wal.sync());
    const third = watch(wal.sync());
    assert.equal(syncs.length, 1);
    syncs[0].finish();
    await turn();
    assert.deepEqual([first.settled, second.settled, third.settled], ['resolved', 'no', 'no'], 'the first sync started before the later commits');
    assert.equal(syncs.length, 2, 'one sync for both waiting commits');
    syncs[1].finish();
    await turn();
    assert.deepEqual([second.settled, third.settled], ['resolved', 'resolved']);
  });

  it('a failed sync refuses every waiting commit, those a later sync covers too, and every sync after it: a later success proves nothing', async () => {
    const { wal, syncs } = held();
    const first = wal.sync();
    const firstState = watch(first);
    const second = watch(wal.sync());
    syncs[0].fail(new Error('EIO'));
    await turn();
    assert.deepEqual([firstState.settled, second.settled], ['rejected', 'rejected']);
    await assert.rejects(first, /EIO/);
    syncs[1].finish();
    await turn();
    assert.equal(second.settled, 'rejected', 'the kernel may have dropped the pages the failed sync could not write');
    await assert.rejects(wal.sync(), (error: Error & { code?: string }) => error.code === 'SQLITE_IOERR_FSYNC' && /restart hookrelay/.test(error.message));
    assert.throws(() => wal.syncNow(), /restart hookrelay/);
    assert.equal(syncs.length, 2, 'no sync is started once one failed');
  });

  it('a sync on the event loop makes durable every commit before it; a thread-pool sync it covered starts no other', async () => {
    const { wal, syncs, clock } = timed();
    const running = watch(wal.sync());
    const waiting = watch(wal.sync());
    assert.equal(syncs.length, 1, 'the second commit waits for the running sync (one at a time)');
    wal.syncNow();
    assert.equal(clock.inlineSyncs, 1);
    await turn();
    assert.deepEqual([running.settled, waiting.settled], ['resolved', 'resolved'], 'covered by the later sync');
    syncs[0].finish();
    await turn();
    assert.equal(syncs.length, 1, 'nothing is left for another sync to cover');
  });

  it('a failed sync on the event loop throws, named as a storage failure, refuses the commits waiting, and every sync after it fails', async () => {
    const { wal, clock } = timed();
    const earlier = watch(wal.sync());
    clock.failure = Object.assign(new Error('EIO: i/o error'), { code: 'EIO' });
    assert.throws(() => wal.syncNow(), (error: Error & { code?: string }) => error.code === 'SQLITE_IOERR_FSYNC' && /write-ahead log .*EIO/.test(error.message));
    await turn();
    assert.equal(earlier.settled, 'rejected');
    clock.failure = null;
    assert.throws(() => wal.syncNow(), /EIO.*restart hookrelay/);
    assert.equal(clock.inlineSyncs, 1, 'not tried again');
  });

  it('syncs on the event loop slow on average, or one very slow, send syncs to the thread pool for a pause; then they come back', () => {
    const { wal, clock } = timed({ inlineAverageMs: 1, inlineLimitMs: 10, inlinePauseMs: 1_000 });
    assert.equal(wal.inlineReady, true);
    wal.syncNow();
    clock.took = 3;
    wal.syncNow();
    assert.equal(wal.inlineReady, true, 'one sync of 3 ms among quick ones changes nothing');
    let slow = 1;
    while (wal.inlineReady) {
      wal.syncNow();
      slow++;
    }
    assert.ok(slow > 2 && slow < 8, `the average passed 1 ms after ${slow} syncs of 3 ms`);
    clock.ms += 999;
    assert.equal(wal.inlineReady, false);
    clock.ms += 1;
    assert.equal(wal.inlineReady, true, 'after the pause');
    clock.took = 0.2;
    wal.syncNow();
    assert.equal(wal.inlineReady, true, 'the average starts again after a pause');
    clock.took = 12;
    wal.syncNow();
    assert.equal(wal.inlineReady, false, 'one sync over the 10 ms limit');
    assert.equal(new WalSync('/nonexistent-wal', { inline: false }).inlineReady, false, 'never when inline syncs are off');
  });
});
