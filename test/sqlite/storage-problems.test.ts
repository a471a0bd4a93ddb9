import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { StorageProblems } from '../../src/store/sqlite/storage-guard.js';

describe('storage problems as the log watcher sees them', () => {
  it('report a failed write at the next look although a later write committed, once, while readiness follows the last write', () => {
    const problems = new StorageProblems();
    assert.equal(problems.sinceLastLook(), null);
    problems.settled('the disk is full (SQLITE_FULL)');
    problems.settled(null);
    // Readiness: the last batch committed. The watcher: writes failed since it last looked.
    assert.equal(problems.current, null);
    assert.equal(problems.sinceLastLook(), 'the disk is full (SQLITE_FULL)');
    assert.equal(problems.sinceLastLook(), null);
  });

  it('report a lasting failure at every look, and one that came and went after a look at the next', () => {
    const problems = new StorageProblems();
    problems.settled('the disk is full (SQLITE_FULL)');
    problems.settled('an I/O error (SQLITE_IOERR)');
    assert.equal(problems.sinceLastLook(), 'an I/O error (SQLITE_IOERR)');
    assert.equal(problems.sinceLastLook(), 'an I/O error (SQLITE_IOERR)');
    // Cleared after the watcher saw it: nothing failed since.
    problems.settled(null);
    assert.equal(problems.sinceLastLook(), null);
    problems.settled('the disk is full (SQLITE_FULL)');
    problems.settled(null);
    assert.equal(problems.sinceLastLook(), 'the disk is full (SQLITE_FULL)');
  });
});
