import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { describe, it } from 'node:test';
import pg from 'pg';
import { PostgresStore } from '../../src/store/postgres/postgres-store.js';
import { freshDatabase, skipWithoutPostgres } from '../helpers/postgres.js';
import { runCli } from '../process/child.js';

const versions = async (url: string) => {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<{ version: number }>('SELECT version FROM schema_migration ORDER BY version')).rows.map((r) => r.version);
  } finally {
    await client.end();
  }
};

describe('PostgreSQL schema migrations', { skip: skipWithoutPostgres() }, () => {
  it('lets five processes start on an empty database at once: one migrates, the others wait for it and find the schema ready', async (t) => {
    const database = await freshDatabase();
    t.after(() => database.drop());
    const stores = await Promise.all(Array.from({ length: 5 }, () => PostgresStore.open({ url: database.url, poolSize: 2 })));
    t.after(() => Promise.all(stores.map((s) => s.close())));
    const applied = stores.filter((s) => s.migration.applied.length > 0);
    assert.equal(applied.length, 1, 'more than one process applied the migrations');
    const latest = applied[0].migration.current;
    const shipped = readdirSync(new URL('../../src/store/postgres/migrations/', import.meta.url)).filter((f) => /^\d{4}_/.test(f)).map((f) => Number(f.slice(0, 4))).sort((a, b) => a - b);
    assert.deepEqual(await versions(database.url), shipped);
    assert.equal(latest, shipped[shipped.length - 1]);
    for (const store of stores) assert.equal(store.migration.current, latest);
    // The schema works for all of them.
    const app = await stores[3].createApp({ name: 'x', uid: 'x', rateLimit: null, metadata: {} }, Date.now());
    assert.equal((await stores[1].getApp('x'))?.id, app.id);
  });

  it('refuses to start on a schema newer than this hookrelay, saying so', async (t) => {
    const database = await freshDatabase();
    t.after(() => database.drop());
    await (await PostgresStore.open({ url: database.url })).close();
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    await client.query("INSERT INTO schema_migration (version, name, applied_at) VALUES (999, '0999_future.sql', 0)");
    await client.end();
    await assert.rejects(PostgresStore.open({ url: database.url }), /schema \(version 999\) is newer than this hookrelay.*upgrade hookrelay/);
  });

  it('hookrelay migrate --db postgres://… applies the schema once and is then up to date', async (t) => {
    const database = await freshDatabase();
    t.after(() => database.drop());
    const first = await runCli(['migrate', '--db', database.url]);
    assert.equal(first.code, 0, first.stderr);
    const version = /applied .*; schema version (\d+)/.exec(first.stdout)?.[1];
    assert.ok(version, `no schema version in: ${first.stdout}`);
    assert.equal(Math.max(...(await versions(database.url))), Number(version));
    const again = await runCli(['migrate', '--db', database.url]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, new RegExp(`up to date \\(version ${version}\\)`));
  });
});
