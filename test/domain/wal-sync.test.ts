import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { WalSync } from '../../src/store/sqlite/wal-sync.js';

/** A WalSync whose fsyncs are held until the test ends them, in any order. */
function held(maxRunning = 2) {
  const syncs: { finish: () => void; fail: (error: Error) => void }[] = [];
  const wal = new WalSync('/nonexistent-wal', maxRunning, () => new Promise<void>((finish, fail) => syncs.push({ finish, fail })));
  return { wal, syncs };
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
});
