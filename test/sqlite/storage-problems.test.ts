import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FAILING_HOLD_MS, StorageProblems } from '../../src/store/sqlite/storage-guard.js';

describe('storage problems as readiness and the log see them', () => {
  it('keep a failed write for a few seconds although later writes commit, then clear by themselves', () => {
    let now = 1_000_000;
    const problems = new StorageProblems(() => now);
    assert.equal(problems.current, null);
    problems.settled('the disk is full (SQLITE_FULL)');
    // A small write commits a moment later: the failure is still what readiness and the log see.
    now += 10;
    problems.settled(null);
    assert.equal(problems.current, 'the disk is full (SQLITE_FULL)');
    now += FAILING_HOLD_MS - 11;
    assert.equal(problems.current, 'the disk is full (SQLITE_FULL)');
    now += 1;
    assert.equal(problems.current, null);
  });

  it('report the newest failure, held from its own time, and the lost file above any failure', () => {
    let now = 0;
    const problems = new StorageProblems(() => now);
    problems.settled('the disk is full (SQLITE_FULL)');
    now += 4_000;
    problems.settled('an I/O error (SQLITE_IOERR)');
    now += 4_000;
    assert.equal(problems.current, 'an I/O error (SQLITE_IOERR)');
    problems.lost = 'the database file /x.db was deleted while hookrelay was running';
    assert.equal(problems.current, problems.lost);
  });
});
