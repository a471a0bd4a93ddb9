import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Database } from '../../src/store/sqlite/driver.js';
import { applyMigration, FOREIGN_KEYS_OFF, migrate } from '../../src/store/sqlite/open.js';

const DIR = fileURLToPath(new URL('../../src/store/sqlite/migrations/', import.meta.url));
const FILES = readdirSync(DIR).filter((f) => /^\d{4}_.+\.sql$/.test(f)).sort();

/** An in-memory database with foreign keys on (as hookrelay opens it) and the migrations up to `version` applied. */
function databaseAt(version: number) {
  const db = new Database(':memory:');
  db.pragma('foreign_keys = ON');
  db.exec('CREATE TABLE schema_migration (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)');
  for (const file of FILES.filter((f) => Number(f.slice(0, 4)) <= version)) applyMigration(db, Number(file.slice(0, 4)), file, readFileSync(DIR + file, 'utf8'));
  return db;
}

describe('SQLite migrations', () => {
  it('0015 rebuilds the endpoint table with its rows, and keeps the deliveries and attempts that reference it', () => {
    const db = databaseAt(14);
    db.prepare("INSERT INTO app (id, name, created_at, updated_at) VALUES ('app_1', 'a', 1, 1)").run();
    db.prepare(
      `INSERT INTO endpoint (id, app_id, uid, url, ordering, max_in_flight, secrets, created_at, updated_at, failure_streak, next_send_at, filter, encryption_keys, transformation, rate_limit)
       VALUES ('ep_1', 'app_1', 'main', 'https://example.com/a', 'fifo', 7, '[{"key":"whsec_x","expiresAt":null}]', 1, 2, 3, 99, '{"a":1}', '[]', '{"code":null}', 5)`,
    ).run();
    db.prepare("INSERT INTO endpoint (id, app_id, url, max_in_flight, secrets, created_at, updated_at) VALUES ('ep_2', 'app_1', 'https://example.com/b', 1, '[]', 1, 1)").run();
    db.prepare("INSERT INTO message (id, app_id, event_type, payload, content_type, created_at) VALUES ('msg_1', 'app_1', 't', x'7b7d', 'application/json', 1)").run();
    const insertDelivery = db.prepare("INSERT INTO delivery (message_id, app_id, endpoint_id, status, created_at, updated_at) VALUES ('msg_1', 'app_1', ?, ?, 1, 1)");
    insertDelivery.run('ep_1', 'pending');
    const parked = insertDelivery.run('ep_2', 'failed').lastInsertRowid;
    db.prepare(
      "INSERT INTO attempt (id, delivery_id, message_id, endpoint_id, app_id, url, started_at, duration_ms, status_code, succeeded, response_body, trigger) VALUES ('atmpt_1', ?, 'msg_1', 'ep_2', 'app_1', 'u', 1, 1, 500, 0, '', 'scheduled')",
    ).run(parked);
    const endpointsBefore = db.prepare('SELECT * FROM endpoint ORDER BY id').all();

    const report = migrate(db);

    assert.deepEqual(report.applied, FILES.filter((f) => Number(f.slice(0, 4)) > 14));
    const endpointsAfter = db.prepare('SELECT * FROM endpoint ORDER BY id').all() as Record<string, unknown>[];
    // The columns of 0014 (later migrations add their own).
    const columnsBefore = Object.keys(endpointsBefore[0] as object);
    assert.deepEqual(
      endpointsAfter.map((row) => (assert.equal(row.ordering_on_park, 'skip'), Object.fromEntries(columnsBefore.map((c) => [c, row[c]])))),
      endpointsBefore,
      'the rebuilt endpoint table lost or changed a value',
    );
    assert.equal((db.prepare('SELECT count(*) AS n FROM delivery').get() as { n: number }).n, 2, 'deliveries were deleted with the old table');
    assert.equal((db.prepare('SELECT count(*) AS n FROM attempt').get() as { n: number }).n, 1);
    assert.equal(db.pragma('foreign_keys', { simple: true }), 1, 'foreign keys are off after the migration');
    assert.deepEqual(db.pragma('foreign_key_check'), []);
    assert.ok((db.prepare("SELECT sql FROM sqlite_master WHERE name = 'endpoint_app'").get() as { sql: string }).sql.includes('(app_id, id)'));

    // The deliveries' foreign key now refers to the rebuilt table: deleting an endpoint still takes its deliveries along.
    db.prepare("DELETE FROM endpoint WHERE id = 'ep_2'").run();
    assert.equal((db.prepare('SELECT count(*) AS n FROM delivery').get() as { n: number }).n, 1);
    assert.equal((db.prepare('SELECT count(*) AS n FROM attempt').get() as { n: number }).n, 0);
    assert.throws(() => insertDelivery.run('ep_missing', 'pending'), /FOREIGN KEY/);
    // The new values of the CHECK constraints, and only those.
    db.prepare("UPDATE endpoint SET ordering = 'key', ordering_on_park = 'hold' WHERE id = 'ep_1'").run();
    assert.throws(() => db.prepare("UPDATE endpoint SET ordering = 'random' WHERE id = 'ep_1'").run(), /CHECK/);
    assert.throws(() => db.prepare("UPDATE endpoint SET ordering_on_park = 'drop' WHERE id = 'ep_1'").run(), /CHECK/);
  });

  it('0017 starts the retention walk at the oldest finished message that still has its payload, holds the unfinished ones before it, and drops message_retention', () => {
    /** Rows: id, created_at, whether it has its payload, and the status of its one delivery (none when absent). */
    const migrated = (rows: [string, number, boolean, string?][]) => {
      const db = databaseAt(16);
      db.prepare("INSERT INTO app (id, name, created_at, updated_at) VALUES ('app_1', 'a', 1, 1)").run();
      db.prepare("INSERT INTO endpoint (id, app_id, url, max_in_flight, secrets, created_at, updated_at) VALUES ('ep_1', 'app_1', 'https://example.com', 1, '[]', 1, 1)").run();
      const message = db.prepare("INSERT INTO message (id, app_id, event_type, payload, content_type, created_at) VALUES (?, 'app_1', 't', ?, 'application/json', ?)");
      const delivery = db.prepare("INSERT INTO delivery (message_id, app_id, endpoint_id, status, created_at, updated_at) VALUES (?, 'app_1', 'ep_1', ?, 1, 1)");
      for (const [id, at, payload, status] of rows) {
        message.run(id, payload ? Buffer.from('{}') : null, at);
        if (status) delivery.run(id, status);
      }
      migrate(db);
      assert.equal(db.prepare("SELECT name FROM sqlite_master WHERE name = 'message_retention'").get(), undefined);
      return {
        cursor: (db.prepare('SELECT message_id FROM retention_cursor').get() as { message_id: string }).message_id,
        held: (db.prepare('SELECT message_id FROM retention_held ORDER BY message_id').all() as { message_id: string }[]).map((r) => r.message_id),
      };
    };
    // Expunged ones before it are not walked again; the cursor is its millisecond, below its id and above theirs. One kept
    // for a delivery still pending (its endpoint disabled, say) is held, not a reason to walk from there.
    assert.deepEqual(
      migrated([
        ['msg_000000010000abc', 10, false, 'succeeded'],
        ['msg_000000020000abc', 20, true, 'pending'],
        ['msg_000000030000abc', 30, false],
        ['msg_000000040000abc', 40, true, 'succeeded'],
        ['msg_000000050000abc', 50, true, 'in_flight'],
      ]),
      { cursor: 'msg_00000004', held: ['msg_000000020000abc'] },
    );
    assert.deepEqual(
      migrated([['msg_000000010000abc', 10, false], ['msg_000000020000abc', 20, true, 'pending']]),
      { cursor: 'msg_00000002', held: [] },
      'no finished message with a payload: from the newest message, which is walked too',
    );
    assert.deepEqual(migrated([]), { cursor: '', held: [] }, 'no messages: from the start');
  });

  it('0020 returns deliveries leased in the table to pending (leases are in memory since) and drops the in-flight index', () => {
    const db = databaseAt(19);
    db.prepare("INSERT INTO app (id, name, created_at, updated_at) VALUES ('app_1', 'a', 1, 1)").run();
    db.prepare("INSERT INTO endpoint (id, app_id, url, max_in_flight, secrets, created_at, updated_at) VALUES ('ep_1', 'app_1', 'https://example.com', 1, '[]', 1, 1)").run();
    db.prepare("INSERT INTO message (id, app_id, event_type, payload, content_type, created_at) VALUES ('msg_1', 'app_1', 't', x'7b7d', 'application/json', 1)").run();
    db.prepare("INSERT INTO message (id, app_id, event_type, payload, content_type, created_at) VALUES ('msg_2', 'app_1', 't', x'7b7d', 'application/json', 1)").run();
    db.prepare("INSERT INTO delivery (message_id, app_id, endpoint_id, status, leased_by, lease_until, created_at, updated_at) VALUES ('msg_1', 'app_1', 'ep_1', 'in_flight', 'o', 99, 1, 1)").run();
    db.prepare("INSERT INTO delivery (message_id, app_id, endpoint_id, status, created_at, updated_at) VALUES ('msg_2', 'app_1', 'ep_1', 'succeeded', 1, 1)").run();
    assert.ok(db.prepare("SELECT 1 FROM sqlite_master WHERE name = 'delivery_in_flight'").get());
    migrate(db);
    assert.deepEqual(db.prepare('SELECT message_id, status, leased_by, lease_until FROM delivery ORDER BY message_id').all(), [
      { message_id: 'msg_1', status: 'pending', leased_by: null, lease_until: null },
      { message_id: 'msg_2', status: 'succeeded', leased_by: null, lease_until: null },
    ]);
    assert.equal(db.prepare("SELECT 1 FROM sqlite_master WHERE name = 'delivery_in_flight'").get(), undefined);
  });

  it('a migration marked to run with foreign keys off is rolled back when it leaves a row pointing nowhere, and keys are back on', () => {
    const db = databaseAt(FILES.length);
    db.prepare("INSERT INTO app (id, name, created_at, updated_at) VALUES ('app_1', 'a', 1, 1)").run();
    db.prepare("INSERT INTO endpoint (id, app_id, url, max_in_flight, secrets, created_at, updated_at) VALUES ('ep_1', 'app_1', 'https://example.com/a', 1, '[]', 1, 1)").run();
    assert.throws(
      () => applyMigration(db, 9999, '9999_orphans.sql', `${FOREIGN_KEYS_OFF}\nDELETE FROM app;`),
      /9999_orphans\.sql leaves rows whose foreign keys point nowhere \(1; first: endpoint row \d+ → app\)/,
    );
    assert.equal((db.prepare('SELECT count(*) AS n FROM app').get() as { n: number }).n, 1, 'the failed migration was not rolled back');
    assert.equal(db.prepare('SELECT version FROM schema_migration WHERE version = 9999').get(), undefined);
    assert.equal(db.pragma('foreign_keys', { simple: true }), 1);

    // Without the marker the same file runs with foreign keys on: the delete cascades instead.
    applyMigration(db, 9999, '9999_cascade.sql', 'DELETE FROM app;');
    assert.equal((db.prepare('SELECT count(*) AS n FROM endpoint').get() as { n: number }).n, 0);
  });
});
