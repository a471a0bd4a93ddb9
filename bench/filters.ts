import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PostgresStore } from '../src/store/postgres/postgres-store.js';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';
import type { EndpointInput, Store } from '../src/store/store.js';
import { freshDatabase, postgresMissing } from '../test/helpers/postgres.js';
import { benchPayload, now } from './shared.js';

export interface FilterFanOutRow {
  store: string;
  endpoints: number;
  /** Accepts per second fanning out to `endpoints` endpoints with no content filter, then with one each. */
  plain: number;
  filtered: number;
}

const endpoint = (filter: Record<string, unknown> | null): EndpointInput => ({
  uid: null,
  url: 'http://127.0.0.1:9/e',
  description: '',
  version: 1,
  filterTypes: null,
  channels: null,
  filter,
  headers: {},
  disabled: false,
  rateLimit: null,
  ordering: 'parallel',
  maxInFlight: 10_000,
  metadata: {},
  destination: null,
});

/**
 * A filter of the usual shape (a nested equality, a range, a membership test and a regex), different per endpoint
 * (a pattern of its own each, so no regex answer is shared) and passing the bench payload: both apps write the same
 * deliveries, and the difference is the matching alone.
 */
const filterOf = (i: number) => ({
  body: {
    type: 'bench.event',
    'data.attempt': { $gte: 0, $lt: 1_000_000 + i },
    'data.customer.plan': { $in: ['pro', `plan-${i}`] },
    'data.customer.email': { $regex: `^user-${i}@|@example\\.(com|org)$` },
  },
});

async function acceptRate(store: Store, appId: string, messages: number): Promise<number> {
  // A different address per message, so no regular expression answer is reused from an earlier message.
  const payloadOf = (seq: number) => {
    const base = benchPayload(seq);
    return Buffer.from(JSON.stringify({ ...base, data: { ...(base.data as object), attempt: seq, customer: { plan: 'pro', email: `user${seq}@example.com` } } }));
  };
  const start = now();
  for (let done = 0; done < messages; ) {
    const chunk = Math.min(64, messages - done);
    await Promise.all(
      Array.from({ length: chunk }, (_, k) =>
        store.accept({ appId, eventType: 'bench.event', eventId: null, payload: payloadOf(done + k), contentType: 'application/json', channels: null, tags: null, idempotencyKey: null, idempotencyTtlMs: 0, now: Date.now(), dueAt: Date.now() }),
      ),
    );
    done += chunk;
  }
  return messages / ((now() - start) / 1000);
}

async function measure(name: string, store: Store, endpoints: number, messages: number): Promise<FilterFanOutRow> {
  const t = Date.now();
  const plainApp = await store.createApp({ name: 'plain', uid: null, rateLimit: null, metadata: {} }, t);
  const filteredApp = await store.createApp({ name: 'filtered', uid: null, rateLimit: null, metadata: {} }, t);
  for (let i = 0; i < endpoints; i++) {
    await store.createEndpoint(plainApp.id, endpoint(null), 'whsec_' + Buffer.alloc(24, 7).toString('base64'), t);
    await store.createEndpoint(filteredApp.id, endpoint(filterOf(i)), 'whsec_' + Buffer.alloc(24, 7).toString('base64'), t);
  }
  // Warm both paths (statement caches, the compiled filters) before timing; then alternate to share any drift.
  await acceptRate(store, plainApp.id, 64);
  await acceptRate(store, filteredApp.id, 64);
  const half = Math.max(1, Math.floor(messages / 2));
  const plain = [await acceptRate(store, plainApp.id, half)];
  const filtered = [await acceptRate(store, filteredApp.id, half)];
  plain.push(await acceptRate(store, plainApp.id, half));
  filtered.push(await acceptRate(store, filteredApp.id, half));
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  return { store: name, endpoints, plain: mean(plain), filtered: mean(filtered) };
}

/**
 * Fan-out cost of content filters, in the store alone: accepts per second of messages fanning out to `endpoints`
 * endpoints without filters, against the same with a filter on every endpoint (all matching). SQLite, then
 * PostgreSQL when its binaries are installed.
 */
export async function filterFanOut(endpoints: number, messages: number, synchronous: 'FULL' | 'NORMAL'): Promise<{ rows: FilterFanOutRow[]; problems: string[] }> {
  const rows: FilterFanOutRow[] = [];
  const problems: string[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'hookrelay-bench-filters-'));
  const sqlite = new SqliteStore({ path: join(dir, 'store.db'), synchronous });
  try {
    rows.push(await measure('sqlite', sqlite, endpoints, messages));
  } finally {
    await sqlite.close();
    rmSync(dir, { recursive: true, force: true });
  }
  const missing = postgresMissing();
  if (missing) {
    problems.push(`content-filter fan-out on PostgreSQL skipped: ${missing}`);
    return { rows, problems };
  }
  const database = await freshDatabase();
  const postgres = await PostgresStore.open({ url: database.url, poolSize: 4 });
  try {
    rows.push(await measure('postgres', postgres, endpoints, messages));
  } finally {
    await postgres.close();
    await database.drop();
  }
  return { rows, problems };
}
