import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PostgresStore } from '../../src/store/postgres/postgres-store.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { freshDatabase, skipWithoutPostgres } from '../helpers/postgres.js';
import { storeConformance } from './conformance.js';

// One suite, two backends: whatever the API and the dispatcher rely on must hold on both.

storeConformance('SQLite', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hookrelay-conformance-'));
  const store = new SqliteStore({ path: join(dir, 'store.db') });
  return {
    store,
    close: async () => {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

storeConformance(
  'PostgreSQL',
  async () => {
    const database = await freshDatabase();
    const store = await PostgresStore.open({ url: database.url });
    return {
      store,
      close: async () => {
        await store.close();
        await database.drop();
      },
    };
  },
  skipWithoutPostgres(),
);
