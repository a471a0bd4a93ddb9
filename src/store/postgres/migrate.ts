import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import { transaction } from './pool.js';

export interface MigrationReport {
  applied: string[];
  current: number;
}

const MIGRATIONS_DIR = join(dirname(fileURLToPath(import.meta.url)), 'migrations');

// Any constant works as long as every hookrelay uses the same one: it names "the schema of this database".
const MIGRATION_LOCK = 0x686b_726c; // "hkrl"

/**
 * Applies the numbered `NNNN_name.sql` files newer than the database in one transaction, under a transaction-level
 * advisory lock: several processes starting at once queue on the lock, and all but the first find nothing to do.
 * Each version is recorded before its SQL runs, so two migrators that somehow both proceed collide on the key.
 */
export async function migrate(pool: pg.Pool): Promise<MigrationReport> {
  const files = readdirSync(MIGRATIONS_DIR).filter((f) => /^\d{4}_.+\.sql$/.test(f)).sort();
  const latest = files.length ? Number(files[files.length - 1].slice(0, 4)) : 0;
  return transaction(pool, async (client) => {
    await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await client.query('CREATE TABLE IF NOT EXISTS schema_migration (version integer PRIMARY KEY, name text NOT NULL, applied_at bigint NOT NULL)');
    const current = (await client.query<{ v: number }>('SELECT coalesce(max(version), 0)::integer AS v FROM schema_migration')).rows[0].v;
    if (current > latest) {
      throw new Error(`the database schema (version ${current}) is newer than this hookrelay (knows up to ${latest}); upgrade hookrelay`);
    }
    const applied: string[] = [];
    for (const file of files) {
      const version = Number(file.slice(0, 4));
      if (version <= current) continue;
      await client.query('INSERT INTO schema_migration (version, name, applied_at) VALUES ($1, $2, $3)', [version, file, Date.now()]);
      await client.query(readFileSync(join(MIGRATIONS_DIR, file), 'utf8'));
      applied.push(file);
    }
    return { applied, current: Math.max(current, latest) };
  });
}
