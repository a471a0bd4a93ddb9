import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pg from 'pg';
import { PICK_AND_LEASE } from '../../src/store/postgres/claim.js';
import { COMPLETE, PostgresStore } from '../../src/store/postgres/postgres-store.js';
import { freshDatabase, skipWithoutPostgres } from '../helpers/postgres.js';

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  'CTE Name'?: string;
  'Subplan Name'?: string;
  Filter?: string;
  Plans?: PlanNode[];
}

function* nodes(node: PlanNode): Generator<PlanNode> {
  yield node;
  for (const child of node.Plans ?? []) yield* nodes(child);
}

/** The plan of a prepared statement, custom (planned for these values) or generic (what a named statement settles on). */
async function planOf(client: pg.Client, sql: string, values: unknown[], mode: 'force_custom_plan' | 'force_generic_plan'): Promise<PlanNode> {
  await client.query(`SET plan_cache_mode = ${mode}`);
  await client.query('DEALLOCATE ALL');
  await client.query(`PREPARE probe AS ${sql}`);
  // EXECUTE takes literals only (a utility statement binds no parameters); each is cast to its parameter's type.
  const literal = (value: unknown): string => {
    if (value === null) return 'NULL';
    if (Array.isArray(value)) return client.escapeLiteral(`{${value.map((e) => (e === null ? 'NULL' : `"${String(e).replace(/["\\]/g, '\\$&')}"`)).join(',')}}`);
    return typeof value === 'string' ? client.escapeLiteral(value) : String(value);
  };
  const { rows } = await client.query(`EXPLAIN (FORMAT JSON) EXECUTE probe(${values.map(literal).join(', ')})`);
  return rows[0]['QUERY PLAN'][0].Plan as PlanNode;
}

/**
 * The claim and the outcome must stay index lookups by id when the statistics are wrong in the way a real database's
 * are: analysed while nearly every delivery had succeeded, then a backlog arrives (a fresh install under load, a
 * receiver coming back after an outage). Either way, a plan that trusts "few are pending" scans whole indexes per batch.
 */
describe('PostgreSQL query plans of the claim and the outcome', { skip: skipWithoutPostgres() }, () => {
  it('leases by primary key, and writes outcomes without looking up the deliveries it has just moved', async (t) => {
    const database = await freshDatabase();
    const store = await PostgresStore.open({ url: database.url });
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    t.after(async () => {
      await client.end();
      await store.close();
      await database.drop();
    });
    await client.query("INSERT INTO app (id, name, created_at, updated_at) VALUES ('app_plans', 'plans', 0, 0)");
    await client.query("INSERT INTO endpoint (id, app_id, url, max_in_flight, secrets, created_at, updated_at) VALUES ('ep_plans', 'app_plans', 'http://127.0.0.1:9/', 64, '[]', 0, 0)");
    await client.query(
      "INSERT INTO message (id, app_id, event_type, content_type, created_at) SELECT 'msg_' || lpad(g::text, 8, '0'), 'app_plans', 'plans', 'application/json', g FROM generate_series(1, 22000) g",
    );
    const deliveries = (status: string, from: number, to: number) =>
      client.query(
        `INSERT INTO delivery (message_id, app_id, endpoint_id, status, next_attempt_at, created_at, updated_at)
         SELECT id, app_id, 'ep_plans', $1, 0, created_at, created_at FROM message WHERE created_at BETWEEN $2 AND $3`,
        [status, from, to],
      );
    await deliveries('succeeded', 1, 20_000);
    await client.query('ANALYZE');
    await deliveries('pending', 20_001, 22_000);
    const ids = (await client.query("SELECT id FROM delivery WHERE status = 'pending' ORDER BY id LIMIT 256")).rows.map((r) => Number(r.id));

    for (const mode of ['force_custom_plan', 'force_generic_plan'] as const) {
      // The ids come as key heads here (a key-ordered endpoint's picks), so that the lease is all the statement does to delivery.
      const plan = await planOf(client, PICK_AND_LEASE, [[], [], [], [], 1, 0, [], ids, ids.map(() => 0), 'owner', 1], mode);
      const leaseCte = [...nodes(plan)].find((n) => n['Subplan Name'] === 'CTE leased');
      assert.ok(leaseCte, 'the plan has the lease');
      const lease = [...nodes(leaseCte)];
      // An index scan or a bitmap of the primary key finds the ids; nothing reads a pending index or the whole table.
      const indexes = lease.map((n) => n['Index Name']).filter((name) => name?.startsWith('delivery'));
      assert.ok(indexes.length > 0, `${mode}: the lease reads no index of delivery`);
      assert.deepEqual([...new Set(indexes)], ['delivery_pkey'], `${mode}: the lease reads ${indexes.join(', ')}`);
      assert.ok(!lease.some((n) => n['Node Type'] === 'Seq Scan' && n['Relation Name'] === 'delivery'), `${mode}: the lease scans the whole delivery table`);

      const input = ids.map((id) => ({
        id: `att_${id}`, delivery_id: id, message_id: 'msg_00020001', endpoint_id: 'ep_plans', app_id: 'app_plans', url: 'http://127.0.0.1:9/',
        started_at: 1, duration_ms: 1, status_code: 200, succeeded: true, response_body: '', error: null, trigger: 'scheduled', owner: 'owner',
        status: 'succeeded', retry_index: 0, next_at: null, finished_at: 2, sent_request: null,
      }));
      const report = [{ endpoint_id: 'ep_plans', succeeded: true, failures: 0, first_failure_at: null, parked: 0, gone: null, at: 2 }];
      const complete = await planOf(client, COMPLETE, [JSON.stringify(input), JSON.stringify(report), 5, 1000, 60_000, 0, 0, 'failing', 'parked'], mode);
      // The `moved` update looks the batch's deliveries up by primary key, not through the in-flight index (all leases).
      const moved = [...nodes(complete)].find((n) => n['Subplan Name'] === 'CTE moved');
      assert.ok(moved, 'the plan has the moved update');
      const movedIndexes = [...nodes(moved)].map((n) => n['Index Name']).filter((name) => name?.startsWith('delivery'));
      assert.deepEqual([...new Set(movedIndexes)], ['delivery_pkey'], `${mode}: the outcome's update reads ${movedIndexes.join(', ')}`);
      assert.ok(![...nodes(moved)].some((n) => n['Node Type'] === 'Seq Scan' && n['Relation Name'] === 'delivery'), `${mode}: the outcome's update scans the whole delivery table`);
      // The `lost` update: outcomes not in `moved` are picked from the input before any delivery is looked up.
      const lost = [...nodes(complete)].find((n) => n['Subplan Name'] === 'CTE lost');
      assert.ok(lost, 'the plan has the lost update');
      const filtered = [...nodes(lost)].filter((n) => n.Filter?.includes('SubPlan'));
      assert.ok(filtered.length > 0, 'the lost update tests membership of moved');
      for (const node of filtered) assert.equal(node['CTE Name'], 'input', `${mode}: membership of moved is tested on ${node['Node Type']} ${node['Index Name'] ?? node['CTE Name'] ?? ''}`);
    }
  });
});
