import { ConfigError, loadSettings, type RawSettings } from '../config.js';
import { createLogger } from '../log.js';
import { MasterKeyError } from '../secrets/box.js';
import { SecretFields } from '../secrets/fields.js';
import { resolveMasterKey } from '../secrets/master-key.js';
import { resealSecrets } from '../secrets/reseal.js';
import { startHookrelay } from '../server.js';
import { openStore, sqlitePath } from '../store/open-store.js';
import { isUnavailable } from '../store/postgres/errors.js';
import { PostgresStore } from '../store/postgres/postgres-store.js';
import { DatabaseInUseError, DatabaseOpenError, openDatabase } from '../store/sqlite/open.js';
import { VERSION } from '../version.js';

/**
 * The commands that open the database or start the server: loaded only when one of them runs, so that the other
 * commands (`version`, `help`, the API clients) start without loading the server.
 */

/** Exit codes: 0 ok, 1 runtime failure, 2 usage or configuration error. */
const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

function fail(message: string, code: number): number {
  process.stderr.write(`hookrelay: ${message}\n`);
  return code;
}

async function serve(raw: RawSettings): Promise<number> {
  const settings = loadSettings(raw, process.env);
  // A closed stdout or stderr (EPIPE) must not stop the server: the log sink drops what it cannot write, and so do these.
  process.stdout.on('error', () => undefined);
  process.stderr.on('error', () => undefined);
  // Listening for signals from the start: a SIGTERM that comes while hookrelay is still starting, or a second one while
  // it drains, must lead to a graceful stop, never to the default action (an immediate kill).
  let requested: string | null = null;
  let stop: ((signal: string) => void) | null = null;
  const onSignal = (signal: string) => {
    if (requested !== null) return;
    requested = signal;
    stop?.(signal);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  const log = createLogger(settings.logLevel, undefined, settings.logFormat);
  const relay = await startHookrelay(settings, log);
  log.info({ url: relay.url, db: settings.db, synchronous: settings.sqliteSynchronous, version: VERSION }, 'hookrelay is serving');
  if (relay.adminTokenGenerated) {
    process.stderr.write(`\nAdmin token (kept in ${relay.adminTokenFile ?? 'memory only'}):\n  ${relay.adminToken}\n\n`);
  }
  await new Promise<void>((resolve) => {
    stop = (signal: string) => {
      log.info({ signal }, 'shutting down: draining deliveries in flight');
      relay.close().then(resolve, (error) => {
        log.error({ err: error }, 'shutdown failed');
        resolve();
      });
    };
    if (requested !== null) stop(requested);
  });
  log.info('stopped');
  return EXIT.ok;
}

async function runMigrate(raw: RawSettings): Promise<number> {
  const settings = loadSettings(raw, process.env);
  const report = (migration: { applied: string[]; current: number }) =>
    process.stdout.write(migration.applied.length ? `applied ${migration.applied.join(', ')}; schema version ${migration.current}\n` : `schema is up to date (version ${migration.current})\n`);
  const path = sqlitePath(settings.db);
  if (path === null) {
    const store = await PostgresStore.open({ url: settings.db });
    report(store.migration);
    await store.close();
    return EXIT.ok;
  }
  const opened = openDatabase(path, settings.sqliteSynchronous);
  try {
    report(opened.migration);
    return EXIT.ok;
  } finally {
    opened.close();
  }
}

/** Re-encrypts every stored secret under the current master key (while servers run, on PostgreSQL). */
async function runReencrypt(raw: RawSettings): Promise<number> {
  const settings = loadSettings(raw, process.env);
  const master = resolveMasterKey(settings, createLogger('silent'), { generate: false });
  const store = await openStore(settings.db, { synchronous: settings.sqliteSynchronous });
  try {
    const report = await resealSecrets(store, new SecretFields(master.box));
    process.stdout.write(`looked at ${report.rows} rows; re-encrypted ${report.rewritten} under master key ${master.box.currentKeyId}; every stored secret now needs only that key\n`);
    return EXIT.ok;
  } finally {
    await store.close();
  }
}

export async function runServerCommand(command: 'serve' | 'migrate' | 'reencrypt', raw: RawSettings): Promise<number> {
  try {
    switch (command) {
      case 'serve':
        return await serve(raw);
      case 'migrate':
        return await runMigrate(raw);
      case 'reencrypt':
        return await runReencrypt(raw);
    }
  } catch (error) {
    if (error instanceof ConfigError) return fail(error.message, EXIT.usage);
    if (error instanceof MasterKeyError) return fail(`cannot read the stored secrets: ${error.message}`, EXIT.usage);
    if (error instanceof DatabaseInUseError || error instanceof DatabaseOpenError) return fail(error.message, EXIT.failure);
    const err = error as NodeJS.ErrnoException;
    if (err.code === 'EADDRINUSE') return fail(`cannot listen: address already in use (${err.message.replace(/^.*EADDRINUSE:?\s*/, '')}); choose another --port`, EXIT.failure);
    if (err.code === 'EACCES' && err.syscall === 'listen') return fail(`cannot listen: permission denied (${err.message}); ports below 1024 need privileges: choose a port above 1023`, EXIT.failure);
    // A file hookrelay reads or writes at start (database directory, token or key file): name it and the cause.
    if (err.path && err.syscall) {
      const cause = err.message.replace(/^[A-Z]+: /, '').replace(/, \w+ '.*'$/, '');
      const who = err.code === 'EACCES' || err.code === 'EPERM' ? `; hookrelay runs as uid ${process.getuid?.() ?? '?'}` : '';
      return fail(`cannot ${err.syscall} ${err.path}: ${cause} (${err.code})${who}`, EXIT.failure);
    }
    if (err.code === 'SQLITE_CANTOPEN') return fail(`cannot open the database: ${err.message}`, EXIT.failure);
    if (isUnavailable(error)) {
      const reason = err.message || (error instanceof AggregateError ? error.errors.map((e) => (e as Error).message).join('; ') : String(err.code));
      return fail(`cannot reach the database: ${reason}`, EXIT.failure);
    }
    return fail(`failed: ${err.message}`, EXIT.failure);
  }
}

