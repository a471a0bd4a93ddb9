import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Database } from '../../src/store/sqlite/driver.js';
import { GroupCommit } from '../../src/store/sqlite/group-commit.js';
import { WalSync } from '../../src/store/sqlite/wal-sync.js';

/** GroupCommit on a real in-memory SQLite database. */
function fixture(hooks: ConstructorParameters<typeof GroupCommit>[2] = {}, wal: ConstructorParameters<typeof GroupCommit>[3] = null) {
  const db = new Database(':memory:');
  db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL UNIQUE)');
  const insert = db.prepare('INSERT INTO t (v) VALUES (?)');
  const commits = new GroupCommit(db, 2048, hooks, wal);
  const rows = () => (db.prepare('SELECT v FROM t ORDER BY id').all() as { v: string }[]).map((r) => r.v);
  return { db, commits, rows, write: (v: string, durable = true) => commits.run(() => insert.run(v).lastInsertRowid, durable) };
}

/**
 * A WalSync whose syncs the test ends: `calls[i]` is the i-th sync asked for; `finish()` ends it (covering every commit
 * asked for before it), `fail()` ends it with an error, as the sync thread would report them.
 */
function heldSync() {
  const calls: { finish: () => void; fail: (error: Error) => void }[] = [];
  const wal = new WalSync('/nonexistent-wal', (_path, settled) => {
    let synced = 0;
    return {
      request: (commit) => calls.push({ finish: () => ((synced = commit), settled(null)), fail: (error) => settled(error) }),
      completed: () => synced,
      keepAlive: () => {},
      close: () => {},
    };
  });
  return { wal, calls };
}

const settledYet = async (promise: Promise<unknown>) => {
  let done = false;
  void promise.then(() => (done = true), () => (done = true));
  await new Promise((resolve) => setImmediate(resolve));
  return done;
};

describe('group commit', () => {
  it('writes of one turn share one transaction; a write that throws is rolled back alone and rejects only its caller', async () => {
    let commits = 0;
    const f = fixture({ settled: (error) => error === null && commits++ });
    const results = await Promise.allSettled([f.write('a'), f.write('b'), f.write('a'), f.write('c')]);
    assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
    assert.match(String((results[2] as PromiseRejectedResult).reason), /UNIQUE/);
    assert.deepEqual(f.rows(), ['a', 'b', 'c']);
    assert.equal(commits, 1, 'one commit for the turn');
  });

  it('a write that throws after writing part of its rows leaves none of them, alone or in a batch; the others run again and commit', async () => {
    let rolledBack = 0;
    const f = fixture({ rolledBack: () => rolledBack++ });
    const insert = f.db.prepare('INSERT INTO t (v) VALUES (?)');
    const runs: string[] = [];
    const partial = (v: string) => () => {
      insert.run(`${v}-first`);
      throw new Error(`${v} failed halfway`);
    };
    const counted = (v: string) => () => {
      runs.push(v);
      return insert.run(v).lastInsertRowid;
    };
    const alone = await Promise.allSettled([f.commits.run(partial('alone'))]);
    assert.equal(alone[0].status, 'rejected');
    assert.deepEqual(f.rows(), []);
    const results = await Promise.allSettled([f.commits.run(counted('a')), f.commits.run(partial('b')), f.commits.run(counted('c'))]);
    assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled']);
    assert.match(String((results[1] as PromiseRejectedResult).reason), /b failed halfway/);
    assert.deepEqual(f.rows(), ['a', 'c']);
    assert.deepEqual(runs, ['a', 'a', 'c'], 'the batch ran again after the failure, each write once more');
    assert.equal(rolledBack, 2, 'told that what the batch had written was rolled back');
  });

  it('a failing commit rejects every caller of the batch and leaves nothing written; the next batch commits', async () => {
    let refuse = true;
    const settled: unknown[] = [];
    const committed: string[][] = [];
    const f = fixture({
      beforeCommit: () => {
        if (refuse) throw new Error('the disk is full');
      },
      committed: () => committed.push(f.rows()),
      settled: (error) => settled.push(error),
    });
    const results = await Promise.allSettled([f.write('x'), f.write('y')]);
    assert.deepEqual(results.map((r) => r.status), ['rejected', 'rejected']);
    assert.deepEqual(committed, [], 'nothing was committed');
    for (const r of results) assert.match(String((r as PromiseRejectedResult).reason), /disk is full/);
    assert.deepEqual(f.rows(), [], 'a rejected batch left rows behind');
    assert.equal(f.db.inTransaction, false);
    refuse = false;
    await f.write('z');
    assert.deepEqual(f.rows(), ['z']);
    assert.deepEqual(committed, [['z']], 'the committed hook runs once, after the commit');
    assert.equal(settled.length, 2);
    assert.match(String(settled[0]), /disk is full/);
    assert.equal(settled[1], null);
  });

  it('runs queued work in order, so a later write (a lease release) never overtakes an earlier one (an outcome)', async () => {
    const f = fixture();
    const order: string[] = [];
    await Promise.all([f.commits.run(() => order.push('outcome')), f.commits.run(() => order.push('release'))]);
    assert.deepEqual(order, ['outcome', 'release']);
  });

  it('answers a durable write after the WAL sync that follows its commit, an outcome at the commit (and syncs it all the same)', async () => {
    const { wal, calls } = heldSync();
    const f = fixture({}, wal);
    const accept = f.write('accept');
    const outcome = f.write('outcome', false);
    assert.equal(await settledYet(outcome), true, 'the outcome is answered at the commit');
    assert.equal(await settledYet(accept), false, 'the accept waits for its sync');
    assert.equal(calls.length, 1);
    calls[0].finish();
    await accept;
    assert.deepEqual(f.rows(), ['accept', 'outcome']);

    await Promise.all([f.write('o1', false), f.write('o2', false)]);
    assert.equal(calls.length, 2, 'a batch of outcomes alone is synced too, without anyone waiting for it');
    calls[1].finish();
    assert.deepEqual(f.rows(), ['accept', 'outcome', 'o1', 'o2']);
  });

  it('a failed WAL sync rejects the durable callers of its batch, and of every batch after it (a restart recovers the file)', async () => {
    const { wal, calls } = heldSync();
    const settled: unknown[] = [];
    const f = fixture({ settled: (error) => settled.push(error) }, wal);
    const accept = f.write('accept');
    const outcome = f.write('outcome', false);
    await outcome;
    calls[0].fail(Object.assign(new Error('EIO'), { code: 'SQLITE_IOERR_FSYNC' }));
    await assert.rejects(accept, /EIO/);
    assert.match(String(settled.at(-1)), /EIO/);
    await assert.rejects(f.write('next accept'), /restart hookrelay/);
    assert.equal(calls.length, 1, 'no sync is tried after a failed one');
    assert.match(String(settled.at(-1)), /restart hookrelay/, 'the store goes on reporting the failure');
    await f.write('an outcome', false);
  });

  it('with a WAL sync the connection is left at FULL between group commits; without one, a store opened NORMAL stays NORMAL', () => {
    const { wal } = heldSync();
    const synced = fixture({}, wal);
    assert.equal(synced.db.pragma('synchronous', { simple: true }), 2, 'FULL for the writes outside group commits');
    const plain = new Database(':memory:');
    plain.pragma('synchronous = NORMAL');
    new GroupCommit(plain);
    assert.equal(plain.pragma('synchronous', { simple: true }), 1, 'a store opened NORMAL stays NORMAL');
  });
});
