import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { waitUntil } from '../helpers/wait.js';
import { PACKAGE_JSON, runCli, startChild, tempDir } from './child.js';

const ROOT = join(PACKAGE_JSON, '..');

describe('the first hour', () => {
  it('a start that fails (port in use) writes no admin token and no master key, so the next start shows the token it keeps', async (t) => {
    const tmp = tempDir();
    const blocker: Server = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    t.after(() => {
      blocker.close();
      tmp.remove();
    });
    const port = String((blocker.address() as { port: number }).port);
    const result = await runCli(['serve', '--port', port, '--db', join(tmp.dir, 'relay.db')], { env: { HOOKRELAY_ADMIN_TOKEN: undefined } });
    assert.equal(result.code, 1, result.stderr);
    assert.match(result.stderr, /address already in use/);
    assert.doesNotMatch(result.stderr, /Admin token/, 'a token that is never written must not be shown either');
    assert.equal(existsSync(join(tmp.dir, 'relay.admin-token')), false, 'the admin token file was written');
    assert.equal(existsSync(join(tmp.dir, 'relay.master-key')), false, 'the master key file was written');

    // The next start is a first start: it generates the token, keeps it and shows it.
    const child = await startChild({ db: join(tmp.dir, 'relay.db'), env: { HOOKRELAY_ADMIN_TOKEN: undefined } });
    t.after(() => child.stop());
    const banner = (await waitUntil('the admin token banner', () => /Admin token \(kept in (.+)\):\n {2}(\S+)\n/.exec(child.stderr()), 5_000))!;
    assert.equal(banner[1], join(tmp.dir, 'relay.admin-token'));
    assert.equal(readFileSync(banner[1], 'utf8').trim(), banner[2]);
  });

  it('refuses a database URL of an unknown kind, naming the accepted forms, and bad settings, writing nothing', async (t) => {
    const tmp = tempDir();
    t.after(() => tmp.remove());
    const mysql = await runCli(['serve', '--db', 'mysql://user:pass@db:3306/hooks'], { cwd: tmp.dir, env: { HOOKRELAY_ADMIN_TOKEN: undefined } });
    assert.equal(mysql.code, 2);
    assert.match(mysql.stderr, /--db \(HOOKRELAY_DB\): unknown database scheme "mysql:\/\/"; use a SQLite file path \(or sqlite:<path>, file:<path>\) or postgres:\/\//);
    const bad = await runCli(['serve', '--max-in-flight', '0'], { cwd: tmp.dir, env: { HOOKRELAY_ADMIN_TOKEN: undefined } });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--max-in-flight \(HOOKRELAY_MAX_IN_FLIGHT\): must be at least 1/);
    assert.deepEqual(readdirSync(tmp.dir), [], 'a refused start left files behind');
  });

  it('the package exports a real module with a small public API, and says which license it is under', async () => {
    const pkg = JSON.parse(readFileSync(PACKAGE_JSON, 'utf8')) as { name: string; license: string; exports: Record<string, string> };
    assert.ok(existsSync(join(ROOT, pkg.exports['.'])), `exports points to ${pkg.exports['.']}, which does not exist`);
    const name = pkg.name;
    const api = (await import(name)) as Record<string, unknown>;
    assert.deepEqual(Object.keys(api).sort(), ['ConfigError', 'VERSION', 'createLogger', 'loadSettings', 'startHookrelay']);
    assert.equal(pkg.license, 'MIT');
    assert.match(readFileSync(join(ROOT, 'LICENSE'), 'utf8'), /^MIT License\n/);
    assert.match(readFileSync(join(ROOT, '.gitignore'), 'utf8'), /^\*\.master-key$/m);
  });
});
