import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { idFloor, newId } from '../../src/domain/ids.js';

describe('time-sortable ids', () => {
  it('bound a time range as an id range: idFloor(t) ≤ an id made at t < idFloor(t + 1)', () => {
    for (const t of [0, 1, 61, 62, Date.UTC(2026, 11, 7), Date.UTC(2026, 11, 7) + 999]) {
      const id = newId('msg', t);
      assert.ok(idFloor('msg', t) <= id && id < idFloor('msg', t + 1), `${t}: ${id}`);
    }
  });

  it('clamp a time outside what an id holds to the floor or the ceiling of every id, never a malformed bound', () => {
    const now = newId('msg', Date.UTC(2026, 11, 7));
    assert.equal(idFloor('msg', Date.UTC(1969, 0, 1)), 'msg_00000000');
    assert.equal(idFloor('msg', Number.NaN), 'msg_00000000');
    assert.ok(idFloor('msg', Date.UTC(1969, 0, 1)) < now);
    assert.equal(idFloor('msg', Date.UTC(9000, 0, 1)), 'msg_zzzzzzzz');
    assert.ok(now < idFloor('msg', Date.UTC(9000, 0, 1)));
  });

  it('are the prefix, an underscore and 25 base62 characters, unique and in creation order within a millisecond and across them', () => {
    const t = Date.UTC(2026, 11, 7, 21, 0, 0);
    const ids: string[] = [];
    for (let ms = t; ms < t + 3; ms++) for (let i = 0; i < 500; i++) ids.push(newId(i % 2 ? 'atmpt' : 'msg', ms).replace(/^[a-z]+_/, ''));
    for (const prefix of ['app', 'ep', 'msg', 'atmpt', 'src', 'key']) assert.match(newId(prefix, t), new RegExp(`^${prefix}_[0-9A-Za-z]{25}$`));
    assert.equal(new Set(ids).size, ids.length);
    assert.deepEqual([...ids].sort(), ids);
    // The time part is the time's base62 (what idFloor bounds).
    assert.equal(newId('msg', t).slice(0, 12), idFloor('msg', t));
  });
});
