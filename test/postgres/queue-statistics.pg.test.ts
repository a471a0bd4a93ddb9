import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pg from 'pg';
import { KEY_HEADS } from '../../src/store/postgres/claim.js';
import { PostgresStore } from '../../src/store/postgres/postgres-store.js';
import { QueueStatistics } from '../../src/store/postgres/queue-statistics.js';
import { freshDatabase, skipWithoutPostgres } from '../helpers/postgres.js';
import { waitUntil } from '../helpers/wait.js';

const KEYS = 50;
const PER_KEY = 40;

/** Index names anywhere in an EXPLAIN (FORMAT JSON) plan. */
function indexesOf(node: { 'Index Name'?: string; Plans?: unknown[] }): string[] {
  return [...(node['Index Name'] ? [node['Index Name']] : []), ...((node.Plans ?? []) as (typeof node)[]).flatMap(indexesOf)];
}

describe('PostgreSQL: the delivery table analyzed by hookrelay', { skip: skipWithoutPostgres() }, () => {
  it('analyzes a never-analyzed queue once it has changed (not before, not again), after which a key walk seeks the key index', async (t) => {
    const database = await freshDatabase();
    // The schema is hookrelay's; the store is closed again so that only the statistics under test analyze.
    await (await PostgresStore.open({ url: database.url })).close();
    const pool = new pg.Pool({ connectionString: database.url, max: 2 });
    const errors: Error[] = [];
    const statistics = new QueueStatistics({ pool, checkEveryMs: 3_600_000, onError: (error) => errors.push(error) });
    t.after(async () => {
      await statistics.stop();
      await pool.end();
      await database.drop();
    });
    const tableStats = async () =>
      (await pool.query("SELECT c.reltuples::float8 AS tuples, s.analyze_count::int AS analyzed FROM pg_class c JOIN pg_stat_user_tables s ON s.relid = c.oid WHERE c.relname = 'delivery'")).rows[0] as { tuples: number; analyzed: number };

    assert.equal(await statistics.check(), false, 'an empty queue was analyzed');
    await pool.query("INSERT INTO app (id, name, created_at, updated_at) VALUES ('app_stats', 'stats', 0, 0)");
    await pool.query("INSERT INTO endpoint (id, app_id, url, max_in_flight, secrets, ordering, created_at, updated_at) VALUES ('ep_stats', 'app_stats', 'http://127.0.0.1:9/', 16, '[]', 'key', 0, 0)");
    await pool.query(
      `INSERT INTO message (id, app_id, event_type, content_type, created_at, ordering_key)
       SELECT 'msg_' || lpad(g::text, 8, '0'), 'app_stats', 'stats', 'application/json', g, 'customer:' || (g % ${KEYS}) FROM generate_series(1, ${KEYS * PER_KEY}) g`,
    );
    await pool.query(
      `INSERT INTO delivery (message_id, app_id, endpoint_id, status, next_attempt_at, created_at, updated_at, ordering_key)
       SELECT id, app_id, 'ep_stats', 'pending', 0, created_at, created_at, ordering_key FROM message`,
    );
    assert.equal((await tableStats()).tuples, -1, 'the table was analyzed before the check');

    // The table's change counters reach the statistics views a moment after the inserts commit.
    await waitUntil('the check to analyze the changed queue', () => statistics.check(), 15_000, 200);
    const analyzed = await tableStats();
    assert.equal(analyzed.tuples, KEYS * PER_KEY);
    assert.equal(analyzed.analyzed, 1);
    assert.equal(await statistics.check(), false, 'analyzed again without a change');
    assert.deepEqual(errors, []);

    // What the analyze is for: each key of the walk is one seek of the key index, not a scan of the endpoint's backlog.
    const { rows } = await pool.query(`EXPLAIN (FORMAT JSON) ${KEY_HEADS}`, ['ep_stats', '', null, 128, 1, true]);
    const indexes = indexesOf(rows[0]['QUERY PLAN'][0].Plan);
    assert.ok(indexes.includes('delivery_key_pending'), `the key walk reads ${indexes.join(', ')}`);
    assert.ok(!indexes.includes('delivery_pending_fifo'), `the key walk reads ${indexes.join(', ')}`);
  });

  it('leaves the analyze to whichever process holds its lock, without waiting for it', async (t) => {
    const database = await freshDatabase();
    await (await PostgresStore.open({ url: database.url })).close();
    const pool = new pg.Pool({ connectionString: database.url, max: 2 });
    const other = new pg.Client({ connectionString: database.url });
    await other.connect();
    const statistics = new QueueStatistics({ pool, checkEveryMs: 3_600_000, minChanges: 1, onError: (error) => assert.fail(error) });
    t.after(async () => {
      await statistics.stop();
      await other.end();
      await pool.end();
      await database.drop();
    });
    await pool.query("INSERT INTO app (id, name, created_at, updated_at) VALUES ('app_lock', 'lock', 0, 0)");
    await pool.query("INSERT INTO endpoint (id, app_id, url, max_in_flight, secrets, created_at, updated_at) VALUES ('ep_lock', 'app_lock', 'http://127.0.0.1:9/', 16, '[]', 0, 0)");
    await pool.query("INSERT INTO message (id, app_id, event_type, content_type, created_at) VALUES ('msg_lock', 'app_lock', 'e', 'application/json', 0)");
    await pool.query("INSERT INTO delivery (message_id, app_id, endpoint_id, status, next_attempt_at, created_at, updated_at) VALUES ('msg_lock', 'app_lock', 'ep_lock', 'pending', 0, 0, 0)");
    // The change reaches the statistics views a moment after it commits.
    const changed = async () => (await pool.query("SELECT n_mod_since_analyze::int AS n FROM pg_stat_user_tables WHERE relname = 'delivery'")).rows[0].n > 0;
    await waitUntil('the insert to be counted', changed, 15_000, 100);
    // Another process is analyzing: it holds the lock until its transaction ends, and every check meanwhile skips.
    await other.query('BEGIN');
    await other.query("SELECT pg_advisory_xact_lock(x'686b726c616e6c7a'::bigint)");
    assert.equal(await statistics.check(), false);
    assert.equal(await statistics.check(), false);
    await other.query('COMMIT');
    await waitUntil('the check to analyze once the lock is free', () => statistics.check(), 15_000, 200);
  });
});
