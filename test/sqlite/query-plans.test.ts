import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';

/**
 * Lookups that run per request must seek an index, whatever the number of messages an app has: a plan that walks
 * `message_app` turns a GET by event id, or a provider's redelivery, into a scan of the app's whole history; one that
 * sorts pays for a sorter every time.
 */
/** A new store in a directory of its own, closed and removed after the test. */
function freshStore(t: TestContext): SqliteStore {
  const dir = mkdtempSync(join(tmpdir(), 'hookrelay-plans-'));
  const store = new SqliteStore({ path: join(dir, 'store.db') });
  t.after(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return store;
}

describe('SQLite query plans of per-request lookups', () => {
  it('finds a message by id or by event id, and a recent redelivery, with index seeks', async (t) => {
    const store = freshStore(t);
    const statements = (store as unknown as { stmt: Record<string, { source: string }> }).stmt;
    const expected: Record<string, RegExp> = {
      messageByPrimaryKey: /USING INDEX sqlite_autoindex_message_1|USING PRIMARY KEY/,
      newestByEventId: /USING INDEX message_event_id_lookup \(app_id=\? AND event_id=\?\)/,
      recentByEventId: /USING INDEX message_event_id_lookup \(app_id=\? AND event_id=\?\)/,
      messageByEventId: /USING INDEX message_event_id \(app_id=\? AND event_id=\?\)/,
      // Retention walks by id from its cursor: a range of the primary key's index, never the whole history.
      retentionWalk: /USING INDEX sqlite_autoindex_message_1 \(id>\? AND id<\?\)/,
      heldForRetention: /USING PRIMARY KEY \(message_id>\? AND message_id<\?\)/,
      // Attempts by start time are an id range (an attempt's id begins with its start time): no index on started_at to write.
      pruneAttempts: /USING (COVERING )?INDEX sqlite_autoindex_attempt_1 \(id<\?\)/,
      attemptsPerMinute: /USING INDEX sqlite_autoindex_attempt_1 \(id>\? AND id<\?\)/,
    };
    for (const [name, pattern] of Object.entries(expected)) {
      const sql = statements[name]?.source;
      assert.ok(sql, `statement ${name} exists`);
      const params = Array.from({ length: sql.split('?').length - 1 }, () => 'x');
      const plan = (store.db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as { detail: string }[]).map((r) => r.detail).join('; ');
      assert.match(plan, pattern, `${name}: ${plan}`);
      // A sorter per lookup costs as much as the seek (a provider's redelivery check runs for every inbound request).
      // The overview's count per minute groups its range in one (a row per minute): it runs per page view, not per request.
      if (name !== 'attemptsPerMinute') assert.doesNotMatch(plan, /TEMP B-TREE/, `${name} sorts: ${plan}`);
    }
  });

  it('lists an endpoint’s deliveries by message without a sorter, the failed ones through their own index, and keeps the status out of the index a delivery passes through', async (t) => {
    const store = freshStore(t);
    const prepared: string[] = [];
    const prepare = store.db.prepare.bind(store.db);
    store.db.prepare = ((sql: string) => (prepared.push(sql), prepare(sql))) as typeof store.db.prepare;
    const planOf = async (status?: 'failed' | 'pending') => {
      prepared.length = 0;
      await store.listDeliveriesByEndpoint('app_x', 'ep_x', status ? { status } : {}, { limit: 10 });
      const sql = prepared.find((text) => text.includes('FROM delivery d'))!;
      const params = Array.from({ length: sql.split('?').length - 1 }, () => 'x');
      return (prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as { detail: string }[]).map((r) => r.detail).join('; ');
    };
    for (const status of [undefined, 'pending'] as const) {
      const plan = await planOf(status);
      assert.match(plan, /SEARCH d USING INDEX delivery_endpoint \(endpoint_id=\?\)/, `${status ?? 'any'}: ${plan}`);
      assert.doesNotMatch(plan, /TEMP B-TREE/, `${status ?? 'any'} sorts: ${plan}`);
    }
    const failed = await planOf('failed');
    assert.match(failed, /SEARCH d USING INDEX delivery_failed \(endpoint_id=\?\)/, failed);
    assert.doesNotMatch(failed, /TEMP B-TREE/, failed);
    // A claim and an outcome change a delivery's status: an index with the status in its key would be written twice more.
    const columns = (prepare("SELECT name FROM pragma_index_info('delivery_endpoint')").all() as { name: string }[]).map((r) => r.name);
    assert.deepEqual(columns, ['endpoint_id', 'message_id']);
  });
});
