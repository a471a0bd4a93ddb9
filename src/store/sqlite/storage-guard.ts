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

/** Why writes to the database cannot succeed now, as the readiness check and the logs say it. */
export class StorageProblems {
  /** The file was deleted or replaced: permanent for this process (a restart opens the file at the path). */
  lost: string | null = null;
  /** The last write failed for a storage reason; cleared by the next write that commits. */
  private failing: string | null = null;
  /** The first failure since `sinceLastLook` last looked, kept after a commit has cleared `failing`. */
  private unseen: string | null = null;

  get current(): string | null {
    return this.lost ?? this.failing;
  }

  /** What became of the last write batch: a storage failure (its reason), or null when it committed. */
  settled(reason: string | null): void {
    this.failing = reason;
    if (reason !== null) this.unseen ??= reason;
  }

  /**
   * The problem now, or else the first one since the last call: on a disk that is nearly full, a write may fail and the
   * next small one commit within a moment, and a watcher that looks once a second must still say that writes failed.
   */
  sinceLastLook(): string | null {
    const problem = this.current ?? this.unseen;
    this.unseen = null;
    return problem;
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
const USABLE_WHEN_LOST = /^(get|list|scan|claim$|complete$|attemptAnswered$|renewLeases$|releaseLeases$|nextDueAt$|prune$|close$|storageProblem)/;

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
