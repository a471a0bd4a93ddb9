import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Database } from '../../src/store/sqlite/driver.js';
import { GroupCommit } from '../../src/store/sqlite/group-commit.js';

/** GroupCommit on a real in-memory SQLite database. */
function fixture(hooks: ConstructorParameters<typeof GroupCommit>[2] = {}) {
  const db = new Database(':memory:');
  db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL UNIQUE)');
  const insert = db.prepare('INSERT INTO t (v) VALUES (?)');
  const commits = new GroupCommit(db, 2048, hooks);
  const rows = () => (db.prepare('SELECT v FROM t ORDER BY id').all() as { v: string }[]).map((r) => r.v);
  return { db, commits, rows, write: (v: string) => commits.run(() => insert.run(v).lastInsertRowid) };
}

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

  it('a failing commit rejects every caller of the batch and leaves nothing written; the next batch commits', async () => {
    let refuse = true;
    const settled: unknown[] = [];
    const f = fixture({
      beforeCommit: () => {
        if (refuse) throw new Error('the disk is full');
      },
      settled: (error) => settled.push(error),
    });
    const results = await Promise.allSettled([f.write('x'), f.write('y')]);
    assert.deepEqual(results.map((r) => r.status), ['rejected', 'rejected']);
    for (const r of results) assert.match(String((r as PromiseRejectedResult).reason), /disk is full/);
    assert.deepEqual(f.rows(), [], 'a rejected batch left rows behind');
    assert.equal(f.db.inTransaction, false);
    refuse = false;
    await f.write('z');
    assert.deepEqual(f.rows(), ['z']);
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
});
