import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Leases } from '../../src/store/sqlite/leases.js';

const delivery = (endpointId: string, key: string | null = null, createdAt = 0) => ({ endpointId, appId: 'app', key, createdAt });

/**
 * The in-memory leases of an SQLite store (the conformance suite covers them through the Store interface; this covers
 * the bookkeeping a batch that fails or rolls back depends on).
 */
describe('SQLite leases', () => {
  it('counts slots and held deliveries per endpoint; an answered attempt frees its slot once, its outcome the delivery', () => {
    const leases = new Leases();
    leases.take(1, { owner: 'o', until: 100 }, delivery('e1'));
    leases.take(2, { owner: 'o', until: 100 }, delivery('e1'));
    leases.take(3, { owner: 'o', until: 100 }, delivery('e2'));
    assert.deepEqual([leases.slotsOf('e1'), leases.heldOf('e1'), leases.slotsOf('e2'), leases.size], [2, 2, 1, 3]);
    leases.answered(1);
    leases.answered(1);
    assert.deepEqual([leases.slotsOf('e1'), leases.heldOf('e1')], [1, 2], 'answered twice frees one slot');
    leases.stage(1);
    leases.committed();
    assert.deepEqual([leases.slotsOf('e1'), leases.heldOf('e1'), leases.has(1)], [1, 1, false], 'the outcome of an answered attempt frees no second slot');
    assert.deepEqual(leases.ids('e1'), [2]);
  });

  it('keeps a delivery held when the batch that wrote its outcome rolls back, wholly or to a mark', () => {
    const leases = new Leases();
    for (const id of [1, 2, 3]) leases.take(id, { owner: 'o', until: 100 }, delivery('e'));
    leases.stage(1);
    assert.equal(leases.holds(1, 'o'), false, 'an outcome already written in the open batch is not written twice');
    const mark = leases.stagedCount;
    leases.stage(2);
    leases.unstage(mark);
    assert.equal(leases.holds(2, 'o'), true, 'a write rolled back to its savepoint is staged no more');
    leases.unstage();
    assert.equal(leases.holds(1, 'o'), true);
    leases.committed();
    assert.equal(leases.size, 3, 'nothing staged, nothing freed');
    leases.stage(3);
    leases.committed();
    assert.deepEqual(leases.ids(), [1, 2]);
  });

  it('holds a lease for its owner only, renews it for its owner only, and drops it once expired', () => {
    const leases = new Leases();
    leases.take(1, { owner: 'a', until: 1_000 }, delivery('e'));
    leases.take(2, { owner: 'b', until: 1_000 }, delivery('e'));
    assert.deepEqual([leases.holds(1, 'a'), leases.holds(1, 'b')], [true, false]);
    leases.renew('a', [1, 2], 5_000);
    leases.expire(500);
    assert.equal(leases.size, 2, 'not expired yet');
    leases.expire(2_000);
    assert.deepEqual(leases.ids(), [1], "b's lease was not renewed by a");
    assert.equal(leases.slotsOf('e'), 1);
    assert.equal(leases.release('a'), 1);
    assert.equal(leases.size, 0);
  });

  it('tracks the keys held per key-ordered endpoint and counts held deliveries by creation time', () => {
    const leases = new Leases();
    leases.take(1, { owner: 'o', until: 100 }, delivery('e', 'k1', 10));
    leases.take(2, { owner: 'o', until: 100 }, delivery('e', 'k2', 20));
    leases.take(3, { owner: 'o', until: 100 }, delivery('f', null, 30));
    assert.deepEqual([...leases.keysOf('e').keys()].sort(), ['k1', 'k2']);
    assert.equal(leases.keysOf('f').size, 0);
    assert.equal(leases.countOf('app', 'e', 0, 15), 1);
    assert.equal(leases.countOf('app', 'e', 0, 100), 2);
    assert.equal(leases.countOf('other', 'e', 0, 100), 0, 'another tenant counts none');
    leases.free(1);
    assert.deepEqual([...leases.keysOf('e').keys()], ['k2']);
    assert.equal(leases.release(null), 2);
    assert.equal(leases.keysOf('e').size, 0);
  });
});
