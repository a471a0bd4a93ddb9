import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { WalSync, type SyncRunner } from '../../src/store/sqlite/wal-sync.js';

/**
 * A WalSync whose syncs the test runs: `asked` is the newest commit asked for, `finish()` ends a sync covering it (as
 * the sync thread does: one sync at a time, each covering every commit asked for before it started), `fail()` ends it
 * with an error. `poll` is left to the test, as a busy event loop would look.
 */
function held() {
  const runner = { asked: 0, synced: 0, requests: 0, alive: false, closed: false };
  let settled: (failure: Error | null) => void = () => {};
  const wal = new WalSync('/nonexistent-wal', (_path, report) => {
    settled = report;
    const fake: SyncRunner = {
      request: (commit) => {
        runner.asked = commit;
        runner.requests++;
      },
      completed: () => runner.synced,
      keepAlive: (on) => (runner.alive = on),
      close: () => (runner.closed = true),
    };
    return fake;
  });
  return {
    wal,
    runner,
    /** A sync that started when `covers` was the newest commit asked for ends; its message arrives. */
    finish: (covers = runner.asked) => {
      runner.synced = covers;
      settled(null);
    },
    /** The synced number moves on in shared memory; the message has not arrived yet. */
    publish: (covers = runner.asked) => (runner.synced = covers),
    fail: (error: Error) => settled(error),
  };
}

const turn = () => new Promise((resolve) => setImmediate(resolve));

function watch(promise: Promise<void>) {
  const state = { settled: 'no' as 'no' | 'resolved' | 'rejected' };
  promise.then(() => (state.settled = 'resolved'), () => (state.settled = 'rejected'));
  return state;
}

describe('WAL sync', () => {
  it('a sync answers the commits asked for before it started, not those asked for while it ran', async () => {
    const { wal, runner, finish } = held();
    const first = watch(wal.sync());
    finish(1);
    const second = watch(wal.sync());
    await turn();
    assert.deepEqual([first.settled, second.settled], ['resolved', 'no']);
    assert.equal(runner.asked, 2, 'the second commit asked for a sync of its own');
    const third = watch(wal.sync());
    finish();
    await turn();
    assert.deepEqual([second.settled, third.settled], ['resolved', 'resolved'], 'one sync covers both commits asked for before it');
  });

  it('a busy event loop learns of a finished sync from shared memory, before its message arrives', async () => {
    const { wal, publish } = held();
    const first = watch(wal.sync());
    publish();
    await turn();
    assert.equal(first.settled, 'no', 'nobody looked yet');
    wal.poll();
    await turn();
    assert.equal(first.settled, 'resolved');
  });

  it('a failed sync refuses every waiting commit and every sync after it: a later success proves nothing', async () => {
    const { wal, runner, finish, fail } = held();
    const first = wal.sync();
    const firstState = watch(first);
    const second = watch(wal.sync());
    fail(new Error('EIO: i/o error'));
    await turn();
    assert.deepEqual([firstState.settled, second.settled], ['rejected', 'rejected']);
    await assert.rejects(first, (error: Error & { code?: string }) => error.code === 'SQLITE_IOERR_FSYNC' && /write-ahead log .*EIO/.test(error.message));
    finish();
    wal.poll();
    await assert.rejects(wal.sync(), (error: Error & { code?: string }) => error.code === 'SQLITE_IOERR_FSYNC' && /EIO.*restart hookrelay/.test(error.message));
    assert.equal(runner.requests, 2, 'no sync is asked for once one failed');
  });

  it('keeps the process alive while a sync is waited for, and only then', async () => {
    const { wal, runner, finish } = held();
    assert.equal(runner.alive, false, 'an idle store keeps nothing running');
    const first = wal.sync();
    assert.equal(runner.alive, true);
    finish();
    await first;
    assert.equal(runner.alive, false);
  });

  it('close waits for a sync of everything committed, those committed while it waits too, then stops the runner and refuses later syncs', async () => {
    const { wal, runner, finish } = held();
    void wal.sync().catch(() => undefined);
    const closing = wal.close();
    await turn();
    assert.equal(runner.closed, false, 'not before the last sync');
    const late = watch(wal.sync());
    finish(1);
    await turn();
    assert.equal(runner.closed, false, 'a commit made while closing is synced first');
    finish();
    await closing;
    assert.equal(late.settled, 'resolved');
    assert.equal(runner.closed, true);
    await assert.rejects(wal.sync(), (error: Error & { code?: string }) => error.code === 'SQLITE_IOERR_FSYNC' && /closed/.test(error.message));
  });

  it('on its real thread: syncs a real file, and a file that cannot be synced fails the sync as a storage failure', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wal-sync-'));
    try {
      const path = join(dir, 'store.db-wal');
      writeFileSync(path, 'frames');
      const wal = new WalSync(path);
      await Promise.all([wal.sync(), wal.sync()]);
      await wal.sync();
      await wal.close();

      const missing = new WalSync(join(dir, 'missing-wal'));
      await assert.rejects(missing.sync(), (error: Error & { code?: string }) => error.code === 'SQLITE_IOERR_FSYNC' && /missing-wal.*ENOENT/.test(error.message));
      await assert.rejects(missing.sync(), /restart hookrelay/);
      await missing.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
