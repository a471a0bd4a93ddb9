import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Database from 'better-sqlite3';
import { loadSettings, type RawSettings } from '../src/config.js';
import { createLogger } from '../src/log.js';
import { startHookrelay, type Hookrelay } from '../src/server.js';
import type { SqliteStore } from '../src/store/sqlite/sqlite-store.js';

const ADMIN_TOKEN = 'bench_admin_token_0123456789abcdef';

export interface BenchRelay {
  relay: Hookrelay;
  url: string;
  token: string;
  db: Database.Database;
  api(method: string, path: string, body?: unknown): Promise<any>;
  close(): Promise<void>;
}

/** hookrelay in this process, as `hookrelay serve` would compose it, on a fresh SQLite file; the receivers are on loopback. */
export async function startBenchRelay(flags: RawSettings): Promise<BenchRelay> {
  const dir = mkdtempSync(join(tmpdir(), 'hookrelay-bench-'));
  const settings = loadSettings(
    { port: '0', host: '127.0.0.1', db: join(dir, 'hookrelay.db'), logLevel: 'silent', shutdownGrace: '2s', allowNetworks: '127.0.0.0/8', ...flags },
    { HOOKRELAY_ADMIN_TOKEN: ADMIN_TOKEN },
  );
  const relay = await startHookrelay(settings, createLogger(settings.logLevel));
  const api = async (method: string, path: string, body?: unknown) => {
    const response = await fetch(relay.url + path, {
      method,
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    if (response.status >= 300) throw new Error(`${method} ${path}: ${response.status} ${text}`);
    return text ? JSON.parse(text) : null;
  };
  return {
    relay,
    url: relay.url,
    token: ADMIN_TOKEN,
    db: (relay.store as SqliteStore).db,
    api,
    async close() {
      await relay.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Deliveries not yet finished (pending or leased); both counts use the partial indexes. */
export function unfinished(db: Database.Database): number {
  const pending = (db.prepare("SELECT count(*) AS n FROM delivery WHERE status = 'pending'").get() as { n: number }).n;
  const inFlight = (db.prepare("SELECT count(*) AS n FROM delivery WHERE status = 'in_flight'").get() as { n: number }).n;
  return pending + inFlight;
}

export function statusCounts(db: Database.Database): Record<string, number> {
  const out: Record<string, number> = {};
  for (const row of db.prepare('SELECT status, count(*) AS n FROM delivery GROUP BY status').all() as { status: string; n: number }[]) out[row.status] = row.n;
  return out;
}

export interface StoreCounters {
  claims: number;
  claimed: number;
  claimMs: number;
  completes: number;
  completed: number;
  nextDueAt: number;
  nextDueMs: number;
  /** Group-commit transactions (each one fsync under synchronous=FULL) and the writes they carried. */
  groupCommits: number;
  groupWrites: number;
}

/**
 * Counts the dispatcher's store calls (how many claims and completion batches, how big, how long) by wrapping
 * the store instance's methods; diagnostic only, the calls themselves are unchanged.
 */
export function countStoreCalls(store: Hookrelay['store']): { read(): StoreCounters; reset(): void } {
  const zero = (): StoreCounters => ({ claims: 0, claimed: 0, claimMs: 0, completes: 0, completed: 0, nextDueAt: 0, nextDueMs: 0, groupCommits: 0, groupWrites: 0 });
  let c = zero();
  const s = store as any;
  const claim = s.claim.bind(store);
  const complete = s.complete.bind(store);
  const nextDueAt = s.nextDueAt.bind(store);
  s.claim = async (request: unknown) => {
    const t = performance.now();
    const out = await claim(request);
    c.claimMs += performance.now() - t;
    c.claims++;
    c.claimed += out.length;
    return out;
  };
  s.complete = (outcomes: unknown[]) => {
    c.completes++;
    c.completed += outcomes.length;
    return complete(outcomes);
  };
  const commits = s.commits as { queue: unknown[]; flush(): void } | undefined;
  if (commits) {
    const flush = commits.flush.bind(commits);
    commits.flush = () => {
      if (commits.queue.length > 0) {
        c.groupCommits++;
        c.groupWrites += commits.queue.length;
      }
      flush();
    };
  }
  s.nextDueAt = async () => {
    const t = performance.now();
    const out = await nextDueAt();
    c.nextDueMs += performance.now() - t;
    c.nextDueAt++;
    return out;
  };
  return {
    read: () => ({ ...c }),
    reset: () => (c = zero()),
  };
}
