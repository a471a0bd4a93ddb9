import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdtempSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freePort } from './ports.js';

/**
 * A PostgreSQL for tests. With DATABASE_URL (a role that may CREATE DATABASE) the tests use that server; otherwise
 * a throwaway cluster is started once per test file (each file is its own process) in a temp dir, on a free
 * loopback port, and stopped when the process exits. Each suite gets a fresh database.
 *
 * Under CI=true (or HOOKRELAY_TEST_STORE=postgres) a missing PostgreSQL fails the file with a message saying how to
 * get one; on a developer machine without one the PostgreSQL suites are skipped with that message instead.
 */

export interface TestDatabase {
  url: string;
  name: string;
  drop(): Promise<void>;
}

export interface TestPostgres {
  /** A superuser URL on the maintenance database. */
  adminUrl: string;
  /** True for the throwaway cluster this process started (which `stop`/`start` control). */
  owned: boolean;
  createDatabase(): Promise<TestDatabase>;
  /** Stops the server as an operator would (`pg_ctl stop -m fast`): open connections are cut. */
  stop(): void;
  /** Starts it again on the same port. */
  start(): void;
}

const HINT = 'set DATABASE_URL=postgres://user@host:port/db (a role that may CREATE DATABASE), or install PostgreSQL (scripts/ci/postgres.sh)';

/** The PostgreSQL server binaries (initdb, pg_ctl), newest version first; null when none is installed. */
function findBinaries(): string | null {
  const fromPath = spawnSync('sh', ['-c', 'command -v initdb'], { encoding: 'utf8' }).stdout.trim();
  if (fromPath) return join(fromPath, '..');
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return null;
  const versions = readdirSync(root)
    .filter((v) => existsSync(join(root, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions.length ? join(root, versions[0], 'bin') : null;
}

const isRoot = () => process.getuid?.() === 0;

function postgresUser(): { uid: number; gid: number } | null {
  const result = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  if (result.status !== 0) return null;
  const gid = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).stdout.trim();
  return { uid: Number(result.stdout.trim()), gid: Number(gid) };
}

/** Why no PostgreSQL can be had here, or null when one can. */
export function postgresMissing(needOwnCluster = false): string | null {
  if (process.env.DATABASE_URL && !needOwnCluster) return null;
  if (!findBinaries()) return `no PostgreSQL server binaries (initdb) found on PATH or under /usr/lib/postgresql/*/bin: ${HINT}`;
  if (isRoot() && !postgresUser()) return `running as root and there is no "postgres" user to run the server as: ${HINT}`;
  return null;
}

export const mustHavePostgres = () => process.env.CI === 'true' || process.env.HOOKRELAY_TEST_STORE === 'postgres';

/**
 * For `describe(name, { skip: skipWithoutPostgres() }, …)`: false when PostgreSQL is available; otherwise the reason,
 * or, where PostgreSQL is required, an exception that fails the test file.
 */
export function skipWithoutPostgres(needOwnCluster = false): false | string {
  const missing = postgresMissing(needOwnCluster);
  if (missing === null) return false;
  if (mustHavePostgres()) throw new Error(`PostgreSQL is required here (CI=true or HOOKRELAY_TEST_STORE=postgres) but ${missing}`);
  return `PostgreSQL not available: ${missing}`;
}


/** Runs a server binary as the `postgres` user when this process is root (initdb and postgres refuse root). */
function runAs(bin: string, args: string[]): void {
  const [command, argv] = isRoot() ? ['runuser', ['-u', 'postgres', '--', bin, ...args]] : [bin, args];
  const result = spawnSync(command, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (result.status !== 0) throw new Error(`${bin} ${args.join(' ')} failed (${result.status}):\n${result.stdout}${result.stderr}`);
}

/**
 * initdb takes about 2 s; a data directory copied from a cached template takes a fraction of that. The template is
 * built once per machine (version and user in its name) and renamed into place, so parallel test files cannot see
 * a half-built one.
 */
function dataDirFromTemplate(bin: string, into: string): void {
  const version = /\d+(\.\d+)*/.exec(execFileSync(join(bin, 'initdb'), ['--version'], { encoding: 'utf8' }))?.[0] ?? 'unknown';
  const template = join(tmpdir(), `hookrelay-pg-template-${process.getuid?.() ?? 'u'}-${version}`);
  if (!existsSync(join(template, 'PG_VERSION'))) {
    const building = postgresOwnedTempDir(`${template}.`);
    runAs(join(bin, 'initdb'), ['-D', join(building, 'data'), '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--no-locale', '--no-sync']);
    try {
      renameSync(join(building, 'data'), template);
    } catch {
      // Another test file finished its template first: use that one.
    }
    rmSync(building, { recursive: true, force: true });
  }
  runAs('cp', ['-a', template, into]);
}

/** A new temp dir the server's user owns (the server refuses data or socket dirs it cannot write). */
function postgresOwnedTempDir(prefix: string): string {
  const dir = mkdtempSync(prefix);
  const user = isRoot() ? postgresUser() : null;
  if (user) chownSync(dir, user.uid, user.gid);
  return dir;
}

async function startCluster(): Promise<TestPostgres> {
  const bin = findBinaries()!;
  const base = postgresOwnedTempDir(join(tmpdir(), 'hookrelay-pg-'));
  const data = join(base, 'data');
  dataDirFromTemplate(bin, data);
  const port = await freePort();
  // fsync off: a throwaway cluster need not survive a power cut, and tests run several times faster.
  const options = `-p ${port} -k ${base} -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off -c full_page_writes=off`;
  const start = () => runAs(join(bin, 'pg_ctl'), ['-D', data, '-l', join(base, 'server.log'), '-w', '-t', '60', '-o', options, 'start']);
  const stop = () => runAs(join(bin, 'pg_ctl'), ['-D', data, '-w', '-t', '60', '-m', 'fast', 'stop']);
  start();
  // The cluster dies with this process: on a normal exit, and on SIGINT/SIGTERM (a cancelled or timed-out test run).
  const cleanUp = () => {
    const pgCtl = [join(bin, 'pg_ctl'), '-D', data, '-m', 'immediate', 'stop'];
    spawnSync(isRoot() ? 'runuser' : pgCtl[0], isRoot() ? ['-u', 'postgres', '--', ...pgCtl] : pgCtl.slice(1), { stdio: 'ignore' });
    rmSync(base, { recursive: true, force: true });
  };
  process.once('exit', cleanUp);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      cleanUp();
      process.kill(process.pid, signal);
    });
  }
  const adminUrl = `postgres://postgres@127.0.0.1:${port}/postgres`;
  return { adminUrl, owned: true, createDatabase: () => createDatabase(adminUrl), stop, start };
}

async function createDatabase(adminUrl: string): Promise<TestDatabase> {
  const name = `hookrelay_test_${randomBytes(6).toString('hex')}`;
  await withAdmin(adminUrl, (client) => client.query(`CREATE DATABASE ${name}`));
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  let dropped = false;
  return {
    url: url.toString(),
    name,
    async drop() {
      if (dropped) return;
      dropped = true;
      await withAdmin(adminUrl, (client) => client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    },
  };
}

async function withAdmin<T>(adminUrl: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

let shared: Promise<TestPostgres> | null = null;
let own: Promise<TestPostgres> | null = null;

/**
 * The PostgreSQL of this test process: DATABASE_URL's server, or a throwaway cluster. `ownCluster` asks for a
 * cluster this process controls even when DATABASE_URL is set (tests that stop and start the server).
 */
export function testPostgres(options: { ownCluster?: boolean } = {}): Promise<TestPostgres> {
  const missing = postgresMissing(options.ownCluster);
  if (missing) return Promise.reject(new Error(`PostgreSQL is not available: ${missing}`));
  if (options.ownCluster) return (own ??= shared && !process.env.DATABASE_URL ? shared : startCluster());
  const external = process.env.DATABASE_URL;
  if (external) {
    return (shared ??= Promise.resolve({
      adminUrl: external,
      owned: false,
      createDatabase: () => createDatabase(external),
      stop: () => {
        throw new Error('cannot stop the DATABASE_URL server');
      },
      start: () => {
        throw new Error('cannot start the DATABASE_URL server');
      },
    }));
  }
  return (shared ??= own ?? startCluster());
}

/** A fresh database on the test PostgreSQL. */
export async function freshDatabase(): Promise<TestDatabase> {
  return (await testPostgres()).createDatabase();
}
