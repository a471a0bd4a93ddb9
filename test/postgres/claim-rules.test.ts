import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import type { HealthPolicy } from '../../src/domain/health.js';
import type { ClaimedDelivery } from '../../src/domain/types.js';
import { PostgresStore } from '../../src/store/postgres/postgres-store.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import type { AttemptOutcome, Store } from '../../src/store/store.js';
import { freshDatabase, skipWithoutPostgres } from '../helpers/postgres.js';
import { attemptOf, endpointInput } from './conformance.js';

/**
 * The delivery rules are written twice: TypeScript around small statements for SQLite (store/sqlite/claim.ts), one
 * SQL statement for PostgreSQL (store/postgres/claim.ts). Random histories of accepts, claims, outcomes, releases and
 * clock jumps run on both stores side by side, and every observable result must be the same: which endpoint gets
 * which message at each claim (caps, FIFO, ordering keys with either park rule, filters, disabled endpoints, due times,
 * the circuit breaker's open and half-open states), the fan-out of each accept, the endpoints' health, and when the next delivery is due.
 */

const T0 = Date.UTC(2026, 2, 1);
const POLICY: HealthPolicy = { threshold: 2, cooldownMs: 10_000, maxCooldownMs: 40_000, disableAfterMs: 0, disableAfterParked: 0 };
const LIMIT = 1000;

const endpointSpec = fc.record({
  maxInFlight: fc.integer({ min: 1, max: 3 }),
  ordering: fc.constantFrom('parallel' as const, 'fifo' as const, 'key' as const),
  orderingOnPark: fc.constantFrom('skip' as const, 'hold' as const),
  filterTypes: fc.constantFrom(null, ['a'], ['b'], ['a', 'b']),
  disabled: fc.constantFrom(false, false, false, true),
});

const op = fc.oneof(
  { weight: 4, arbitrary: fc.record({
      kind: fc.constant('accept' as const),
      eventType: fc.constantFrom('a', 'b'),
      later: fc.constantFrom(0, 0, 0, 5_000),
      key: fc.constantFrom(null, 'k1', 'k1', 'k2', 'k3'),
    }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('claim' as const) }) },
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant('finish' as const),
      pick: fc.nat(),
      outcome: fc.constantFrom('succeeded' as const, 'retry' as const, 'retry' as const, 'parked' as const),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('release' as const) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('tick' as const), ms: fc.constantFrom(1_000, 6_000, 11_000, 45_000) }) },
);

type Op = typeof op extends fc.Arbitrary<infer T> ? T : never;
type Spec = typeof endpointSpec extends fc.Arbitrary<infer T> ? T : never;

/** One store's run of a history, with deliveries named by (endpoint, message) index so that both runs compare. */
class Run {
  private endpoints: string[] = [];
  private messages: string[] = [];
  private inFlight: ClaimedDelivery[] = [];
  private appId = '';
  readonly trace: unknown[] = [];

  constructor(
    private readonly store: Store,
    private readonly owner: string,
  ) {}

  private name = (c: ClaimedDelivery) => `e${this.endpoints.indexOf(c.endpoint.id)}:m${this.messages.indexOf(c.message.id)}`;

  async setUp(specs: Spec[], scenario: number): Promise<void> {
    const app = await this.store.createApp({ name: `rules ${scenario}`, uid: null, rateLimit: null, metadata: {} }, T0);
    this.appId = app.id;
    for (const spec of specs) {
      // Which keys a key-ordered endpoint serves first when its cap binds is each store's round robin, not a rule: with
      // room for every key, the rules alone decide (caps themselves are checked on the other orderings).
      const maxInFlight = spec.ordering === 'key' ? 100 : spec.maxInFlight;
      const endpoint = await this.store.createEndpoint(app.id, endpointInput({ maxInFlight, ordering: spec.ordering, orderingOnPark: spec.orderingOnPark, filterTypes: spec.filterTypes ? [...spec.filterTypes] : null, disabled: spec.disabled }), 's', T0);
      this.endpoints.push(endpoint.id);
    }
  }

  async step(o: Op, now: number): Promise<void> {
    switch (o.kind) {
      case 'accept': {
        const result = await this.store.accept({
          appId: this.appId,
          eventType: o.eventType,
          eventId: null,
          payload: Buffer.from(`{"n":${this.messages.length}}`),
          contentType: 'application/json',
          channels: null,
          tags: null,
          idempotencyKey: null,
          idempotencyTtlMs: 0,
          now,
          dueAt: now + o.later,
          orderingKey: o.key,
        });
        assert.equal(result.kind, 'accepted');
        if (result.kind !== 'accepted') return;
        this.messages.push(result.message.id);
        this.trace.push(['accept', result.deliveries]);
        return;
      }
      case 'claim': {
        const claimed = await this.store.claim({ owner: this.owner, now, limit: LIMIT, leaseMs: 600_000 });
        this.inFlight.push(...claimed);
        this.inFlight.sort((a, b) => this.name(a).localeCompare(this.name(b)));
        this.trace.push(['claim', claimed.map(this.name).sort()]);
        return;
      }
      case 'finish': {
        if (this.inFlight.length === 0) return;
        const [claimed] = this.inFlight.splice(o.pick % this.inFlight.length, 1);
        const next: AttemptOutcome['next'] = o.outcome === 'retry' ? { kind: 'retry', at: now + 3_000, retryIndex: claimed.delivery.retryIndex + 1 } : { kind: o.outcome };
        const changes = await this.store.complete([{ owner: this.owner, attempt: attemptOf(claimed, now, o.outcome === 'succeeded'), next }], POLICY);
        this.trace.push(['finish', this.name(claimed), o.outcome, changes.map((c) => [this.endpoints.indexOf(c.endpointId), c.opened, c.closed, c.disabled])]);
        return;
      }
      case 'release': {
        this.trace.push(['release', await this.store.releaseLeases(this.owner)]);
        this.inFlight = [];
        return;
      }
      case 'tick':
        return;
    }
  }

  /** What both stores must agree on after every step. */
  async state(): Promise<unknown> {
    const health = [];
    for (const id of this.endpoints) {
      const e = (await this.store.getEndpoint(this.appId, id))!;
      health.push([e.disabled, e.health.consecutiveFailures, e.health.openUntil]);
    }
    return { health, nextDueAt: await this.store.nextDueAt() };
  }

  async tearDown(): Promise<void> {
    await this.store.releaseLeases(this.owner);
    await this.store.deleteApp(this.appId);
  }
}

const skip = skipWithoutPostgres();

describe('delivery rules: SQLite and PostgreSQL agree on random histories', { skip }, () => {
  let sqlite: SqliteStore;
  let postgres: PostgresStore;
  let dir: string;
  let drop: () => Promise<void>;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hookrelay-rules-'));
    sqlite = new SqliteStore({ path: join(dir, 'store.db') });
    const database = await freshDatabase();
    drop = () => database.drop();
    postgres = await PostgresStore.open({ url: database.url });
  });

  after(async () => {
    await sqlite?.close();
    await postgres?.close();
    await drop?.();
    rmSync(dir, { recursive: true, force: true });
  });

  it('claims, fan-out, health and the next due time match step by step', async () => {
    let scenario = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(endpointSpec, { minLength: 1, maxLength: 4 }), fc.array(op, { minLength: 5, maxLength: 40 }), async (specs, ops) => {
        scenario++;
        const runs = [new Run(sqlite, 'rules'), new Run(postgres, 'rules')];
        try {
          for (const run of runs) await run.setUp(specs, scenario);
          let now = T0 + 1_000;
          for (const [i, o] of ops.entries()) {
            now += o.kind === 'tick' ? o.ms : 1;
            const [a, b] = await Promise.all(runs.map(async (run) => (await run.step(o, now), run.state())));
            assert.deepEqual(runs[1].trace, runs[0].trace, `step ${i} (${JSON.stringify(o)}): PostgreSQL's results differ from SQLite's`);
            assert.deepEqual(b, a, `step ${i} (${JSON.stringify(o)}): endpoint health or the next due time differ`);
          }
        } finally {
          for (const run of runs) await run.tearDown();
        }
      }),
      {
        numRuns: Number(process.env.RULES_RUNS ?? 60),
        includeErrorInReport: true,
        // Histories the random ones reach rarely: a circuit that opens, then a half-open endpoint with work waiting.
        examples: [
          // RULES_EXAMPLE=<file>: replay a counterexample (the JSON after "Counterexample:" in a failure).
          ...(process.env.RULES_EXAMPLE ? [JSON.parse(readFileSync(process.env.RULES_EXAMPLE, 'utf8'))] : []),
          [
            [{ maxInFlight: 3, ordering: 'parallel' as const, orderingOnPark: 'skip' as const, filterTypes: null, disabled: false }],
            [
              ...Array.from({ length: 5 }, () => ({ kind: 'accept' as const, eventType: 'a' as const, later: 0 as const, key: null })),
              { kind: 'claim' as const },
              { kind: 'finish' as const, pick: 0, outcome: 'retry' as const },
              { kind: 'finish' as const, pick: 0, outcome: 'retry' as const },
              { kind: 'claim' as const },
              { kind: 'tick' as const, ms: 11_000 as const },
              { kind: 'claim' as const },
              { kind: 'finish' as const, pick: 0, outcome: 'succeeded' as const },
              { kind: 'claim' as const },
              { kind: 'finish' as const, pick: 0, outcome: 'retry' as const },
              { kind: 'tick' as const, ms: 11_000 as const },
              { kind: 'claim' as const },
            ],
          ],
        ],
        seed: process.env.RULES_SEED === undefined ? undefined : Number(process.env.RULES_SEED) },
    );
  });
});
