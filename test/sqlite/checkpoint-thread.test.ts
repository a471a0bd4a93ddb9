import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { CheckpointThread } from '../../src/store/sqlite/checkpoint-thread.js';
import { Database } from '../../src/store/sqlite/driver.js';
import { DatabaseInUseError, openDatabase } from '../../src/store/sqlite/open.js';
import { OwnerLock } from '../../src/store/sqlite/owner-lock.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';

const dir = mkdtempSync(join(tmpdir(), 'hookrelay-checkpoint-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const until = async (done: () => boolean, timeoutMs = 5000) => {
  const end = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > end) return false;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return true;
};

describe('the checkpoint thread', () => {
  it('copies what the main connection commits into the database file, the main connection never checkpointing', async () => {
    const path = join(dir, 'copied.db');
    const opened = openDatabase(path, 'FULL');
    // Only the thread may checkpoint in this test.
    opened.db.pragma('wal_autocheckpoint = 0');
    opened.db.exec('CREATE TABLE blob (id INTEGER PRIMARY KEY, data BLOB NOT NULL)');
    const thread = new CheckpointThread(path, 20);
    try {
      const before = statSync(path).size;
      const insert = opened.db.prepare('INSERT INTO blob (data) VALUES (?)');
      for (let i = 0; i < 64; i++) {
        insert.run(Buffer.alloc(32 * 1024, i));
        thread.committed();
      }
      // Two MiB went into the log; the database file grows only by a checkpoint.
      assert.ok(await until(() => statSync(path).size >= before + 2 * 1024 * 1024), `the database file is still ${statSync(path).size} bytes`);
      assert.equal((opened.db.prepare('SELECT count(*) AS n FROM blob').get() as { n: number }).n, 64);
    } finally {
      await thread.close();
      opened.close();
    }
  });

  it('waits for commits: without one it copies nothing', async () => {
    const path = join(dir, 'idle.db');
    const opened = openDatabase(path, 'FULL');
    opened.db.pragma('wal_autocheckpoint = 0');
    const thread = new CheckpointThread(path, 1);
    try {
      const before = statSync(path).size;
      opened.db.exec('CREATE TABLE blob (id INTEGER PRIMARY KEY, data BLOB NOT NULL)');
      opened.db.prepare('INSERT INTO blob (data) VALUES (?)').run(Buffer.alloc(1024 * 1024));
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.equal(statSync(path).size, before, 'the thread checkpointed although no commit was announced');
      thread.committed();
      assert.ok(await until(() => statSync(path).size > before + 1024 * 1024));
    } finally {
      await thread.close();
      opened.close();
    }
  });

  it("a store's close waits for the thread, so the last connection's close leaves no log behind", async () => {
    const path = join(dir, 'closed.db');
    const store = new SqliteStore({ path });
    await store.createApp({ name: 'a', uid: null, rateLimit: null, metadata: {} }, Date.now());
    assert.ok(existsSync(`${path}-wal`));
    await store.close();
    assert.equal(existsSync(`${path}-wal`), false, 'the write-ahead log is still there: a connection was left open');
  });
});

describe('the owner lock', () => {
  it('lets one opener have a database file at a time, and the next one once it is given up', () => {
    const path = join(dir, 'owned.db');
    const first = openDatabase(path, 'FULL');
    assert.throws(() => openDatabase(path, 'FULL'), (error: Error) => error instanceof DatabaseInUseError && /in use by another hookrelay process/.test(error.message));
    assert.throws(() => OwnerLock.acquire(path), DatabaseInUseError);
    first.close();
    const second = openDatabase(path, 'FULL');
    second.close();
  });

  it('keeps other hookrelays away, not readers: a backup of a served file holds what was committed', async () => {
    const path = join(dir, 'served.db');
    const store = new SqliteStore({ path });
    try {
      const app = await store.createApp({ name: 'kept', uid: null, rateLimit: null, metadata: {} }, Date.now());
      const reader = new Database(path, { readonly: true });
      try {
        await reader.backup(join(dir, 'backup.db'));
      } finally {
        reader.close();
      }
      const copy = new Database(join(dir, 'backup.db'), { readonly: true });
      try {
        assert.deepEqual(copy.prepare('SELECT id, name FROM app').all(), [{ id: app.id, name: 'kept' }]);
      } finally {
        copy.close();
      }
    } finally {
      await store.close();
    }
  });

  it('says what to do when its lock file is not a lock file', () => {
    const path = join(dir, 'garbled.db');
    openDatabase(path, 'FULL').close();
    writeFileSync(`${path}-lock`, 'not an SQLite file, and long enough to have a header: '.repeat(4));
    assert.throws(() => openDatabase(path, 'FULL'), /the lock file .*garbled\.db-lock is damaged; stop every hookrelay using .*garbled\.db, delete/);
  });

  it('names the lock file when it cannot be opened', () => {
    const path = join(dir, 'damaged.db');
    openDatabase(path, 'FULL').close();
    rmSync(`${path}-lock`);
    // A directory where the lock file should be.
    mkdirSync(`${path}-lock`);
    assert.throws(() => openDatabase(path, 'FULL'), /cannot open the database .*damaged\.db-lock/);
  });
});
