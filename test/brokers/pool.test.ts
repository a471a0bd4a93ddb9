import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConnectionPool, type PooledConnection } from '../../src/pipeline/destinations/broker.js';
import { waitUntil } from '../helpers/wait.js';

/** A connection that records whether it was closed; `broken` can be set as a dropped socket would. */
class Counted implements PooledConnection {
  static opened = 0;
  broken = false;
  closed = false;
  readonly n = ++Counted.opened;
  async close(): Promise<void> {
    this.closed = true;
  }
}

describe('broker connection pool (one connection per endpoint)', () => {
  it('reuses the connection while the settings hold, replaces and closes it when they change', async () => {
    const pool = new ConnectionPool<Counted>();
    try {
      const first = await pool.get('ep_1', 'a', async () => new Counted());
      assert.equal(await pool.get('ep_1', 'a', async () => new Counted()), first);
      const changed = await pool.get('ep_1', 'b', async () => new Counted());
      assert.notEqual(changed, first);
      await waitUntil('the old connection closed', () => first.closed, 2_000);
      assert.equal(changed.closed, false);
      assert.equal(pool.size, 1);
    } finally {
      await pool.close();
    }
  });

  it('opens one connection for concurrent first deliveries, and dials again after a break or a failed dial', async () => {
    const pool = new ConnectionPool<Counted>();
    try {
      let dials = 0;
      const open = async () => (dials++, new Counted());
      const [a, b, c] = await Promise.all([pool.get('ep_2', 'a', open), pool.get('ep_2', 'a', open), pool.get('ep_2', 'a', open)]);
      assert.equal(dials, 1);
      assert.ok(a === b && b === c);
      a.broken = true;
      const next = await pool.get('ep_2', 'a', open);
      assert.notEqual(next, a);
      assert.equal(dials, 2);
      await assert.rejects(pool.get('ep_3', 'a', async () => Promise.reject(new Error('ECONNREFUSED'))), /ECONNREFUSED/);
      assert.ok((await pool.get('ep_3', 'a', open)) instanceof Counted, 'a failed dial must not be kept');
    } finally {
      await pool.close();
    }
  });

  it('closes a connection no delivery used for the idle time (how a deleted endpoint’s connection goes), and all on close', async () => {
    const pool = new ConnectionPool<Counted>(1_000);
    const idle = await pool.get('ep_deleted', 'a', async () => new Counted());
    await waitUntil('the idle connection closed', () => idle.closed, 10_000);
    assert.equal(pool.size, 0);
    const open = await pool.get('ep_4', 'a', async () => new Counted());
    await pool.close();
    assert.equal(open.closed, true);
    await assert.rejects(pool.get('ep_4', 'a', async () => new Counted()), /closed/);
  });
});
