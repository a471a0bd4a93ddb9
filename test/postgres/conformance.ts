import assert from 'node:assert/strict';
import { describe, it as test } from 'node:test';
import { HookrelayError } from '../../src/domain/errors.js';
import { HEALTHY, type HealthPolicy } from '../../src/domain/health.js';
import { ID_PREFIX, newId } from '../../src/domain/ids.js';
import { RATE_CLAIM_MARGIN_MS, RATE_LOOKAHEAD_MS } from '../../src/domain/rate.js';
import type { ApiKey, Attempt, ClaimedDelivery } from '../../src/domain/types.js';
import { NO_VERIFICATION, pendingVerification, verificationAfterAttempt } from '../../src/domain/verification.js';
import { SecretBox } from '../../src/secrets/box.js';
import { SecretFields } from '../../src/secrets/fields.js';
import { sealStore } from '../../src/secrets/sealed-store.js';
import type { AcceptInput, AcceptResult, AttemptOutcome, EndpointInput, SecretRow, Store } from '../../src/store/store.js';

/**
 * The Store contract, checked the same way on every backend: each behaviour here is something the API or the
 * dispatcher relies on. Times are injected (T0 + offsets), so nothing depends on the wall clock.
 */

export interface StoreUnderTest {
  store: Store;
  close(): Promise<void>;
}

const T0 = Date.UTC(2026, 0, 1);
const HOUR = 3_600_000;

const appInput = (uid: string | null = null) => ({ name: `app ${uid ?? 'anon'}`, uid, rateLimit: null, metadata: { team: 'a' } });

export const endpointInput = (overrides: Partial<EndpointInput> = {}): EndpointInput => ({
  uid: null,
  url: 'http://127.0.0.1:9/hook',
  description: '',
  version: 1,
  filterTypes: null,
  channels: null,
  filter: null,
  headers: {},
  disabled: false,
  rateLimit: null,
  ordering: 'parallel',
  maxInFlight: 32,
  metadata: {},
  destination: null,
  ...overrides,
});

const acceptInput = (appId: string, overrides: Partial<AcceptInput> = {}): AcceptInput => ({
  appId,
  eventType: 'invoice.paid',
  eventId: null,
  payload: Buffer.from('{"n":1}'),
  contentType: 'application/json',
  channels: null,
  tags: null,
  idempotencyKey: null,
  idempotencyTtlMs: 24 * HOUR,
  now: T0,
  dueAt: T0,
  ...overrides,
});

function accepted(result: AcceptResult) {
  assert.equal(result.kind, 'accepted', JSON.stringify(result));
  return result as Extract<AcceptResult, { kind: 'accepted' }>;
}

export const attemptOf = (claimed: ClaimedDelivery, startedAt: number, succeeded: boolean): Attempt => ({
  id: newId(ID_PREFIX.attempt, startedAt),
  deliveryId: claimed.delivery.id,
  messageId: claimed.delivery.messageId,
  endpointId: claimed.delivery.endpointId,
  appId: claimed.delivery.appId,
  url: claimed.endpoint.url,
  startedAt,
  durationMs: 5,
  statusCode: succeeded ? 200 : 500,
  succeeded,
  responseBody: succeeded ? 'ok' : 'boom',
  error: null,
  trigger: 'scheduled',
  request: null,
});

const succeed = (owner: string, claimed: ClaimedDelivery, at: number): AttemptOutcome => ({ owner, attempt: attemptOf(claimed, at, true), next: { kind: 'succeeded' } });
const park = (owner: string, claimed: ClaimedDelivery, at: number): AttemptOutcome => ({ owner, attempt: attemptOf(claimed, at, false), next: { kind: 'parked' } });
const retryLater = (owner: string, claimed: ClaimedDelivery, at: number): AttemptOutcome => ({
  owner,
  attempt: attemptOf(claimed, at, false),
  next: { kind: 'retry', at: at + 10, retryIndex: claimed.delivery.retryIndex + 1 },
});

async function rejectsWith(promise: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(promise, (error: unknown) => error instanceof HookrelayError && error.code === code);
}

/** Every page of a listing, following `iterator`. */
async function all<T>(list: (iterator: string | null) => Promise<{ data: T[]; iterator: string | null; done: boolean }>): Promise<T[]> {
  const out: T[] = [];
  let iterator: string | null = null;
  for (;;) {
    const page = await list(iterator);
    out.push(...page.data);
    if (page.done) return out;
    iterator = page.iterator;
  }
}

export function storeConformance(backend: string, open: () => Promise<StoreUnderTest>, skip: false | string = false): void {
  // Each test gets a store of its own, so no test sees another's deliveries.
  const it = (name: string, body: (store: Store) => Promise<void>) =>
    test(name, async (t) => {
      const subject = await open();
      t.after(() => subject.close());
      await body(subject.store);
    });

  describe(`Store conformance: ${backend}`, { skip }, () => {
    describe('apps, event types, endpoints and sources', () => {
      it('finds an app by id or uid, refuses a second app with the same uid, and pages in id order both ways', async (store) => {
        const app = await store.createApp(appInput('acme'), T0);
        assert.deepEqual(await store.getApp('acme'), app);
        assert.deepEqual(await store.getApp(app.id), app);
        assert.deepEqual(app.metadata, { team: 'a' });
        await rejectsWith(store.createApp(appInput('acme'), T0), 'conflict');
        const other = await store.createApp(appInput(null), T0 + 1);
        await rejectsWith(store.updateApp(other.id, appInput('acme'), T0 + 2), 'conflict');
        await rejectsWith(store.updateApp('app_missing', appInput('x'), T0 + 2), 'not_found');
        const renamed = await store.updateApp(other.id, { ...appInput('beta'), name: 'Beta' }, T0 + 3);
        assert.equal(renamed.name, 'Beta');
        assert.equal(renamed.updatedAt, T0 + 3);

        const created = [app.id, other.id];
        for (let i = 0; i < 5; i++) created.push((await store.createApp(appInput(null), T0 + 10 + i)).id);
        const ascending = await all((iterator) => store.listApps({ limit: 2, iterator, order: 'ascending' }));
        assert.deepEqual(ascending.map((a) => a.id), [...created].sort());
        const descending = await all((iterator) => store.listApps({ limit: 3, iterator }));
        assert.deepEqual(descending.map((a) => a.id), [...created].sort().reverse());
        // prevIterator walks back to the page before.
        const first = await store.listApps({ limit: 2, order: 'ascending' });
        const second = await store.listApps({ limit: 2, order: 'ascending', iterator: first.iterator });
        const back = await store.listApps({ limit: 2, order: 'ascending', iterator: second.prevIterator });
        assert.deepEqual(back.data.map((a) => a.id), first.data.map((a) => a.id));

        await store.deleteApp(other.id);
        assert.equal(await store.getApp(other.id), null);
      });

      it('lists event types by name byte-wise, hides archived ones unless asked, and lets an archived name be created again', async (store) => {
        const base = { description: 'd', archived: false, deprecated: false, featureFlag: null, groupName: null, schemas: null, validatePayloads: false };
        for (const name of ['b.two', 'B.one', 'a.three']) await store.createEventType({ ...base, name }, T0);
        await rejectsWith(store.createEventType({ ...base, name: 'b.two' }, T0), 'conflict');
        const schemas = { '1': { type: 'object', properties: { z: { type: 'string' }, a: { type: 'number' } } } };
        const updated = await store.updateEventType({ ...base, name: 'a.three', archived: true, schemas }, T0 + 1);
        assert.deepEqual(updated.schemas, schemas);
        assert.deepEqual(Object.keys((updated.schemas as any)['1'].properties), ['z', 'a'], 'a schema keeps its key order');
        assert.equal(updated.validatePayloads, false);
        assert.equal((await store.updateEventType({ ...base, name: 'b.two', validatePayloads: true }, T0 + 1)).validatePayloads, true);
        assert.equal((await store.getEventType('b.two'))!.validatePayloads, true);
        const visible = await store.listEventTypes({ limit: 50 }, false);
        assert.deepEqual(visible.data.map((e) => e.name), ['B.one', 'b.two']);
        const everything = await store.listEventTypes({ limit: 50 }, true);
        assert.deepEqual(everything.data.map((e) => e.name), ['B.one', 'a.three', 'b.two']);
        const revived = await store.createEventType({ ...base, name: 'a.three', description: 'again' }, T0 + 2);
        assert.equal(revived.archived, false);
        assert.equal(revived.description, 'again');
        await store.deleteEventType('a.three');
        assert.equal(await store.getEventType('a.three'), null);
      });

      it('scopes endpoint uids to their app, clears the disabled reason on re-enable, and keeps a rotated secret until it expires', async (store) => {
        const app = await store.createApp(appInput(null), T0);
        const otherApp = await store.createApp(appInput(null), T0);
        const endpoint = await store.createEndpoint(app.id, endpointInput({ uid: 'main', headers: { 'x-a': '1' }, filterTypes: ['a'], channels: ['c'] }), 'whsec_one', T0);
        assert.deepEqual(await store.getEndpoint(app.id, 'main'), endpoint);
        assert.equal(await store.getEndpoint(otherApp.id, 'main'), null);
        assert.deepEqual(endpoint.filterTypes, ['a']);
        assert.deepEqual(endpoint.headers, { 'x-a': '1' });
        await rejectsWith(store.createEndpoint(app.id, endpointInput({ uid: 'main' }), 'whsec_x', T0), 'conflict');
        await store.createEndpoint(otherApp.id, endpointInput({ uid: 'main' }), 'whsec_x', T0);

        await store.setEndpointDisabled(endpoint.id, true, 'answered 410', T0 + 1);
        assert.equal((await store.getEndpoint(app.id, endpoint.id))!.disabledReason, 'answered 410');
        const enabled = await store.updateEndpoint(app.id, endpoint.id, endpointInput({ uid: 'main', ordering: 'fifo', maxInFlight: 3 }), T0 + 2);
        assert.equal(enabled.disabled, false);
        assert.equal(enabled.disabledReason, null);
        assert.equal(enabled.ordering, 'fifo');
        assert.equal(enabled.maxInFlight, 3);
        await rejectsWith(store.updateEndpoint(app.id, 'ep_missing', endpointInput(), T0), 'not_found');

        const rotated = await store.rotateEndpointSecret(app.id, endpoint.id, 'whsec_two', T0 + HOUR, T0 + 3);
        assert.deepEqual(rotated.secrets, [
          { key: 'whsec_two', expiresAt: null },
          { key: 'whsec_one', expiresAt: T0 + HOUR },
        ]);
        const again = await store.rotateEndpointSecret(app.id, endpoint.id, 'whsec_three', T0 + 3 * HOUR, T0 + 2 * HOUR);
        assert.deepEqual(again.secrets.map((s) => s.key), ['whsec_three', 'whsec_two'], 'an expired previous secret is dropped');

        const temporal = await store.createEndpoint(app.id, endpointInput({ destination: { type: 'temporal', taskQueue: 'q' } }), 'whsec_t', T0);
        assert.deepEqual((await store.listDestinationEndpoints()).map((e) => e.id), [temporal.id]);
        await store.deleteEndpoint(app.id, temporal.id);
        assert.deepEqual(await store.listDestinationEndpoints(), []);
      });

      it('creates a source with its own app, finds it by token, rotates the token, and deletes it with its app', async (store) => {
        const source = await store.createSource({ name: 'stripe', uid: 'stripe-prod', type: 'stripe', config: { secret: 's' }, metadata: {} }, 'tok_1', T0);
        assert.equal((await store.getApp(source.appId))!.metadata.source, source.id);
        assert.deepEqual(await store.getSourceByToken('tok_1'), source);
        assert.deepEqual(await store.getSource('stripe-prod'), source);
        await rejectsWith(store.createSource({ name: 'again', uid: 'stripe-prod', type: 'stripe', config: {}, metadata: {} }, 'tok_2', T0), 'conflict');
        const rotated = await store.setSourceToken(source.id, 'tok_3', T0 + 1);
        assert.equal(rotated.token, 'tok_3');
        assert.equal(await store.getSourceByToken('tok_1'), null);
        const updated = await store.updateSource(source.id, { name: 'renamed', uid: 'stripe-prod', type: 'stripe', config: { secret: 't' }, metadata: { a: 'b' } }, T0 + 2);
        assert.deepEqual(updated.config, { secret: 't' });
        await store.deleteSource(source.id);
        assert.equal(await store.getSource(source.id), null);
        assert.equal(await store.getApp(source.appId), null);
      });
    });

    describe('accept', () => {
      it('fans a message out to the enabled endpoints whose type filter and channels match, and stores the exact bytes', async (store) => {
        const app = await store.createApp(appInput(null), T0);
        const every = await store.createEndpoint(app.id, endpointInput(), 's', T0);
        const typed = await store.createEndpoint(app.id, endpointInput({ filterTypes: ['invoice.paid'] }), 's', T0);
        await store.createEndpoint(app.id, endpointInput({ filterTypes: ['other'] }), 's', T0);
        const channelled = await store.createEndpoint(app.id, endpointInput({ channels: ['eu'] }), 's', T0);
        await store.createEndpoint(app.id, endpointInput({ channels: ['us'] }), 's', T0);
        await store.createEndpoint(app.id, endpointInput({ disabled: true }), 's', T0);
        const bytes = Buffer.from([0xff, 0x00, 0x7b, 0xc3]);
        const result = accepted(await store.accept(acceptInput(app.id, { payload: bytes, contentType: 'application/octet-stream', channels: ['eu'], tags: ['t1'] })));
        assert.equal(result.deliveries, 3);
        const message = (await store.getMessage(app.id, result.message.id))!;
        assert.deepEqual(Buffer.from(message.payload!), bytes);
        assert.deepEqual(message.channels, ['eu']);
        assert.deepEqual(message.tags, ['t1']);
        const views = await store.listDeliveriesByMessage(app.id, result.message.id, { limit: 50 });
        assert.deepEqual(views.data.map((v) => v.endpoint.id).sort(), [every.id, typed.id, channelled.id].sort());
        assert.ok(views.data.every((v) => v.delivery.status === 'pending' && v.lastAttemptAt === null));
      });

      it('fans out to endpoints with a content filter only when the payload or the kept headers match, without changing the bytes', async (store) => {
        const app = await store.createApp(appInput(null), T0);
        const plain = await store.createEndpoint(app.id, endpointInput(), 's', T0);
        const big = await store.createEndpoint(app.id, endpointInput({ filter: { body: { amount: { $gte: 1000 } } } }), 's', T0);
        const eu = await store.createEndpoint(app.id, endpointInput({ filter: { body: { 'customer.region': { $in: ['eu', 'uk'] } } } }), 's', T0);
        const pushes = await store.createEndpoint(app.id, endpointInput({ filter: { headers: { 'x-github-event': 'push' } } }), 's', T0);
        // A content filter adds to the type filter: both must match.
        const typedBig = await store.createEndpoint(app.id, endpointInput({ filterTypes: ['other'], filter: { body: { amount: { $gte: 1000 } } } }), 's', T0);
        await store.createEndpoint(app.id, endpointInput({ disabled: true, filter: { body: { amount: { $gte: 0 } } } }), 's', T0);
        assert.deepEqual((await store.getEndpoint(app.id, big.id))!.filter, { body: { amount: { $gte: 1000 } } });

        const destinations = async (payload: string, source?: AcceptInput['source']) => {
          const bytes = Buffer.from(payload);
          const result = accepted(await store.accept(acceptInput(app.id, { payload: bytes, source })));
          const stored = (await store.getMessage(app.id, result.message.id))!;
          assert.deepEqual(Buffer.from(stored.payload!), bytes, 'the stored bytes are the bytes accepted');
          const views = await store.listDeliveriesByMessage(app.id, result.message.id, { limit: 50 });
          assert.equal(result.deliveries, views.data.length);
          return views.data.map((v) => v.endpoint.id).sort();
        };
        assert.deepEqual(await destinations('{"amount": 1500, "customer": {"region": "eu"}, "id": 123456789012345678901234567890}'), [plain.id, big.id, eu.id].sort());
        assert.deepEqual(await destinations('{"amount": 10, "customer": {"region": "us"}}'), [plain.id]);
        assert.deepEqual(await destinations('not json at all'), [plain.id], 'a payload that is not JSON matches no body condition');
        const source = await store.createSource({ name: 'gh', uid: null, type: 'none', config: {}, metadata: {} }, 'tok', T0);
        assert.ok(source);
        assert.deepEqual(
          await destinations('{"amount": 5}', { id: source.id, headers: { 'x-github-event': 'push' }, verified: true }),
          [plain.id, pushes.id].sort(),
        );
        // A message that matches no endpoint is still stored and listed.
        await store.deleteEndpoint(app.id, plain.id);
        const unmatched = accepted(await store.accept(acceptInput(app.id, { payload: Buffer.from('{"amount": 1}') })));
        assert.equal(unmatched.deliveries, 0);
        assert.equal((await store.getMessage(app.id, unmatched.message.id))!.id, unmatched.message.id);

        // A changed filter routes the next message; a removed one lets everything through.
        await store.updateEndpoint(app.id, big.id, endpointInput({ filter: { body: { amount: { $lt: 100 } } } }), T0 + 1);
        await store.updateEndpoint(app.id, eu.id, endpointInput({ filter: null }), T0 + 1);
        assert.deepEqual(await destinations('{"amount": 1}'), [big.id, eu.id].sort());
        assert.ok(typedBig);
      });

      it('answers a live idempotency key with the original message, and a new message once it has expired', async (store) => {
        const app = await store.createApp(appInput(null), T0);
        await store.createEndpoint(app.id, endpointInput(), 's', T0);
        const first = accepted(await store.accept(acceptInput(app.id, { idempotencyKey: 'k', idempotencyTtlMs: HOUR })));
        const again = await store.accept(acceptInput(app.id, { idempotencyKey: 'k', now: T0 + HOUR - 1, payload: Buffer.from('{"n":2}') }));
        assert.equal(again.kind, 'duplicate');
        assert.equal(again.kind === 'duplicate' && again.message.id, first.message.id);
        const otherApp = await store.createApp(appInput(null), T0);
        accepted(await store.accept(acceptInput(otherApp.id, { idempotencyKey: 'k' })));
        const later = accepted(await store.accept(acceptInput(app.id, { idempotencyKey: 'k', now: T0 + HOUR })));
        assert.notEqual(later.message.id, first.message.id);
        const replay = await store.accept(acceptInput(app.id, { idempotencyKey: 'k', now: T0 + HOUR + 1 }));
        assert.equal(replay.kind === 'duplicate' && replay.message.id, later.message.id);
      });

      it('answers a provider redelivery within the dedupe window with the original message, and stores one after it', async (store) => {
        const source = await store.createSource({ name: 'gh', uid: null, type: 'github', config: { secret: 's' }, metadata: {} }, 'tok-dedupe', T0);
        await store.createEndpoint(source.appId, endpointInput(), 's', T0);
        const delivery = (eventId: string, now: number) =>
          store.accept(acceptInput(source.appId, { eventId, now, dueAt: now, dedupeWindowMs: HOUR, source: { id: source.id, headers: {}, verified: true } }));
        const first = accepted(await delivery('gh-1', T0));
        assert.equal(first.deliveries, 1);
        const again = await delivery('gh-1', T0 + HOUR - 1);
        assert.equal(again.kind, 'duplicate');
        assert.equal(again.kind === 'duplicate' && again.message.id, first.message.id);
        accepted(await delivery('gh-2', T0 + 1));
        const later = accepted(await delivery('gh-1', T0 + HOUR + 1));
        assert.notEqual(later.message.id, first.message.id, 'after the window the provider sent it anew');
        const replay = await delivery('gh-1', T0 + HOUR + 2);
        assert.equal(replay.kind === 'duplicate' && replay.message.id, later.message.id, 'the newest one answers');
        const other = await store.createSource({ name: 'gh2', uid: null, type: 'github', config: { secret: 's' }, metadata: {} }, 'tok-dedupe-2', T0);
        accepted(await store.accept(acceptInput(other.appId, { eventId: 'gh-1', now: T0 + 2, dedupeWindowMs: HOUR, source: { id: other.id, headers: {}, verified: true } })));
      });

      it('refuses a second message with the same eventId (but a retry with the same idempotency key is a duplicate, not a conflict)', async (store) => {
        const app = await store.createApp(appInput(null), T0);
        const first = accepted(await store.accept(acceptInput(app.id, { eventId: 'evt-1', idempotencyKey: 'k1' })));
        assert.deepEqual(await store.accept(acceptInput(app.id, { eventId: 'evt-1' })), { kind: 'event_id_conflict', eventId: 'evt-1' });
        const retried = await store.accept(acceptInput(app.id, { eventId: 'evt-1', idempotencyKey: 'k1' }));
        assert.equal(retried.kind === 'duplicate' && retried.message.id, first.message.id);
        // The conflicting accept recorded no key: the same key with a fresh eventId is a new message.
        assert.equal((await store.accept(acceptInput(app.id, { eventId: 'evt-1', idempotencyKey: 'k2' }))).kind, 'event_id_conflict');
        accepted(await store.accept(acceptInput(app.id, { eventId: 'evt-2', idempotencyKey: 'k2' })));
        assert.equal((await store.getMessage(app.id, 'evt-1'))!.id, first.message.id, 'a message is found by its eventId');
      });

      it('gives concurrent accepts the results sequential ones would have, and a failing one rejects alone', async (store) => {
        const app = await store.createApp(appInput(null), T0);
        await store.createEndpoint(app.id, endpointInput(), 's', T0);
        // All started in one event-loop turn: one batch. Keys and eventIds repeat within it.
        const inputs: AcceptInput[] = [];
        for (let i = 0; i < 60; i++) {
          inputs.push(acceptInput(app.id, { idempotencyKey: `key-${i % 20}`, eventId: i % 20 === 7 ? null : `evt-${i % 25}`, payload: Buffer.from(`{"i":${i}}`) }));
        }
        inputs.splice(30, 0, acceptInput('app_does_not_exist'));
        const settled = await Promise.allSettled(inputs.map((input) => store.accept(input)));
        assert.equal(settled[30].status, 'rejected', 'an accept for a missing app fails');
        const results = settled.filter((_, i) => i !== 30).map((s) => (s as PromiseFulfilledResult<AcceptResult>).value);

        // What sequential accepts give: replay the same sequence on its own.
        const byKey = new Map<string, string>();
        const byEvent = new Map<string, string>();
        results.forEach((result, i) => {
          const key = `key-${i % 20}`;
          const eventId = i % 20 === 7 ? null : `evt-${i % 25}`;
          if (byKey.has(key)) {
            assert.equal(result.kind, 'duplicate', `#${i}`);
            assert.equal(result.kind === 'duplicate' && result.message.id, byKey.get(key), `#${i}`);
          } else if (eventId && byEvent.has(eventId)) {
            assert.deepEqual(result, { kind: 'event_id_conflict', eventId }, `#${i}`);
          } else {
            const { message, deliveries } = accepted(result);
            assert.equal(deliveries, 1);
            assert.deepEqual(JSON.parse(Buffer.from(message.payload!).toString()), { i });
            byKey.set(key, message.id);
            if (eventId) byEvent.set(eventId, message.id);
          }
        });
        const listed = await all((iterator) => store.listMessages(app.id, {}, { limit: 100, iterator }));
        assert.deepEqual(listed.map((m) => m.id).sort(), [...new Set(byKey.values())].sort());
      });

      it('filters listed messages by event type, channel, tag and time, newest first', async (store) => {
        const app = await store.createApp(appInput(null), T0);
        const a = accepted(await store.accept(acceptInput(app.id, { eventType: 'a', channels: ['x'], tags: ['t'], now: T0 + 1 })));
        const b = accepted(await store.accept(acceptInput(app.id, { eventType: 'b', channels: ['y'], now: T0 + 2 })));
        const c = accepted(await store.accept(acceptInput(app.id, { eventType: 'c', tags: ['t', 'u'], now: T0 + 3 })));
        const ids = async (filter: Parameters<Store['listMessages']>[1]) => (await store.listMessages(app.id, filter, { limit: 10 })).data.map((m) => m.id);
        assert.deepEqual(await ids({}), [c.message.id, b.message.id, a.message.id]);
        assert.deepEqual(await ids({ eventTypes: ['a', 'c'] }), [c.message.id, a.message.id]);
        assert.deepEqual(await ids({ channel: 'y' }), [b.message.id]);
        assert.deepEqual(await ids({ tag: 't' }), [c.message.id, a.message.id]);
        assert.deepEqual(await ids({ after: T0 + 1, before: T0 + 3 }), [b.message.id]);
        await store.expungeMessageContent(app.id, a.message.id);
        assert.equal((await store.getMessage(app.id, a.message.id))!.payload, null);
      });
    });

    describe('overview', () => {
      it('counts messages and attempts per minute within the range, and the queue', async (store) => {
        const app = await store.createApp(appInput(null), T0);
        await store.createEndpoint(app.id, endpointInput(), 's', T0);
        for (const at of [T0 - 1, T0 + 1_000, T0 + 61_000, T0 + 62_000, T0 + 120_000]) accepted(await store.accept(acceptInput(app.id, { now: at, dueAt: at })));
        const [one, two] = await store.claim({ owner: 'o', now: T0 + 63_000, limit: 2, leaseMs: 60_000 });
        await store.complete([succeed('o', one, T0 + 63_000), park('o', two, T0 + 64_000)]);
        await store.claim({ owner: 'o', now: T0 + 65_000, limit: 1, leaseMs: 60_000 });

        const stats = await store.overview(T0, T0 + 120_000);
        assert.deepEqual(stats.messages, [
          { minute: T0, count: 1 },
          { minute: T0 + 60_000, count: 2 },
        ]);
        assert.deepEqual(stats.attempts, [{ minute: T0 + 60_000, count: 2, failed: 1 }]);
        assert.equal(stats.inFlight, 1);
        assert.equal(stats.pending, 2, 'five deliveries, two finished, one in flight');
      });
    });

    describe('claims, outcomes and leases', () => {
      it('honours each endpoint cap and FIFO, skips disabled endpoints, and round-robins a full batch across endpoints', async (store) => {
        const app = await store.createApp(appInput(null), T0);
        const capped = await store.createEndpoint(app.id, endpointInput({ maxInFlight: 3 }), 's', T0);
        const fifo = await store.createEndpoint(app.id, endpointInput({ ordering: 'fifo' }), 's', T0);
        const disabled = await store.createEndpoint(app.id, endpointInput(), 's', T0);
        const messages: string[] = [];
        for (let i = 0; i < 6; i++) messages.push(accepted(await store.accept(acceptInput(app.id, { now: T0 + i }))).message.id);
        await store.setEndpointDisabled(disabled.id, true, 'test', T0);

        const first = await store.claim({ owner: 'o1', now: T0 + 10, limit: 100, leaseMs: 60_000 });
        const per = (claimed: ClaimedDelivery[], id: string) => claimed.filter((c) => c.endpoint.id === id);
        assert.equal(per(first, capped.id).length, 3);
        assert.deepEqual(per(first, fifo.id).map((c) => c.message.id), [messages[0]]);
        assert.equal(per(first, disabled.id).length, 0);
        assert.equal(first.length, 4);
        for (const c of first) {
          assert.equal(c.delivery.status, 'in_flight');
          assert.ok(c.message.payload);
        }
        assert.deepEqual(await store.claim({ owner: 'o1', now: T0 + 10, limit: 100, leaseMs: 60_000 }), [], 'every endpoint is at its cap');

        // FIFO: the next message goes only after the head is finished.
        await store.complete([succeed('o1', per(first, fifo.id)[0], T0 + 11)]);
        const next = await store.claim({ owner: 'o1', now: T0 + 12, limit: 100, leaseMs: 60_000 });
        assert.deepEqual(next.map((c) => c.message.id), [messages[1]]);

        // A limit smaller than the work: successive claims take turns between endpoints.
        const busyApp = await store.createApp(appInput(null), T0);
        const big = await store.createEndpoint(busyApp.id, endpointInput({ maxInFlight: 100, filterTypes: ['invoice.paid'] }), 's', T0);
        const small = await store.createEndpoint(busyApp.id, endpointInput({ maxInFlight: 100, filterTypes: ['rare'] }), 's', T0);
        for (let i = 0; i < 20; i++) await store.accept(acceptInput(busyApp.id, { now: T0 + 20 + i }));
        await store.accept(acceptInput(busyApp.id, { eventType: 'rare', now: T0 + 50 }));
        const seen = new Set<string>();
        for (let i = 0; i < 4; i++) for (const c of await store.claim({ owner: 'o2', now: T0 + 60, limit: 3, leaseMs: 60_000 })) seen.add(c.endpoint.id);
        assert.ok(seen.has(small.id) && seen.has(big.id), 'a backlog on one endpoint does not starve another');
      });

      it('frees an endpoint slot for each finished delivery, and none for an outcome written by an owner that lost the lease', async (store) => {
        const app = await store.createApp(appInput(null), T0);
        await store.createEndpoint(app.id, endpointInput({ maxInFlight: 3 }), 's', T0);
        for (let i = 0; i < 12; i++) accepted(await store.accept(acceptInput(app.id, { now: T0 + i })));
        const claim = (owner: string, at: number) => store.claim({ owner, now: at, limit: 100, leaseMs: 60_000 });
        const [a, b, c] = await claim('o', T0 + 20);
        assert.ok(a && b && c);
        assert.deepEqual(await claim('o', T0 + 21), [], 'at its cap');
        // One succeeded, one retries later (it waits pending, not in flight), one is still in flight.
        await store.complete([succeed('o', a, T0 + 22), retryLater('o', b, T0 + 22)]);
        assert.equal((await claim('o', T0 + 23)).length, 2, 'two slots came back');
        assert.deepEqual(await claim('o', T0 + 24), [], 'at its cap again');
        // An outcome from someone who does not hold the lease is kept as an attempt but frees nothing.
        await store.complete([succeed('intruder', c, T0 + 25)]);
        assert.deepEqual(await claim('o', T0 + 26), [], 'still at its cap');
        assert.equal(await store.releaseLeases('o'), 3);
        assert.equal((await claim('p', T0 + 27)).length, 3, 'released leases free their slots');
      });

      it('frees a slot when its attempt is answered where the store counts slots itself, and never twice', async (store) => {
        const app = await store.createApp(appInput(null), T0);
        await store.createEndpoint(app.id, endpointInput({ maxInFlight: 2 }), 's', T0);
        for (let i = 0; i < 6; i++) accepted(await store.accept(acceptInput(app.id, { now: T0 + i })));
        const claim = (at: number) => store.claim({ owner: 'o', now: at, limit: 100, leaseMs: 60_000 });
        const [a, b] = await claim(T0 + 10);
        assert.ok(a && b);
        if (!store.attemptAnswered) {
          // PostgreSQL counts slots from its table: a slot is free once the outcome is written.
          assert.deepEqual(await claim(T0 + 11), []);
          await store.complete([succeed('o', a, T0 + 12)]);
          assert.equal((await claim(T0 + 13)).length, 1);
          return;
        }
        store.attemptAnswered(a.delivery.id, a.endpoint.id);
        const [c, ...more] = await claim(T0 + 11);
        assert.ok(c, 'the answered attempt freed its slot before its outcome was written');
        assert.deepEqual(more, []);
        assert.deepEqual(await claim(T0 + 12), [], 'b and c hold the cap');
        await store.complete([succeed('o', a, T0 + 13)]);
        assert.deepEqual(await claim(T0 + 14), [], 'the outcome of an answered attempt frees nothing more');
        const [view] = (await store.listDeliveriesByMessage(app.id, a.message.id, { limit: 10 })).data;
        assert.deepEqual([view.delivery.status, view.delivery.attemptCount], ['succeeded', 1], 'one attempt counted once');
        await store.complete([succeed('o', b, T0 + 15)]);
        assert.equal((await claim(T0 + 16)).length, 1);
        // A release of nothing changes no count: the slot c freed stays free, once.
        store.attemptAnswered(c.delivery.id, c.endpoint.id);
        assert.equal(await store.releaseLeases('nobody'), 0);
        const [e, ...rest] = await claim(T0 + 17);
        assert.ok(e, "c's answered attempt freed its slot");
        assert.deepEqual(rest, []);
        await store.complete([succeed('o', c, T0 + 18)]);
        assert.deepEqual(await claim(T0 + 19), [], "c's outcome frees nothing more: d and e hold the cap");
        await store.complete([succeed('o', e, T0 + 20)]);
        assert.equal((await claim(T0 + 21)).length, 1);
      });

      it('keeps slot counts exact when a lease expires while an answered attempt waits for its outcome', async (store) => {
        if (!store.attemptAnswered) {
          assert.equal(store.exclusive, false, 'only a store shared by processes counts slots from its table');
          return;
        }
        const app = await store.createApp(appInput(null), T0);
        await store.createEndpoint(app.id, endpointInput({ maxInFlight: 2 }), 's', T0);
        for (let i = 0; i < 5; i++) accepted(await store.accept(acceptInput(app.id, { now: T0 + i })));
        const [a] = await store.claim({ owner: 'o', now: T0 + 10, limit: 1, leaseMs: 10 });
        const [b] = await store.claim({ owner: 'o', now: T0 + 11, limit: 1, leaseMs: 60_000 });
        assert.ok(a && b);
        store.attemptAnswered(b.delivery.id, b.endpoint.id);
        // a's lease is found expired (once a second): a's slot is free, and b's since its answer; b itself is not claimed again.
        const again = await store.claim({ owner: 'o', now: T0 + 2_000, limit: 100, leaseMs: 60_000 });
        assert.equal(again.length, 2);
        assert.equal(again[0].delivery.id, a.delivery.id, 'a is due again');
        assert.ok(!again.some((c) => c.delivery.id === b.delivery.id), 'b is still held until its outcome is written');
        await store.complete([succeed('o', b, T0 + 2_001)]);
        assert.deepEqual(await store.claim({ owner: 'o', now: T0 + 2_002, limit: 100, leaseMs: 60_000 }), [], "b's outcome frees nothing more");
        await store.complete([succeed('o', again[0], T0 + 2_003)]);
        assert.equal((await store.claim({ owner: 'o', now: T0 + 2_004, limit: 100, leaseMs: 60_000 })).length, 1, "a's outcome frees its slot");
      });

      it('orders by key: one delivery per key in flight, oldest first, a retry holds its own key only, keyless messages unordered', async (store) => {
        const app = await store.createApp(appInput(null), T0);
        const keyed = await store.createEndpoint(app.id, endpointInput({ ordering: 'key', maxInFlight: 10 }), 's', T0);
        assert.deepEqual([keyed.ordering, keyed.orderingOnPark], ['key', 'skip']);
        const sent: Record<string, string[]> = { a: [], b: [], none: [] };
        for (let i = 0; i < 3; i++) {
          for (const key of ['a', 'b', null]) {
            const result = accepted(await store.accept(acceptInput(app.id, { now: T0 + i, orderingKey: key })));
            assert.equal(result.message.orderingKey, key);
            sent[key ?? 'none'].push(result.message.id);
          }
        }
        assert.equal((await store.getMessage(app.id, sent.a[0]))?.orderingKey, 'a');
        const claim = (now: number) => store.claim({ owner: 'o1', now, limit: 100, leaseMs: 60_000 });
        const ids = (claimed: ClaimedDelivery[]) => claimed.map((c) => c.message.id).sort();

        const first = await claim(T0 + 10);
        assert.deepEqual(ids(first), [sent.a[0], sent.b[0], ...sent.none].sort(), 'the head of each key, and every keyless message');
        assert.deepEqual(await claim(T0 + 10), [], 'nothing of a key in flight goes twice');
        const of = (claimed: ClaimedDelivery[], id: string) => claimed.find((c) => c.message.id === id)!;
        await store.complete([retryLater('o1', of(first, sent.a[0]), T0 + 11), succeed('o1', of(first, sent.b[0]), T0 + 11)]);
        // a's head waits for its retry (due at T0 + 21); b goes on.
        const second = await claim(T0 + 12);
        assert.deepEqual(ids(second), [sent.b[1]]);
        await store.complete([park('o1', second[0], T0 + 13)]);
        // skip: b's parked #1 lets #2 go.
        assert.deepEqual(ids(await claim(T0 + 14)), [sent.b[2]]);
        const retried = await claim(T0 + 21);
        assert.deepEqual(ids(retried), [sent.a[0]], 'the retried head comes back first, before the rest of its key');
        await store.complete([succeed('o1', retried[0], T0 + 22)]);
        assert.deepEqual(ids(await claim(T0 + 23)), [sent.a[1]]);
      });

      it('orderingOnPark hold keeps a key until its parked message is resent and succeeds; switching to key orders unfinished deliveries', async (store) => {
        const app = await store.createApp(appInput(null), T0);
        const endpoint = await store.createEndpoint(app.id, endpointInput({ ordering: 'key', orderingOnPark: 'hold' }), 's', T0);
        assert.equal(endpoint.orderingOnPark, 'hold');
        const a: string[] = [];
        for (let i = 0; i < 3; i++) a.push(accepted(await store.accept(acceptInput(app.id, { now: T0 + i, orderingKey: 'a' }))).message.id);
        const claim = (now: number) => store.claim({ owner: 'o1', now, limit: 100, leaseMs: 60_000 });
        const head = await claim(T0 + 10);
        assert.deepEqual(head.map((c) => c.message.id), [a[0]]);
        await store.complete([park('o1', head[0], T0 + 11)]);
        assert.deepEqual(await claim(T0 + 12), [], 'a parked message holds its key');
        await store.resend(app.id, a[0], endpoint.id, T0 + 13);
        const resent = await claim(T0 + 14);
        assert.deepEqual(resent.map((c) => c.message.id), [a[0]]);
        await store.complete([succeed('o1', resent[0], T0 + 15)]);
        assert.deepEqual((await claim(T0 + 16)).map((c) => c.message.id), [a[1]]);

        // A parallel endpoint with a backlog becomes key-ordered: its waiting deliveries follow their messages' keys.
        const other = await store.createApp(appInput(null), T0);
        const later = await store.createEndpoint(other.id, endpointInput({ maxInFlight: 10 }), 's', T0);
        const k: string[] = [];
        for (let i = 0; i < 3; i++) k.push(accepted(await store.accept(acceptInput(other.id, { now: T0 + i, orderingKey: 'k' }))).message.id);
        await store.updateEndpoint(other.id, later.id, endpointInput({ ordering: 'key', maxInFlight: 10 }), T0 + 20);
        const switched = (await claim(T0 + 21)).filter((c) => c.endpoint.id === later.id);
        assert.deepEqual(switched.map((c) => c.message.id), [k[0]]);

        // One switched while a delivery of it is in flight: that delivery is not claimed again, and holds its key.
        const busy = await store.createEndpoint(other.id, endpointInput({ maxInFlight: 10, filterTypes: ['busy'] }), 's', T0);
        const b: string[] = [];
        for (let i = 0; i < 2; i++) b.push(accepted(await store.accept(acceptInput(other.id, { now: T0 + i, eventType: 'busy', orderingKey: 'b' }))).message.id);
        const inFlight = (await claim(T0 + 22)).filter((c) => c.endpoint.id === busy.id);
        assert.deepEqual(inFlight.map((c) => c.message.id).sort(), [...b].sort());
        await store.complete([succeed('o1', inFlight.find((c) => c.message.id === b[1])!, T0 + 23)]);
        await store.updateEndpoint(other.id, busy.id, endpointInput({ ordering: 'key', maxInFlight: 10, filterTypes: ['busy'] }), T0 + 24);
        assert.deepEqual((await claim(T0 + 25)).filter((c) => c.endpoint.id === busy.id), [], 'the delivery in flight is not sent twice');
      });

      it('keeps the request an attempt sent (method, headers in order, names as written) and null for one that sent none, in one batch', async (store) => {
        const app = await store.createApp(appInput(null), T0);
        const endpoint = await store.createEndpoint(app.id, endpointInput(), 's', T0);
        const first = accepted(await store.accept(acceptInput(app.id, { now: T0 }))).message.id;
        accepted(await store.accept(acceptInput(app.id, { now: T0 + 1 })));
        const claimed = await store.claim({ owner: 'o', now: T0 + 10, limit: 10, leaseMs: 60_000 });
        assert.equal(claimed.length, 2);
        const [sent, unsent] = claimed[0].message.id === first ? claimed : [claimed[1], claimed[0]];
        // Order and case as written, a value with quotes, commas and non-ASCII text, a name JSON objects would reorder.
        const request = {
          method: 'PUT',
          headers: [
            ['X-Tenant', 'acme "north", ünïcode'],
            ['webhook-id', sent.message.id],
            ['webhook-signature', 'v1,abc= v1,def='],
            ['7', 'a name an object would move first'],
            ['content-type', 'application/json'],
          ] as [string, string][],
        };
        await store.complete([
          { owner: 'o', attempt: { ...attemptOf(sent, T0 + 20, true), request }, next: { kind: 'succeeded' } },
          { owner: 'o', attempt: attemptOf(unsent, T0 + 20, false), next: { kind: 'parked' } },
        ]);
        const [stored] = (await store.listAttemptsByMessage(app.id, sent.message.id, {}, { limit: 10 })).data;
        assert.deepEqual(stored.request, request);
        assert.deepEqual((await store.getAttempt(app.id, sent.message.id, stored.id))!.request, request);
        const [none] = (await store.listAttemptsByMessage(app.id, unsent.message.id, {}, { limit: 10 })).data;
        assert.equal(none.request, null);
        assert.equal(none.endpointId, endpoint.id);
        assert.equal(await store.expungeAttemptContent(app.id, sent.message.id, stored.id), true);
        assert.equal((await store.getAttempt(app.id, sent.message.id, stored.id))!.request, null, 'expunging an attempt forgets what it sent');
      });

      it('records an answer whose body holds U+0000 (PostgreSQL keeps U+FFFD), beside text that only looks like an escape, in one batch', async (store) => {
        const app = await store.createApp(appInput(null), T0);
        await store.createEndpoint(app.id, endpointInput(), 's', T0);
        accepted(await store.accept(acceptInput(app.id, { now: T0 })));
        accepted(await store.accept(acceptInput(app.id, { now: T0 + 1 })));
        const [binary, plain] = await store.claim({ owner: 'o', now: T0 + 10, limit: 10, leaseMs: 60_000 });
        const body = 'ok\u0000\u0000 \\u0000 \\\u0000 done';
        await store.complete([
          { owner: 'o', attempt: { ...attemptOf(binary, T0 + 20, true), responseBody: body }, next: { kind: 'succeeded' } },
          { owner: 'o', attempt: { ...attemptOf(plain, T0 + 20, true), responseBody: 'a \\u0000 b' }, next: { kind: 'succeeded' } },
        ]);
        const stored = async (c: ClaimedDelivery) => (await store.listAttemptsByMessage(app.id, c.message.id, {}, { limit: 10 })).data[0].responseBody;
        const nul = backend === 'PostgreSQL' ? '\ufffd' : '\u0000';
        assert.equal(await stored(binary), `ok${nul}${nul} \\u0000 \\${nul} done`);
        assert.equal(await stored(plain), 'a \\u0000 b', 'a backslash and "u0000" are text, not a NUL');
        assert.deepEqual(await store.endpointStats(app.id, binary.endpoint.id, {}), { pending: 0, in_flight: 0, succeeded: 2, failed: 0 });
      });

      it('counts deliveries in flight apart from the pending ones, and reports the next due time past them', async (store) => {
        const app = await store.createApp(appInput(null), T0);
        await store.createEndpoint(app.id, endpointInput(), 's', T0);
        accepted(await store.accept(acceptInput(app.id, { now: T0, dueAt: T0 })));
        accepted(await store.accept(acceptInput(app.id, { now: T0 + 1, dueAt: T0 + 1 })));
        accepted(await store.accept(acceptInput(app.id, { now: T0 + 2, dueAt: T0 + 5_000 })));
        const claimed = await store.claim({ owner: 'o', now: T0 + 10, limit: 10, leaseMs: 60_000 });
        assert.equal(claimed.length, 2);
        assert.equal(await store.nextDueAt(), T0 + 5_000, 'the deliveries in flight are not due again');
        const stats = await store.stats(T0 + 10);
        assert.deepEqual([stats.pending, stats.due, stats.inFlight, stats.oldestDueAt], [1, 0, 2, null]);
        const overview = await store.overview(T0, T0 + 60_000);
        assert.deepEqual([overview.pending, overview.inFlight], [1, 2]);
        await store.complete([succeed('o', claimed[0], T0 + 20)]);
        assert.deepEqual([(await store.stats(T0 + 20)).inFlight, (await store.overview(T0, T0 + 60_000)).inFlight], [1, 1]);
      });

      it('leaves a not-yet-due FIFO head (and everything behind it) waiting, and reports when it becomes due', async (store) => {
        const app = await store.createApp(appInput(null), T0);
        const fifo = await store.createEndpoint(app.id, endpointInput({ ordering: 'fifo' }), 's', T0);
        const head = accepted(await store.accept(acceptInput(app.id, { dueAt: T0 + 1_000 })));
        accepted(await store.accept(acceptInput(app.id, { dueAt: T0 })));
        assert.deepEqual(await store.claim({ owner: 'o', now: T0 + 10, limit: 10, leaseMs: 60_000 }), []);
        const due = await store.nextDueAt();
        assert.ok(due !== null && due <= T0 + 1_000);
        const claimed = await store.claim({ owner: 'o', now: T0 + 1_000, limit: 10, leaseMs: 60_000 });
        assert.deepEqual(claimed.map((c) => [c.endpoint.id, c.message.id]), [[fifo.id, head.message.id]]);
      });

      it('records outcomes fenced on the lease: a lost lease keeps the attempt but not the state change', async (store) => {
        const app = await store.createApp(appInput(null), T0);
        const endpoint = await store.createEndpoint(app.id, endpointInput(), 's', T0);
        const message = accepted(await store.accept(acceptInput(app.id))).message;
        const [stale] = await store.claim({ owner: 'slow', now: T0, limit: 1, leaseMs: 1_000 });
        assert.ok(stale);
        // The slow owner's lease expires; another dispatcher takes the delivery over.
        assert.deepEqual(await store.claim({ owner: 'fast', now: T0 + 999, limit: 1, leaseMs: 60_000 }), [], 'an unexpired lease holds');
        const [fresh] = await store.claim({ owner: 'fast', now: T0 + 1_001, limit: 1, leaseMs: 60_000 });
        assert.equal(fresh.delivery.id, stale.delivery.id);

        await store.complete([park('slow', stale, T0 + 2_000)]);
        let view = (await store.listDeliveriesByMessage(app.id, message.id, { limit: 10 })).data[0];
        assert.equal(view.delivery.status, 'in_flight', 'the stale owner did not move the delivery');
        assert.equal(view.delivery.attemptCount, 1, 'but its attempt counts');
        assert.equal(view.lastAttemptAt, T0 + 2_000);

        await store.complete([succeed('fast', fresh, T0 + 3_000)]);
        view = (await store.listDeliveriesByMessage(app.id, message.id, { limit: 10 })).data[0];
        assert.equal(view.delivery.status, 'succeeded');
        assert.equal(view.delivery.attemptCount, 2);
        const attempts = await store.listAttemptsByMessage(app.id, message.id, {}, { limit: 10 });
        assert.equal(attempts.data.length, 2);
        const succeeded = await store.listAttemptsByEndpoint(app.id, endpoint.id, { succeeded: true }, { limit: 10 });
        assert.deepEqual(succeeded.data.map((a) => a.statusCode), [200]);
        assert.deepEqual(await store.getAttempt(app.id, message.id, succeeded.data[0].id), succeeded.data[0]);
      });

      it('schedules a retry, disables an endpoint on request, and resumes its deliveries on re-enable', async (store) => {
        const app = await store.createApp(appInput(null), T0);
        const endpoint = await store.createEndpoint(app.id, endpointInput(), 's', T0);
        for (let i = 0; i < 2; i++) await store.accept(acceptInput(app.id, { now: T0 + i }));
        const [one, two] = await store.claim({ owner: 'o', now: T0 + 10, limit: 10, leaseMs: 60_000 });
        await store.complete([
          { owner: 'o', attempt: attemptOf(one, T0 + 20, false), next: { kind: 'retry', at: T0 + 5_000, retryIndex: 1 } },
          { owner: 'o', attempt: attemptOf(two, T0 + 20, false), next: { kind: 'parked' }, disableEndpoint: 'answered 410 Gone' },
        ]);
        const disabled = (await store.getEndpoint(app.id, endpoint.id))!;
        assert.equal(disabled.disabled, true);
        assert.equal(disabled.disabledReason, 'answered 410 Gone');
        assert.equal(await store.nextDueAt(), null, 'deliveries of a disabled endpoint are not due');
        assert.deepEqual(await store.claim({ owner: 'o', now: T0 + 10_000, limit: 10, leaseMs: 60_000 }), []);

        await store.updateEndpoint(app.id, endpoint.id, endpointInput(), T0 + 30);
        assert.equal(await store.nextDueAt(), T0 + 5_000);
        const retried = await store.claim({ owner: 'o', now: T0 + 5_000, limit: 10, leaseMs: 60_000 });
        assert.deepEqual(retried.map((c) => [c.delivery.id, c.delivery.retryIndex]), [[one.delivery.id, 1]]);
        const parked = await store.listDeliveriesByEndpoint(app.id, endpoint.id, { status: 'failed' }, { limit: 10 });
        assert.deepEqual(parked.data.map((v) => v.delivery.id), [two.delivery.id]);
      });

      it('renews and releases only the named owner’s leases', async (store) => {
        const app = await store.createApp(appInput(null), T0);
        await store.createEndpoint(app.id, endpointInput(), 's', T0);
        for (let i = 0; i < 4; i++) await store.accept(acceptInput(app.id, { now: T0 + i }));
        const mine = await store.claim({ owner: 'me', now: T0 + 10, limit: 2, leaseMs: 1_000 });
        const theirs = await store.claim({ owner: 'them', now: T0 + 10, limit: 2, leaseMs: 1_000 });
        await store.renewLeases('me', [...mine, ...theirs].map((c) => c.delivery.id), T0 + 60_000);
        // At T0 + 2 s only the renewed leases hold: "them" lost theirs.
        const takeover = await store.claim({ owner: 'third', now: T0 + 2_000, limit: 10, leaseMs: 60_000 });
        assert.deepEqual(takeover.map((c) => c.delivery.id).sort(), theirs.map((c) => c.delivery.id).sort());
        assert.equal(await store.releaseLeases('nobody'), 0);
        assert.equal(await store.releaseLeases('me'), 2);
        assert.equal(await store.releaseLeases(null), 2);
        assert.equal((await store.claim({ owner: 'x', now: T0 + 2_000, limit: 10, leaseMs: 60_000 })).length, 4);
      });
    });

    describe('endpoint health (circuit breaker, auto-disable) and rate limit', () => {
      const breaker: HealthPolicy = { threshold: 3, cooldownMs: 1_000, maxCooldownMs: 3_000, disableAfterMs: 0, disableAfterParked: 0 };
      const claimAt = (store: Store, now: number, owner = 'o') => store.claim({ owner, now, limit: 100, leaseMs: 60_000 });

      it('opens the circuit at the threshold, skips the endpoint while open, probes once when half-open, re-opens for longer and closes on success', async (store) => {
        const app = await store.createApp(appInput(null), T0);
        const failing = await store.createEndpoint(app.id, endpointInput(), 's', T0);
        const healthy = await store.createEndpoint(app.id, endpointInput(), 's', T0);
        for (let i = 0; i < 10; i++) await store.accept(acceptInput(app.id, { now: T0 + i }));
        const first = await claimAt(store, T0 + 10);
        const of = (claimed: ClaimedDelivery[], id: string) => claimed.filter((c) => c.endpoint.id === id);
        const [a, b, c, ...rest] = of(first, failing.id);
        assert.equal(rest.length, 7);

        // Two failures and the healthy endpoint's successes: nothing to report, the healthy row keeps its clean health.
        assert.deepEqual(await store.complete([retryLater('o', a, T0 + 20), retryLater('o', b, T0 + 21), ...of(first, healthy.id).map((h) => succeed('o', h, T0 + 22))], breaker), []);
        assert.deepEqual((await store.getEndpoint(app.id, healthy.id))!.health, HEALTHY);
        const opened = await store.complete([retryLater('o', c, T0 + 30)], breaker);
        assert.deepEqual(opened, [{ endpointId: failing.id, appId: app.id, opened: true, closed: false, disabled: null, consecutiveFailures: 3, openUntil: T0 + 35 + 1_000 }]);
        assert.deepEqual((await store.getEndpoint(app.id, failing.id))!.health, { consecutiveFailures: 3, failingSince: T0 + 20, parked: 0, openUntil: T0 + 1_035, trips: 1 });

        // Attempts that were already in flight fail too: they count, but do not stretch the pause.
        assert.deepEqual(await store.complete(rest.map((r) => retryLater('o', r, T0 + 40)), breaker), []);
        assert.equal((await store.getEndpoint(app.id, failing.id))!.health.openUntil, T0 + 1_035);
        assert.deepEqual(await claimAt(store, T0 + 500), [], 'an open circuit holds every delivery of the endpoint');
        assert.equal(await store.nextDueAt(), T0 + 1_035, 'the deliveries are due when the cool-down ends');

        // Half-open: one probe, and no second one while it is in flight.
        const [probe, ...more] = await claimAt(store, T0 + 1_035);
        assert.equal(more.length, 0);
        assert.equal(probe.endpoint.id, failing.id);
        assert.deepEqual(await claimAt(store, T0 + 1_036), []);
        const reopened = await store.complete([retryLater('o', probe, T0 + 1_100)], breaker);
        assert.equal(reopened.length, 1);
        assert.equal(reopened[0].opened, true);
        assert.equal(reopened[0].openUntil, T0 + 1_105 + 2_000, 'a failed probe doubles the cool-down');
        assert.deepEqual(await claimAt(store, T0 + 3_000), []);

        const [second] = await claimAt(store, T0 + 3_105);
        const closed = await store.complete([succeed('o', second, T0 + 3_200)], breaker);
        assert.deepEqual(closed, [{ endpointId: failing.id, appId: app.id, opened: false, closed: true, disabled: null, consecutiveFailures: 0, openUntil: null }]);
        assert.deepEqual((await store.getEndpoint(app.id, failing.id))!.health, HEALTHY);
        assert.equal((await claimAt(store, T0 + 3_300)).length, 9, 'closed again: the cap applies, not the probe rule');
      });

      it('counts the backlog (pending, due on enabled endpoints, oldest due, in flight) and endpoints by circuit state for the metrics', async (store) => {
        const app = await store.createApp(appInput(null), T0);
        const a = await store.createEndpoint(app.id, endpointInput({ filterTypes: ['a'] }), 's', T0);
        const b = await store.createEndpoint(app.id, endpointInput({ filterTypes: ['b'] }), 's', T0);
        const empty = { pending: 0, due: 0, inFlight: 0, oldestDueAt: null, endpoints: { closed: 2, open: 0, halfOpen: 0, disabled: 0 } };
        assert.deepEqual(await store.stats(T0), empty);
        await store.accept(acceptInput(app.id, { eventType: 'a', dueAt: T0 }));
        await store.accept(acceptInput(app.id, { eventType: 'a', dueAt: T0 + 10 }));
        await store.accept(acceptInput(app.id, { eventType: 'b', dueAt: T0 + 100 }));
        assert.deepEqual(await store.stats(T0 + 50), { ...empty, pending: 3, due: 2, oldestDueAt: T0 });

        const [claimed] = await store.claim({ owner: 'o', now: T0 + 50, limit: 1, leaseMs: 60_000 });
        assert.equal(claimed.endpoint.id, a.id);
        assert.deepEqual(await store.stats(T0 + 50), { ...empty, pending: 2, due: 1, inFlight: 1, oldestDueAt: T0 + 10 });

        // A disabled endpoint's deliveries stay pending but are not due: they would only make the oldest-due age grow.
        await store.setEndpointDisabled(a.id, true, 'by hand', T0 + 60);
        assert.deepEqual(await store.stats(T0 + 200), { pending: 2, due: 1, inFlight: 1, oldestDueAt: T0 + 100, endpoints: { closed: 1, open: 0, halfOpen: 0, disabled: 1 } });

        const [onB] = await store.claim({ owner: 'o', now: T0 + 200, limit: 10, leaseMs: 60_000 });
        await store.complete([retryLater('o', onB, T0 + 210)], { ...breaker, threshold: 1 });
        const openUntil = (await store.getEndpoint(app.id, b.id))!.health.openUntil!;
        assert.deepEqual((await store.stats(openUntil - 1)).endpoints, { closed: 0, open: 1, halfOpen: 0, disabled: 1 });
        assert.deepEqual(await store.stats(openUntil), { pending: 2, due: 1, inFlight: 1, oldestDueAt: T0 + 220, endpoints: { closed: 0, open: 0, halfOpen: 1, disabled: 1 } });
      });

      it('disables an endpoint that parked the configured number of messages since its last success, and re-enabling resets its health', async (store) => {
        const policy = { ...breaker, threshold: 0, disableAfterParked: 3 };
        const app = await store.createApp(appInput(null), T0);
        const endpoint = await store.createEndpoint(app.id, endpointInput(), 's', T0);
        for (let i = 0; i < 8; i++) await store.accept(acceptInput(app.id, { now: T0 + i }));
        const claimed = await claimAt(store, T0 + 10);
        assert.deepEqual(await store.complete([park('o', claimed[0], T0 + 20), park('o', claimed[1], T0 + 21)], policy), []);
        // A success in between starts the count again.
        assert.deepEqual(await store.complete([succeed('o', claimed[2], T0 + 22), park('o', claimed[3], T0 + 23), park('o', claimed[4], T0 + 24)], policy), []);
        assert.equal((await store.getEndpoint(app.id, endpoint.id))!.health.parked, 2);
        const changes = await store.complete([park('o', claimed[5], T0 + 25)], policy);
        assert.equal(changes.length, 1);
        assert.match(changes[0].disabled!, /3 messages were parked since the last successful delivery/);
        const disabled = (await store.getEndpoint(app.id, endpoint.id))!;
        assert.equal(disabled.disabled, true);
        assert.equal(disabled.disabledReason, changes[0].disabled);
        assert.equal(disabled.health.parked, 3);

        const enabled = await store.updateEndpoint(app.id, endpoint.id, endpointInput(), T0 + 30);
        assert.equal(enabled.disabled, false);
        assert.equal(enabled.disabledReason, null);
        assert.deepEqual(enabled.health, HEALTHY);
      });

      it('disables an endpoint whose attempts all failed for the configured period since its last success', async (store) => {
        const policy = { ...breaker, threshold: 0, disableAfterMs: HOUR };
        const app = await store.createApp(appInput(null), T0);
        const endpoint = await store.createEndpoint(app.id, endpointInput(), 's', T0);
        for (let i = 0; i < 4; i++) await store.accept(acceptInput(app.id, { now: T0 + i }));
        const claimed = await claimAt(store, T0 + 10);
        await store.complete([retryLater('o', claimed[0], T0 + 100)], policy);
        assert.deepEqual(await store.complete([retryLater('o', claimed[1], T0 + HOUR + 90)], policy), [], 'not quite an hour yet');
        const changes = await store.complete([retryLater('o', claimed[2], T0 + HOUR + 100)], policy);
        assert.equal(changes.length, 1);
        assert.match(changes[0].disabled!, /every attempt failed for 1h since the last successful delivery/);
        const disabled = (await store.getEndpoint(app.id, endpoint.id))!;
        assert.equal(disabled.disabled, true);
        assert.equal(disabled.health.failingSince, T0 + 100);
        assert.deepEqual(await claimAt(store, T0 + 2 * HOUR), [], 'a disabled endpoint is not claimed');
        // Already disabled: a late outcome neither disables it again nor reports it.
        assert.deepEqual(await store.complete([retryLater('o', claimed[3], T0 + HOUR + 200)], policy), []);

        await store.setEndpointDisabled(endpoint.id, false, null, T0 + 2 * HOUR);
        const enabled = (await store.getEndpoint(app.id, endpoint.id))!;
        assert.equal(enabled.disabled, false);
        assert.deepEqual(enabled.health, HEALTHY);
        assert.equal((await claimAt(store, T0 + 2 * HOUR)).length, 4, 'its waiting deliveries resume');
      });

      it('gives a rate-limited endpoint only the send slots of the look-ahead window, 1/rate apart, whoever claims', async (store) => {
        const app = await store.createApp(appInput(null), T0);
        const limited = await store.createEndpoint(app.id, endpointInput({ rateLimit: 10 }), 's', T0);
        const free = await store.createEndpoint(app.id, endpointInput(), 's', T0);
        for (let i = 0; i < 10; i++) await store.accept(acceptInput(app.id, { now: T0 + i }));
        const first = await claimAt(store, T0 + 1_000);
        const slotsOf = (claimed: ClaimedDelivery[]) => claimed.filter((c) => c.endpoint.id === limited.id).map((c) => c.notBefore);
        // Slots start a margin after the claim (so that the first one is still ahead when the claim returns).
        const start = T0 + 1_000 + RATE_CLAIM_MARGIN_MS;
        const window = Math.floor((RATE_LOOKAHEAD_MS - RATE_CLAIM_MARGIN_MS) / 100) + 1;
        assert.deepEqual(slotsOf(first), Array.from({ length: window }, (_, i) => start + i * 100));
        assert.equal(first.filter((c) => c.endpoint.id === free.id).length, 10, 'an endpoint without a limit is not paced');
        assert.ok(first.filter((c) => c.endpoint.id === free.id).every((c) => c.notBefore === undefined));

        const nextSlot = start + window * 100;
        assert.deepEqual(await claimAt(store, T0 + 1_001, 'another'), [], 'the budget is the endpoint’s, not the claimer’s');
        assert.equal(await store.nextDueAt(), nextSlot - RATE_LOOKAHEAD_MS);
        const second = await claimAt(store, nextSlot - RATE_LOOKAHEAD_MS, 'another');
        assert.deepEqual(slotsOf(second), [nextSlot]);
        // Idle time earns no burst: after a pause the slots start from now, still 1/rate apart.
        const later = await claimAt(store, T0 + 60_000);
        assert.deepEqual(slotsOf(later), Array.from({ length: window }, (_, i) => T0 + 60_000 + RATE_CLAIM_MARGIN_MS + i * 100));
      });
    });

    describe('resend and recover', () => {
      it('holds the deliveries of an endpoint until its handshake verifies it; leases a due handshake to one claimer; a change ends the lease', async (store) => {
        const app = await store.createApp(appInput(null), T0);
        const held = await store.createEndpoint(app.id, endpointInput({ verification: pendingVerification(T0) }), 's', T0);
        const plain = await store.createEndpoint(app.id, endpointInput(), 's', T0);
        assert.deepEqual(held.verification, pendingVerification(T0));
        assert.deepEqual(plain.verification, NO_VERIFICATION);
        for (let i = 0; i < 3; i++) await store.accept(acceptInput(app.id, { now: T0 + i, dueAt: T0 + i }));
        const claimed = await store.claim({ owner: 'o1', now: T0 + 10, limit: 100, leaseMs: 60_000 });
        assert.deepEqual(new Set(claimed.map((c) => c.endpoint.id)), new Set([plain.id]), 'a pending endpoint yields nothing');
        assert.equal(await store.nextDueAt(), null, 'held deliveries are not due');
        assert.equal((await store.stats(T0 + 10)).due, 0);
        assert.equal(await store.nextVerificationAt(), T0);

        // One claimer at a time, until the lease ends; nothing is due before its time.
        assert.deepEqual(await store.claimVerifications('h0', T0 - 1, T0 + 1000, 10), []);
        const [leased] = await store.claimVerifications('h1', T0 + 10, T0 + 1000, 10);
        assert.equal(leased.id, held.id);
        assert.deepEqual(await store.claimVerifications('h2', T0 + 20, T0 + 1000, 10), []);
        assert.equal(await store.nextVerificationAt(), T0 + 1000);
        const retry = verificationAfterAttempt(leased.verification, { kind: 'retry', reason: 'status 503' }, [500], T0 + 30);
        assert.equal(await store.finishVerification(held.id, 'h2', retry), false, 'only the lease holder records a result');
        assert.equal(await store.finishVerification(held.id, 'h1', retry), true);
        assert.equal(await store.finishVerification(held.id, 'h1', retry), false, 'a lease records one result');
        assert.deepEqual((await store.getEndpoint(app.id, held.id))!.verification, retry);
        const [again] = await store.claimVerifications('h3', T0 + 530, T0 + 2000, 10);
        assert.equal(again.verification.attempts, 1);
        // An expired lease is claimable by another.
        const [takenOver] = await store.claimVerifications('h4', T0 + 2001, T0 + 3000, 10);
        assert.equal(takenOver.id, held.id);

        // Re-triggering (any update carrying a verification) ends the lease: its holder's result is dropped.
        const restarted = await store.updateEndpoint(app.id, held.id, endpointInput({ verification: pendingVerification(T0 + 2100) }), T0 + 2100);
        assert.equal(restarted.verification.attempts, 0);
        assert.equal(await store.finishVerification(held.id, 'h4', { ...retry, state: 'verified', reason: null, nextAttemptAt: null }), false);
        // An update without one keeps the handshake as it is.
        const described = await store.updateEndpoint(app.id, held.id, endpointInput({ description: 'kept' }), T0 + 2150);
        assert.deepEqual(described.verification, restarted.verification);

        const [fresh] = await store.claimVerifications('h5', T0 + 2200, T0 + 3000, 10);
        const ok = verificationAfterAttempt(fresh.verification, { kind: 'verified' }, [500], T0 + 2210);
        assert.equal(await store.finishVerification(held.id, 'h5', ok), true);
        assert.equal(await store.nextVerificationAt(), null);
        const released = await store.claim({ owner: 'o1', now: T0 + 2300, limit: 100, leaseMs: 60_000 });
        assert.deepEqual(released.filter((c) => c.endpoint.id === held.id).map((c) => c.message.createdAt), [T0, T0 + 1, T0 + 2], 'held deliveries flow once verified, in accept order');
      });

      it('resend creates or resets a delivery (never one in flight); recover re-queues parked deliveries of messages in [since, until)', async (store) => {
        const app = await store.createApp(appInput(null), T0);
        const endpoint = await store.createEndpoint(app.id, endpointInput(), 's', T0);
        const ids: string[] = [];
        for (let i = 0; i < 3; i++) ids.push(accepted(await store.accept(acceptInput(app.id, { now: T0 + i * 1_000 }))).message.id);
        const claimed = await store.claim({ owner: 'o', now: T0 + 5_000, limit: 10, leaseMs: 60_000 });
        await store.complete(claimed.map((c) => park('o', c, T0 + 6_000)));

        const recovered = await store.recover(app.id, endpoint.id, T0 + 1_000, T0 + 2_000, T0 + 7_000);
        assert.equal(recovered, 1);
        const again = await store.claim({ owner: 'o', now: T0 + 7_000, limit: 10, leaseMs: 60_000 });
        assert.deepEqual(again.map((c) => c.message.id), [ids[1]]);
        assert.equal(again[0].delivery.manual, true);

        await store.resend(app.id, ids[1], endpoint.id, T0 + 7_500);
        const inFlight = (await store.listDeliveriesByMessage(app.id, ids[1], { limit: 10 })).data[0];
        assert.equal(inFlight.delivery.status, 'in_flight', 'resend leaves a delivery in flight alone');

        await store.resend(app.id, ids[0], endpoint.id, T0 + 8_000);
        const later = await store.createEndpoint(app.id, endpointInput(), 's', T0 + 8_000);
        await store.resend(app.id, ids[0], later.id, T0 + 8_000);
        const resent = await store.claim({ owner: 'o', now: T0 + 8_000, limit: 10, leaseMs: 60_000 });
        assert.deepEqual(resent.map((c) => [c.message.id, c.endpoint.id]).sort(), [
          [ids[0], endpoint.id],
          [ids[0], later.id],
        ].sort());
        assert.ok(resent.every((c) => c.delivery.manual && c.delivery.retryIndex === 0));
      });

      it('replayMissing delivers, once, the messages in [since, until) an endpoint never had and its filters match now', async (store) => {
        const app = await store.createApp(appInput(null), T0);
        const other = await store.createApp(appInput(null), T0);
        const sent = [
          accepted(await store.accept(acceptInput(app.id, { now: T0, eventType: 'a.b', channels: ['eu'] }))).message.id,
          accepted(await store.accept(acceptInput(app.id, { now: T0 + 1_000, eventType: 'a.b', channels: ['us'] }))).message.id,
          accepted(await store.accept(acceptInput(app.id, { now: T0 + 2_000, eventType: 'c.d', channels: ['eu'] }))).message.id,
          accepted(await store.accept(acceptInput(app.id, { now: T0 + 3_000, eventType: 'a.b', channels: ['eu'] }))).message.id,
          accepted(await store.accept(acceptInput(app.id, { now: T0 + 4_000, eventType: 'a.b', channels: ['eu'] }))).message.id,
        ];
        accepted(await store.accept(acceptInput(other.id, { now: T0 + 1_500, eventType: 'a.b', channels: ['eu'] })));
        await store.expungeMessageContent(app.id, sent[3]);
        const endpoint = await store.createEndpoint(app.id, endpointInput({ filterTypes: ['a.b'], channels: ['eu'] }), 's', T0 + 5_000);
        // Only [T0, T0 + 4_000): sent[0] matches; sent[1] is on another channel, sent[2] of another type, sent[3] expunged.
        assert.equal(await store.replayMissing(app.id, endpoint.id, T0, T0 + 4_000, T0 + 6_000), 1);
        assert.equal(await store.replayMissing(app.id, endpoint.id, T0, T0 + 4_000, T0 + 6_000), 0, 'nothing twice');
        const claimed = await store.claim({ owner: 'o', now: T0 + 6_000, limit: 10, leaseMs: 60_000 });
        assert.deepEqual(claimed.map((c) => [c.message.id, c.endpoint.id, c.delivery.manual]), [[sent[0], endpoint.id, true]]);
        assert.equal(await store.replayMissing(app.id, 'ep_missing', T0, T0 + 10_000, T0 + 6_000), 0);
      });

      it('endpointStats counts deliveries by status; accept with endpointId fans out to that endpoint only; expungeAttemptContent clears one response', async (store) => {
        const app = await store.createApp(appInput(null), T0);
        const target = await store.createEndpoint(app.id, endpointInput({ filterTypes: ['x.y'] }), 's', T0);
        const bystander = await store.createEndpoint(app.id, endpointInput(), 's', T0);
        const example = accepted(await store.accept(acceptInput(app.id, { eventType: 'a.b', endpointId: target.id })));
        assert.equal(example.deliveries, 1, 'the filter is not applied to the example');
        accepted(await store.accept(acceptInput(app.id, { eventType: 'x.y', now: T0 + 1 })));
        assert.deepEqual(await store.endpointStats(app.id, target.id, {}), { pending: 2, in_flight: 0, succeeded: 0, failed: 0 });
        assert.deepEqual(await store.endpointStats(app.id, bystander.id, {}), { pending: 1, in_flight: 0, succeeded: 0, failed: 0 });

        const claimed = await store.claim({ owner: 'o', now: T0 + 10, limit: 10, leaseMs: 60_000 });
        const toTarget = claimed.filter((c) => c.endpoint.id === target.id);
        await store.complete([succeed('o', toTarget[0], T0 + 20), park('o', toTarget[1], T0 + 20)]);
        assert.deepEqual(await store.endpointStats(app.id, target.id, {}), { pending: 0, in_flight: 0, succeeded: 1, failed: 1 });
        assert.deepEqual(await store.endpointStats(app.id, bystander.id, {}), { pending: 0, in_flight: 1, succeeded: 0, failed: 0 });
        assert.deepEqual(await store.endpointStats(app.id, target.id, { since: T0 + 1, until: T0 + 2 }), { pending: 0, in_flight: 0, succeeded: 0, failed: 1 });

        const [attempt] = (await store.listAttemptsByMessage(app.id, example.message.id, {}, { limit: 10 })).data;
        assert.equal(attempt.responseBody, 'ok');
        assert.equal(await store.expungeAttemptContent(app.id, example.message.id, attempt.id), true);
        assert.equal((await store.getAttempt(app.id, example.message.id, attempt.id))!.responseBody, '');
        assert.equal(await store.expungeAttemptContent(app.id, example.message.id, 'atmpt_missing'), false);
        const otherApp = await store.createApp(appInput(null), T0);
        assert.equal(await store.expungeAttemptContent(otherApp.id, example.message.id, attempt.id), false, 'another app reaches nothing');
      });
    });

    describe('API keys and secrets at rest', () => {
      const keyOf = (appId: string, at: number, overrides: Partial<ApiKey> = {}): ApiKey => {
        const id = newId(ID_PREFIX.apiKey, at);
        return { id, appId, name: null, prefix: `hrk_${id}_abcd`, hash: 'ab'.repeat(32), createdAt: at, expiresAt: null, ...overrides };
      };

      it('stores API keys per app, pages them, deletes only the app’s own, and deletes them with their app', async (store) => {
        const app = await store.createApp(appInput(null), T0);
        const other = await store.createApp(appInput(null), T0);
        const first = await store.createApiKey(keyOf(app.id, T0, { name: 'ci', expiresAt: T0 + HOUR }));
        assert.deepEqual(await store.getApiKey(first.id), first);
        assert.equal(first.name, 'ci');
        assert.equal(first.expiresAt, T0 + HOUR);
        const keys = [first.id];
        for (let i = 1; i < 5; i++) keys.push((await store.createApiKey(keyOf(app.id, T0 + i))).id);
        const foreign = await store.createApiKey(keyOf(other.id, T0));
        const listed = await all((iterator) => store.listApiKeys(app.id, { limit: 2, iterator, order: 'ascending' }));
        assert.deepEqual(listed.map((k) => k.id), keys);
        assert.deepEqual((await store.listApiKeys(app.id, { limit: 10 })).data.map((k) => k.id), [...keys].reverse());
        await rejectsWith(store.createApiKey(keyOf('app_missing', T0)), 'not_found');

        assert.equal(await store.deleteApiKey(app.id, foreign.id), false, 'an app deleted another app’s key');
        assert.ok(await store.getApiKey(foreign.id));
        assert.equal(await store.deleteApiKey(app.id, first.id), true);
        assert.equal(await store.getApiKey(first.id), null);
        assert.equal(await store.deleteApiKey(app.id, first.id), false);

        await store.deleteApp(app.id);
        for (const id of keys) assert.equal(await store.getApiKey(id), null);
        assert.ok(await store.getApiKey(foreign.id), 'deleting an app deleted another app’s key');
      });

      it('scans secret-bearing rows raw in id order and rewrites a row only while it still holds what was read', async (store) => {
        const app = await store.createApp(appInput(null), T0);
        const endpoints = [];
        for (let i = 0; i < 3; i++) {
          endpoints.push(await store.createEndpoint(app.id, endpointInput({ destination: i === 1 ? { type: 'temporal', taskQueue: 'q', apiKey: 'k' } : null }), `whsec_${i}`, T0 + i));
        }
        const source = await store.createSource({ name: 's', uid: null, type: 'stripe', config: { secret: 'plain', maxBodyBytes: 10 }, metadata: {} }, 'tok', T0);
        const firstTwo = await store.scanSecrets('endpoint', '', 2);
        assert.deepEqual(firstTwo, [
          { kind: 'endpoint', id: endpoints[0].id, secrets: [{ key: 'whsec_0', expiresAt: null }], destination: null },
          { kind: 'endpoint', id: endpoints[1].id, secrets: [{ key: 'whsec_1', expiresAt: null }], destination: { type: 'temporal', taskQueue: 'q', apiKey: 'k' } },
        ]);
        assert.deepEqual((await store.scanSecrets('endpoint', endpoints[1].id, 10)).map((r) => r.id), [endpoints[2].id]);
        const [sourceRow] = await store.scanSecrets('source', '', 10);
        assert.deepEqual(sourceRow, { kind: 'source', id: source.id, config: { secret: 'plain', maxBodyBytes: 10 } });

        const sealedEndpoint = { ...firstTwo[1], secrets: [{ key: 'hrenc:x', expiresAt: null }], destination: { type: 'temporal', taskQueue: 'q', apiKey: 'hrenc:y' } } as SecretRow;
        const sealedSource = { ...sourceRow, config: { secret: 'hrenc:z', maxBodyBytes: 10 } } as SecretRow;
        // The first endpoint changed after it was read: its rewrite must not land.
        await store.rotateEndpointSecret(app.id, endpoints[0].id, 'whsec_new', T0 + HOUR, T0 + 10);
        const stale = { previous: firstTwo[0], next: { ...firstTwo[0], secrets: [{ key: 'hrenc:stale', expiresAt: null }] } as SecretRow };
        const written = await store.rewriteSecrets([stale, { previous: firstTwo[1], next: sealedEndpoint }, { previous: sourceRow, next: sealedSource }]);
        assert.equal(written, 2);
        assert.deepEqual((await store.getEndpoint(app.id, endpoints[0].id))!.secrets.map((s) => s.key), ['whsec_new', 'whsec_0']);
        const rewritten = (await store.getEndpoint(app.id, endpoints[1].id))!;
        assert.deepEqual(rewritten.secrets, [{ key: 'hrenc:x', expiresAt: null }]);
        assert.equal(rewritten.destination!.apiKey, 'hrenc:y');
        assert.equal(rewritten.updatedAt, endpoints[1].updatedAt, 'sealing a row is not a change of the endpoint');
        assert.equal((await store.getSourceByToken('tok'))!.config.secret, 'hrenc:z', 'a cached source kept the old config');
        assert.equal(await store.rewriteSecrets([]), 0);
      });

      it('through the sealing layer: secrets go in sealed, come out plain everywhere they are read, and replayed answers are sealed', async (store) => {
        const fields = new SecretFields(new SecretBox(Buffer.alloc(32, 1)));
        const sealed = sealStore(store, fields);
        const app = await sealed.createApp(appInput(null), T0);
        const destination = { type: 'temporal', taskQueue: 'q', apiKey: 'temporal-api-key-1', tls: { clientCert: 'CERT', clientKey: 'PRIVATE-KEY-1' } };
        const endpoint = await sealed.createEndpoint(app.id, endpointInput({ destination }), 'whsec_plain1', T0);
        assert.deepEqual(endpoint.secrets, [{ key: 'whsec_plain1', expiresAt: null }]);
        assert.deepEqual(endpoint.destination, destination);
        const raw = (await store.getEndpoint(app.id, endpoint.id))!;
        assert.match(raw.secrets[0].key, /^hrenc:v1:/);
        assert.match(String(raw.destination!.apiKey), /^hrenc:v1:/);
        assert.match(String((raw.destination!.tls as Record<string, unknown>).clientKey), /^hrenc:v1:/);
        assert.equal((raw.destination!.tls as Record<string, unknown>).clientCert, 'CERT', 'a certificate is not secret');
        assert.equal(raw.destination!.taskQueue, 'q');

        const rotated = await sealed.rotateEndpointSecret(app.id, endpoint.id, 'whsec_plain2', T0 + HOUR, T0 + 1);
        assert.deepEqual(rotated.secrets.map((s) => s.key), ['whsec_plain2', 'whsec_plain1']);
        assert.deepEqual((await sealed.listDestinationEndpoints())[0].destination, destination);
        accepted(await sealed.accept(acceptInput(app.id)));
        const [claimed] = await sealed.claim({ owner: 'o', now: T0, limit: 10, leaseMs: 1000 });
        assert.deepEqual(claimed.endpoint.secrets.map((s) => s.key), ['whsec_plain2', 'whsec_plain1']);
        assert.deepEqual(claimed.endpoint.destination, destination);
        const [view] = (await sealed.listDeliveriesByMessage(app.id, claimed.message.id, { limit: 10 })).data;
        assert.deepEqual(view.endpoint.secrets.map((s) => s.key), ['whsec_plain2', 'whsec_plain1']);

        const source = await sealed.createSource({ name: 's', uid: null, type: 'stripe', config: { secret: 'whsec_source1', additionalSecrets: ['whsec_source2'] }, metadata: {} }, 'tok', T0);
        assert.deepEqual(source.config, { secret: 'whsec_source1', additionalSecrets: ['whsec_source2'] });
        const rawSource = (await store.getSource(source.id))!;
        assert.match(String(rawSource.config.secret), /^hrenc:v1:/);
        assert.match(String(rawSource.config.additionalSecrets), /^hrenc:v1:/);
        assert.deepEqual((await sealed.getSourceByToken('tok'))!.config, source.config);
        assert.deepEqual((await sealed.listSources({ limit: 10 })).data[0].config, source.config);

        await sealed.putIdempotentResponse('scope', 'k', { status: 201, body: '{"key":"hrk_secret"}' }, T0 + HOUR);
        assert.match((await store.getIdempotentResponse('scope', 'k', T0))!.body, /^hrenc:v1:/);
        assert.deepEqual(await sealed.getIdempotentResponse('scope', 'k', T0), { status: 201, body: '{"key":"hrk_secret"}' });
      });
    });

    describe('idempotent responses and retention', () => {
      it('replays a stored response until it expires', async (store) => {
        await store.putIdempotentResponse('admin POST /x', 'k', { status: 201, body: '{"a":1}' }, T0 + 100);
        assert.deepEqual(await store.getIdempotentResponse('admin POST /x', 'k', T0 + 99), { status: 201, body: '{"a":1}' });
        assert.equal(await store.getIdempotentResponse('admin POST /x', 'k', T0 + 100), null);
        assert.equal(await store.getIdempotentResponse('admin POST /y', 'k', T0), null);
      });

      it('prunes payloads of finished old messages, old attempts and expired keys in batches, keeping what is still due', async (store) => {
        const app = await store.createApp(appInput(null), T0);
        await store.createEndpoint(app.id, endpointInput(), 's', T0);
        const DAY = 24 * HOUR;
        const old: string[] = [];
        for (let i = 0; i < 7; i++) old.push(accepted(await store.accept(acceptInput(app.id, { now: T0 + i, idempotencyKey: `old-${i}`, idempotencyTtlMs: HOUR }))).message.id);
        const claimed = await store.claim({ owner: 'o', now: T0 + 100, limit: 100, leaseMs: 60_000 });
        const finished = claimed.filter((c) => c.message.id !== old[3] && c.message.id !== old[4]);
        await store.complete(finished.map((c, i) => (i % 2 ? succeed('o', c, T0 + 200) : park('o', c, T0 + 200))));
        // old[3] is still in flight; old[4] waits for a retry: their payloads must stay.
        const retry = claimed.find((c) => c.message.id === old[4])!;
        await store.complete([{ owner: 'o', attempt: attemptOf(retry, T0 + 200, false), next: { kind: 'retry', at: T0 + 40 * DAY, retryIndex: 1 } }]);
        const recent = accepted(await store.accept(acceptInput(app.id, { now: T0 + 40 * DAY }))).message.id;

        const before = T0 + 30 * DAY;
        const totals = { payloads: 0, attempts: 0, idempotencyKeys: 0 };
        let calls = 0;
        for (;;) {
          const result = await store.prune(before, 2);
          calls++;
          assert.ok(result.payloads <= 2 && result.attempts <= 2 && result.idempotencyKeys <= 4, 'a call stays within its batch');
          totals.payloads += result.payloads;
          totals.attempts += result.attempts;
          totals.idempotencyKeys += result.idempotencyKeys;
          if (result.done) break;
          assert.ok(calls < 20, 'pruning never finishes');
        }
        assert.deepEqual(totals, { payloads: 5, attempts: 6, idempotencyKeys: 7 });
        for (const id of old) {
          const payload = (await store.getMessage(app.id, id))!.payload;
          if (id === old[3] || id === old[4]) assert.ok(payload, `${id} lost its payload while not finished`);
          else assert.equal(payload, null, `${id} kept its payload`);
        }
        assert.ok((await store.getMessage(app.id, recent))!.payload, 'a recent message is untouched');
        assert.deepEqual((await store.listAttemptsByMessage(app.id, old[0], {}, { limit: 10 })).data, []);
        // The keys are gone with the records: the same key makes a new message.
        accepted(await store.accept(acceptInput(app.id, { now: T0 + 50 * DAY, idempotencyKey: 'old-0' })));

        // Once the in-flight one finishes, a later pass prunes it too.
        const inFlight = claimed.find((c) => c.message.id === old[3])!;
        await store.complete([succeed('o', inFlight, T0 + 300)]);
        let pruned = 0;
        for (let i = 0; i < 10; i++) {
          const result = await store.prune(before, 2);
          pruned += result.payloads;
          if (result.done && pruned > 0) break;
        }
        assert.equal(pruned, 1);
        assert.equal((await store.getMessage(app.id, old[3]))!.payload, null);
      });
    });
  });
}
