import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { brokerSkip, IN_CI, startRedis, type TestBroker } from '../helpers/brokers.js';
import { waitUntil } from '../helpers/wait.js';
import { listAllMessageIds, startChild, tempDir, type Child } from '../process/child.js';

/** Mounting a tmpfs needs root; under CI it must run (CI runs as root). */
const needsRoot = process.getuid?.() !== 0 && !IN_CI ? 'needs root (mounts a small tmpfs to fill)' : false;

/** Fills the file system holding `dir` to the last byte; returns the filler's path. */
function fillDisk(dir: string): string {
  const filler = join(dir, 'filler');
  const fd = openSync(filler, 'w');
  try {
    for (let size = 64 * 1024; size >= 1; size = Math.floor(size / 2)) {
      const chunk = Buffer.alloc(size, 1);
      try {
        for (;;) writeSync(fd, chunk);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
      }
    }
  } finally {
    closeSync(fd);
  }
  return filler;
}

const record = (i: number) => JSON.stringify({ i, pad: 'x'.repeat(16 * 1024) });

describe('a broker source when the store cannot take writes', { skip: brokerSkip('redis-server', 'redis.sh') || needsRoot }, () => {
  it('pauses (nothing acknowledged, no more read) while the disk is full, shows why, and resumes with nothing lost', { timeout: 120_000 }, async (t) => {
    const { dir, remove } = tempDir();
    const mount = join(dir, 'small');
    mkdirSync(mount);
    const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', mount], { encoding: 'utf8' });
    assert.equal(mounted.status, 0, `mount tmpfs: ${mounted.stderr}`);
    let redis: TestBroker | undefined;
    let child: Child | undefined;
    let client: Redis | undefined;
    t.after(async () => {
      client?.disconnect();
      await child?.stop();
      await redis?.close();
      spawnSync('umount', ['-l', mount]);
      remove();
    });
    redis = await startRedis();
    client = new Redis({ host: '127.0.0.1', port: redis.port });
    child = await startChild({ db: join(mount, 'hookrelay.db') });
    const created = await child.api('POST', '/ingest/api/v1/source', { name: 'disk', type: 'redis', config: { address: redis.address, stream: 'disk', batchSize: 10 } });
    assert.equal(created.status, 201, created.text);
    const { id: sourceId, appId } = created.body;
    const source = async () => (await child!.api('GET', `/ingest/api/v1/source/${sourceId}`)).body.consumer;
    const group = async () => {
      const [fields] = (await client!.call('XINFO', 'GROUPS', 'disk')) as unknown[][];
      return Object.fromEntries(Array.from({ length: fields.length / 2 }, (_, i) => [fields[2 * i], fields[2 * i + 1]])) as { pending: number; 'entries-read': number };
    };

    for (let i = 0; i < 20; i++) await client.xadd('disk', '*', 'event-type', 'disk.test', 'payload', record(i));
    await waitUntil('the first records to be messages', async () => (await listAllMessageIds(child!.svix, appId)).length === 20, 20_000, 100);

    const filler = fillDisk(mount);
    const total = 120;
    for (let i = 20; i < total; i++) await client.xadd('disk', '*', 'event-type', 'disk.test', 'payload', record(i));
    const paused = await waitUntil('the source to pause', async () => {
      const state = await source();
      return state?.state === 'paused' ? state : null;
    }, 30_000, 100);
    assert.match(paused.error, /store cannot take the records/);
    // Paused: the batch in hand stays pending (not acknowledged) and no further batch is read meanwhile.
    const held = await group();
    assert.ok(held.pending > 0 && held.pending <= 10, `pending ${held.pending}`);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    assert.equal((await group())['entries-read'], held['entries-read'], 'the paused source read on');

    unlinkSync(filler);
    await waitUntil('the source to run again', async () => (await source())?.state === 'running', 30_000, 100);
    const ids = await waitUntil(`all ${total} records to be messages`, async () => {
      const listed = await listAllMessageIds(child!.svix, appId);
      return listed.length >= total ? listed : null;
    }, 60_000, 200);
    assert.equal(ids!.length, total, 'no record became two messages');
    await waitUntil('every entry acknowledged', async () => (await group()).pending === 0, 10_000, 100);
  });
});
