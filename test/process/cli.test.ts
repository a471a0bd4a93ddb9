import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Database } from '../../src/store/sqlite/driver.js';
import { ADMIN_TOKEN, PACKAGE_JSON, runCli, startChild, tempDir, TEST_MASTER_KEY, type CliResult } from './child.js';

const STACK_LINE = /^\s{4}at /m;

function assertUsageError(result: CliResult, names: RegExp) {
  const shown = `exit ${result.code}; stderr:\n${result.stderr}`;
  assert.equal(result.code, 2, shown);
  assert.match(result.stderr, names, shown);
  assert.doesNotMatch(result.stderr, STACK_LINE, `stack trace printed:\n${result.stderr}`);
  assert.doesNotMatch(result.stdout, /hookrelay is serving/, 'started serving despite the bad configuration');
}

describe('hookrelay CLI', () => {
  const tmp = tempDir();
  const db = join(tmp.dir, 'cli.db');
  const env = { HOOKRELAY_ADMIN_TOKEN: ADMIN_TOKEN };
  const serve = (args: string[], extraEnv: Record<string, string> = {}) =>
    runCli(['serve', '--host', '127.0.0.1', '--port', '0', '--db', db, ...args], { env: { ...env, ...extraEnv }, cwd: tmp.dir });
  let fakeCert: string;

  before(() => {
    fakeCert = join(tmp.dir, 'cert.pem');
    writeFileSync(fakeCert, '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
  });
  after(() => tmp.remove());

  describe('configuration errors exit 2 with a message naming the setting, no stack trace', { concurrency: 3 }, () => {
    it('--port abc', async () => assertUsageError(await serve(['--port', 'abc']), /--port/));
    it('--port 70000', async () => assertUsageError(await serve(['--port', '70000']), /--port.*65535/));
    it('--log-level loud', async () => assertUsageError(await serve(['--log-level', 'loud']), /--log-level/));
    it('--tls-cert and --tls-key naming missing files', async () => {
      const result = await serve(['--tls-cert', '/nonexistent.pem', '--tls-key', '/nonexistent.pem']);
      assertUsageError(result, /--tls-cert.*\/nonexistent\.pem/);
      assert.match(result.stderr, /--tls-key/);
    });
    it('--tls-cert without --tls-key', async () => assertUsageError(await serve(['--tls-cert', fakeCert]), /--tls-key/));
    it('an unknown flag', async () => assertUsageError(await serve(['--bogus']), /--bogus/));
    it('an unknown command', async () => assertUsageError(await runCli(['frobnicate'], { env, cwd: tmp.dir }), /frobnicate/));
    it('HOOKRELAY_RETRY_SCHEDULE=5s,soon', async () => assertUsageError(await serve([], { HOOKRELAY_RETRY_SCHEDULE: '5s,soon' }), /HOOKRELAY_RETRY_SCHEDULE.*soon|soon[\s\S]*HOOKRELAY_RETRY_SCHEDULE/));
  });

  it('serve --db postgres://… on a server that is not there exits 1 saying the database cannot be reached, no stack trace', async () => {
    // Port 1 on loopback refuses at once.
    const result = await runCli(['serve', '--port', '0', '--db', 'postgres://hookrelay@127.0.0.1:1/hookrelay'], { env: { ...env, HOOKRELAY_MASTER_KEY: TEST_MASTER_KEY }, cwd: tmp.dir });
    assert.equal(result.code, 1, `exit ${result.code}; stderr:\n${result.stderr}`);
    assert.match(result.stderr, /cannot reach the database.*ECONNREFUSED/);
    assert.doesNotMatch(result.stderr, STACK_LINE);
    assert.doesNotMatch(result.stdout, /hookrelay is serving/);
  });

  it('version prints the package version', async () => {
    const { version } = JSON.parse(readFileSync(PACKAGE_JSON, 'utf8'));
    const result = await runCli(['version']);
    assert.equal(result.code, 0);
    assert.equal(result.stdout.trim(), version);
  });

  it('help exits 0 and lists the commands and options', async () => {
    const result = await runCli(['help']);
    assert.equal(result.code, 0, result.stderr);
    for (const word of ['serve', 'migrate', 'version', '--port', '--host', '--db', '--log-level', '--tls-cert', '--tls-key', '--retry-schedule', '--shutdown-grace', 'HOOKRELAY_ADMIN_TOKEN']) {
      assert.ok(result.stdout.includes(word), `help does not mention ${word}`);
    }
  });

  it('migrate creates the schema, prints its version, and is then up to date', async () => {
    const file = join(tmp.dir, 'migrate.db');
    const first = await runCli(['migrate', '--db', file]);
    assert.equal(first.code, 0, first.stderr);
    const version = /schema version (\d+)/.exec(first.stdout)?.[1];
    assert.ok(version, `no schema version in: ${first.stdout}`);

    const sqlite = new Database(file, { readonly: true });
    try {
      const tables = (sqlite.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]).map((r) => r.name);
      for (const table of ['schema_migration', 'message']) assert.ok(tables.includes(table), `no ${table} table: ${tables.join(', ')}`);
      const row = sqlite.prepare('SELECT max(version) AS v FROM schema_migration').get() as { v: number };
      assert.equal(String(row.v), version);
    } finally {
      sqlite.close();
    }

    const again = await runCli(['migrate', '--db', file]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /up to date/);
    assert.match(again.stdout, new RegExp(`version ${version}\\b`));
  });

  it('a second serve on a database that is being served fails fast, saying it is in use', async (t) => {
    const file = join(tmp.dir, 'busy.db');
    const running = await startChild({ db: file });
    t.after(() => running.stop());
    const second = await runCli(['serve', '--host', '127.0.0.1', '--port', '0', '--db', file], { env, timeoutMs: 10_000 });
    assert.equal(second.code, 1, `exit ${second.code}/${second.signal}; stderr:\n${second.stderr}`);
    assert.match(second.stderr, /in use/);
    assert.doesNotMatch(second.stderr, STACK_LINE);
    assert.doesNotMatch(second.stdout, /hookrelay is serving/);
    // The one that owns the file is unaffected.
    assert.equal((await running.api('GET', '/api/v1/health')).status, 204);
  });

  it('a port already in use gives a clear message and exit 1', async (t) => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    t.after(() => new Promise<void>((resolve) => blocker.close(() => resolve())));
    const port = (blocker.address() as AddressInfo).port;
    const result = await runCli(['serve', '--host', '127.0.0.1', '--port', String(port), '--db', join(tmp.dir, 'port.db')], { env, timeoutMs: 10_000 });
    assert.equal(result.code, 1, `exit ${result.code}/${result.signal}; stderr:\n${result.stderr}`);
    assert.match(result.stderr, /address already in use/);
    assert.match(result.stderr, new RegExp(String(port)));
    assert.doesNotMatch(result.stderr, STACK_LINE);
  });
});
