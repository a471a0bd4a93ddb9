import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { WalSync } from '../../src/store/sqlite/wal-sync.js';

/** A WalSync whose fsyncs are held until the test ends them, in any order. */
function held(maxRunning = 2) {
  const syncs: { finish: () => void; fail: (error: Error) => void }[] = [];
  const wal = new WalSync('/nonexistent-wal', { maxRunning, syncFile: () => new Promise<void>((finish, fail) => syncs.push({ finish, fail })) });
  return { wal, syncs };
}

/** A WalSync whose syncs on the calling thread take `took` ms of a fake clock, or fail with `failure`; thread-pool syncs are held. */
function timed(options: { inlineAverageMs?: number; inlineLimitMs?: number; inlinePauseMs?: number } = {}) {
  const clock = { ms: 1_000, took: 0.2, failure: null as Error | null, inlineSyncs: 0 };
  const syncs: { finish: () => void; fail: (error: Error) => void }[] = [];
  const wal = new WalSync('/nonexistent-wal', {
    ...options,
    now: () => clock.ms,
    syncFile: () => new Promise<void>((finish, fail) => syncs.push({ finish, fail })),
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
  it('a commit made while a sync runs starts its own at once; the later sync, ending first, answers both commits', async () => {
    const { wal, syncs } = held();
    const first = watch(wal.sync());
    const second = watch(wal.sync());
    assert.equal(syncs.length, 2, 'two syncs overlap');
    syncs[1].finish();
    await turn();
    assert.deepEqual([first.settled, second.settled], ['resolved', 'resolved'], 'the second sync started after both commits');
    syncs[0].finish();
    await turn();
  });

  it('the earlier sync ending first answers only the commits made before it started', async () => {
    const { wal, syncs } = held();
    const first = watch(wal.sync());
    const second = watch(wal.sync());
    syncs[0].finish();
    await turn();
    assert.deepEqual([first.settled, second.settled], ['resolved', 'no']);
    syncs[1].finish();
    await turn();
    assert.equal(second.settled, 'resolved');
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

  it('a failed sync refuses the commits it covered, though a sync started later succeeds; that one answers the commit after them', async () => {
    const { wal, syncs } = held();
    const first = wal.sync();
    const firstState = watch(first);
    const second = watch(wal.sync());
    syncs[0].fail(new Error('EIO'));
    await turn();
    assert.deepEqual([firstState.settled, second.settled], ['rejected', 'no']);
    await assert.rejects(first, /syncing|EIO/);
    syncs[1].finish();
    await turn();
    assert.deepEqual([firstState.settled, second.settled], ['rejected', 'resolved']);
  });

  it('a sync on the event loop makes durable every commit before it, those waiting for a thread-pool sync too', async () => {
    const { wal, syncs, clock } = timed();
    const earlier = watch(wal.sync());
    assert.equal(syncs.length, 1);
    wal.syncNow();
    assert.equal(clock.inlineSyncs, 1);
    await turn();
    assert.equal(earlier.settled, 'resolved', 'covered by the later sync');
    syncs[0].finish();
    await turn();
    assert.equal(earlier.settled, 'resolved');
  });

  it('a failed sync on the event loop throws, named as a storage failure, and refuses the commits waiting that it covered', async () => {
    const { wal, clock } = timed();
    const earlier = watch(wal.sync());
    clock.failure = Object.assign(new Error('EIO: i/o error'), { code: 'EIO' });
    assert.throws(() => wal.syncNow(), (error: Error & { code?: string }) => error.code === 'SQLITE_IOERR_FSYNC' && /write-ahead log .*EIO/.test(error.message));
    await turn();
    assert.equal(earlier.settled, 'rejected');
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
