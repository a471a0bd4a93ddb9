import { statSync } from 'node:fs';
import { HookrelayError } from '../../domain/errors.js';
import { layer } from '../layer.js';

/**
 * SQLite result codes that mean "the storage cannot take this now" — a full disk, an I/O error, a file that became
 * read-only or unreadable — rather than a bug: answered 503 with Retry-After (as a PostgreSQL outage is), never 500.
 * Writes succeed again by themselves once the cause is gone (space freed, the disk back).
 */
const STORAGE_CODES = /^SQLITE_(FULL|IOERR|READONLY|CANTOPEN|NOMEM|BUSY|LOCKED|PROTOCOL|CORRUPT|NOTADB)/;

const REASONS: Record<string, string> = {
  SQLITE_FULL: 'the disk is full',
  SQLITE_IOERR: 'an I/O error',
  SQLITE_READONLY: 'the database has become read-only',
  SQLITE_CANTOPEN: 'the database file cannot be opened',
  SQLITE_NOMEM: 'out of memory',
  SQLITE_CORRUPT: 'the database file is corrupt',
  SQLITE_NOTADB: 'the database file is not an SQLite database',
};

export function isStorageError(error: unknown): error is Error & { code: string } {
  const code = (error as { code?: unknown })?.code;
  return typeof code === 'string' && STORAGE_CODES.test(code);
}

export function describeStorageError(error: Error & { code: string }): string {
  const base = /^SQLITE_[A-Z]+/.exec(error.code)?.[0] ?? error.code;
  return `${REASONS[base] ?? error.message} (${error.code})`;
}

/** How long a failed write keeps the storage reported as failing although other writes commit meanwhile. */
export const FAILING_HOLD_MS = 5_000;

/** Why writes to the database cannot succeed now, as the readiness check and the logs say it. */
export class StorageProblems {
  /** The file was deleted or replaced: permanent for this process (a restart opens the file at the path). */
  lost: string | null = null;
  /** The last write batch that failed for a storage reason. */
  private failure: { reason: string; at: number } | null = null;

  constructor(private readonly now: () => number = Date.now) {}

  /**
   * The file's loss, or a storage failure of the last few seconds. A commit that succeeds does not clear a failure at
   * once: on a nearly full disk a large write can fail and the next small one commit (it fits in the log's space) within
   * a moment, and readiness and the log, which look now and then, must not miss the failure or flap with it.
   */
  get current(): string | null {
    if (this.lost !== null) return this.lost;
    if (this.failure !== null && this.now() - this.failure.at < FAILING_HOLD_MS) return this.failure.reason;
    return null;
  }

  /** What became of a write batch: a storage failure (its reason), or null when it committed. */
  settled(reason: string | null): void {
    if (reason !== null) this.failure = { reason, at: this.now() };
  }
}

/** A database file's identity: deleting it, or putting another file in its place, changes what `stat` says. */
export class FileIdentity {
  private readonly dev: number;
  private readonly ino: number;

  constructor(private readonly path: string) {
    ({ dev: this.dev, ino: this.ino } = statSync(path));
  }

  /** Null while the path still names the opened file, else what became of it. */
  problem(): string | null {
    try {
      const now = statSync(this.path);
      if (now.dev === this.dev && now.ino === this.ino) return null;
      return `the database file ${this.path} was replaced by another file while hookrelay was running`;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return `the database file ${this.path} was deleted while hookrelay was running`;
      return `the database file ${this.path} cannot be checked: ${(error as Error).message}`;
    }
  }
}

export const unavailable = (detail: string) => new HookrelayError('unavailable', detail);

/**
 * The store's methods that keep working on a database file that was deleted or replaced: reads, and the dispatcher's,
 * so that what was acknowledged before still goes out. Everything else — accepting messages above all — is refused,
 * rather than acknowledged into a file that no longer has a name.
 */
const USABLE_WHEN_LOST = /^(get|list|scan|claim$|complete$|attemptAnswered$|renewLeases$|releaseLeases$|nextDueAt$|prune$|close$|storageProblem$)/;

/**
 * The SQLite store behind one boundary that translates storage failures into `unavailable` (503) and refuses intake
 * once the file is gone. The store itself records the problems (`problems`); this only applies them to every call.
 */
export function guardStorage<S extends object>(store: S, problems: StorageProblems): S {
  const translate = (error: unknown): unknown => (isStorageError(error) ? unavailable(`the database cannot be written now: ${describeStorageError(error)}`) : error);
  // One wrapper per method: every store call goes through here.
  const wrap = (name: string, method: (...args: unknown[]) => unknown) => (...args: unknown[]) => {
    if (problems.lost !== null && !USABLE_WHEN_LOST.test(name)) return Promise.reject(unavailable(`${problems.lost}; restart hookrelay once the file is restored`));
    try {
      const result = method.apply(store, args);
      return result instanceof Promise ? result.catch((error) => Promise.reject(translate(error))) : result;
    } catch (error) {
      throw translate(error);
    }
  };
  return layer(store, wrap);
}
