import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, copyFileSync, mkdirSync, openSync, rmSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { startReceiver } from '../helpers/receiver.js';
import { waitUntil } from '../helpers/wait.js';
import { CLI, runCli, startChild, tempDir, type Child } from './child.js';

const IN_CI = process.env.CI === 'true';
const isRoot = process.getuid?.() === 0;
/** Mounting a tmpfs and switching users need root; under CI they must run (CI runs as root). */
const needsRoot = !isRoot && !IN_CI ? 'needs root (mounts a small tmpfs, runs hookrelay as another user)' : false;

/** Fills the file system holding `dir` up to the last byte; returns the filler's path. */
function fillDisk(dir: string): string {
  const filler = join(dir, 'filler');
  const fd = openSync(filler, 'w');
  const chunk = Buffer.alloc(64 * 1024, 1);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
    // The last partial chunk: whatever space is left.
    for (let size = 32 * 1024; size >= 1; size = Math.floor(size / 2)) {
      try {
        for (;;) writeSync(fd, chunk.subarray(0, size));
      } catch {
        /* next, smaller size */
      }
    }
  } finally {
    closeSync(fd);
  }
  return filler;
}

async function send(child: Child, appId: string, n: number, kb = 16) {
  return child.api('POST', `/api/v1/app/${appId}/msg`, { eventType: 'disk.test', payload: { n, pad: 'x'.repeat(kb * 1024) } });
}

describe('storage faults degrade instead of kill', () => {
  it('a full disk answers 503 with Retry-After (never 500), the process lives on, and writes resume when space returns', { skip: needsRoot, timeout: 120_000 }, async (t) => {
    const { dir, remove } = tempDir();
    const mount = join(dir, 'small');
    mkdirSync(mount);
    const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=3m', 'tmpfs', mount], { encoding: 'utf8' });
    assert.equal(mounted.status, 0, `mount tmpfs: ${mounted.stderr}`);
    const receiver = await startReceiver();
    let child: Child | undefined;
    t.after(async () => {
      await child?.stop();
      await receiver.close();
      spawnSync('umount', ['-l', mount]);
      remove();
    });
    child = await startChild({ db: join(mount, 'hookrelay.db') });
    const app = await child.svix.application.create({ name: 'disk' });
    await child.svix.endpoint.create(app.id, { url: receiver.url });
    const acknowledged: string[] = [];
    const first = await send(child, app.id, 0);
    assert.equal(first.status, 202, first.text);
    acknowledged.push(first.body.id);

    const filler = fillDisk(mount);
    const answers: number[] = [];
    let refused: { status: number; retryAfter: string | null; body: any } | null = null;
    for (let n = 1; n <= 40 && refused === null; n++) {
      const response = await fetch(`${child.url}/api/v1/app/${app.id}/msg`, {
        method: 'POST',
        headers: { authorization: `Bearer ${child.adminToken}`, 'content-type': 'application/json' },
        body: JSON.stringify({ eventType: 'disk.test', payload: { n, pad: 'x'.repeat(16 * 1024) } }),
      });
      const body = await response.json();
      answers.push(response.status);
      if (response.status === 202) acknowledged.push((body as { id: string }).id);
      else refused = { status: response.status, retryAfter: response.headers.get('retry-after'), body };
    }
    assert.ok(refused, `every message was acknowledged on a full disk: ${answers.join(',')}`);
    assert.equal(refused.status, 503, JSON.stringify(refused.body));
    assert.ok(refused.retryAfter, 'no Retry-After on the 503');
    assert.equal(refused.body.code, 'unavailable');
    assert.match(refused.body.detail, /disk is full/);
    assert.ok(!answers.includes(500), `a 500 among ${answers.join(',')}`);
    const ready = await child.api('GET', '/readyz');
    assert.equal(ready.status, 503, ready.text);
    assert.match(ready.body.checks.store, /disk is full/);
    await child.waitForLog((l) => l.level >= 50 && /cannot take writes/.test(l.msg));
    assert.ok(child.alive());

    unlinkSync(filler);
    const resumed = (await waitUntil('writes to be accepted again', async () => {
      const r = await send(child!, app.id, 99);
      return r.status === 202 ? r : null;
    }, 20_000, 200))!;
    acknowledged.push(resumed.body.id);
    await waitUntil('readiness back', async () => (await child!.api('GET', '/readyz')).status === 200, 10_000, 200);
    // Every acknowledged message is delivered (an outcome that could not be recorded on the full disk is sent again
    // once its lease expires: at least once).
    await waitUntil('every acknowledged message delivered', () => acknowledged.every((id) => receiver.received.some((r) => r.headers['webhook-id'] === id)), 90_000, 200);
    assert.equal(child.stderr().includes('unhandled'), false, child.stderr());
  });

  it('a database file deleted or replaced under the running process: readiness 503, a loud error, new messages refused; a restart says why', { timeout: 60_000 }, async (t) => {
    const { dir, remove } = tempDir();
    const db = join(dir, 'hookrelay.db');
    let child: Child | undefined;
    t.after(async () => {
      await child?.stop();
      remove();
    });
    child = await startChild({ db });
    const app = await child.svix.application.create({ name: 'vanishing' });
    assert.equal((await send(child, app.id, 1, 1)).status, 202);

    rmSync(db);
    const refused = await send(child, app.id, 2, 1);
    assert.equal(refused.status, 503, refused.text);
    assert.match(refused.body.detail, /was deleted while hookrelay was running/);
    const ready = await child.api('GET', '/readyz');
    assert.equal(ready.status, 503);
    assert.match(ready.body.checks.store, /deleted/);
    await child.waitForLog((l) => l.level >= 50 && /cannot take writes/.test(l.msg) && /deleted/.test(l.problem));
    const stopped = await child.stop();
    assert.equal(stopped.code, 0, child.stderr());

    // The token and key files of that database are still there: a restart refuses to start empty.
    const restart = await runCli(['serve', '--port', '0', '--db', db], { env: { HOOKRELAY_ALLOW_NETWORKS: '127.0.0.0/8' } });
    assert.equal(restart.code, 1, restart.stderr);
    assert.match(restart.stderr, /does not exist, but .*hookrelay\.master-key.* from an earlier run/);

    // Replaced by another file (a restore over the running one): noticed the same way.
    const other = join(dir, 'other.db');
    child = await startChild({ db: other });
    const otherApp = await child.svix.application.create({ name: 'replaced' });
    writeFileSync(join(dir, 'scratch'), 'another file');
    rmSync(other);
    copyFileSync(join(dir, 'scratch'), other);
    const afterReplace = await send(child, otherApp.id, 3, 1);
    assert.equal(afterReplace.status, 503, afterReplace.text);
    assert.match(afterReplace.body.detail, /was replaced by another file/);
  });

  it('start-up permission problems name the file and the cause', { skip: needsRoot, timeout: 30_000 }, async (t) => {
    const { dir, remove } = tempDir();
    t.after(remove);
    // A directory the unprivileged user may read but not write.
    const locked = join(dir, 'locked');
    mkdirSync(locked, { mode: 0o755 });
    spawnSync('chmod', ['755', dir]);
    const serveAsNobody = (db: string, env: Record<string, string> = {}) =>
      spawnSync(process.execPath, [CLI, 'serve', '--port', '0', '--db', db], {
        uid: 65534,
        gid: 65534,
        encoding: 'utf8',
        env: { PATH: process.env.PATH, HOOKRELAY_ADMIN_TOKEN: 'test_admin_token_permissions_0123456789', ...env },
        timeout: 20_000,
      });
    // The first file it writes there (the generated master key) is named, with the cause.
    const run = serveAsNobody(join(locked, 'hookrelay.db'));
    assert.equal(run.status, 1, run.stderr);
    assert.match(run.stderr, new RegExp(`cannot open ${locked}/hookrelay\\.master-key: permission denied \\(EACCES\\); hookrelay runs as uid 65534`));
    assert.ok(!/port above 1023/.test(run.stderr), run.stderr);

    // A database file it may not open, in a directory it may write: SQLite's "unable to open" gets its real cause.
    const shared = join(dir, 'shared');
    mkdirSync(shared, { mode: 0o777 });
    spawnSync('chmod', ['777', shared]);
    writeFileSync(join(shared, 'hookrelay.db'), '', { mode: 0o600 });
    const unreadable = serveAsNobody(join(shared, 'hookrelay.db'), { HOOKRELAY_MASTER_KEY: Buffer.alloc(32, 3).toString('base64') });
    assert.equal(unreadable.status, 1, unreadable.stderr);
    assert.match(unreadable.stderr, new RegExp(`cannot open the database ${shared}/hookrelay\\.db: permission denied: hookrelay \\(uid 65534\\) cannot read and write ${shared}/hookrelay\\.db`));
    assert.ok(!/port above 1023/.test(run.stderr), run.stderr);
  });
});
