import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Message } from '../../src/domain/types.js';
import type { SealedStore } from '../../src/secrets/sealed-store.js';
import type { TestBroker } from '../helpers/brokers.js';
import { startRelay, type TestRelay } from '../helpers/relay.js';
import { waitUntil } from '../helpers/wait.js';

/**
 * One suite for the four broker sources, each run against its real server: what differs per broker (starting it,
 * making a topic/stream/queue, producing, rewinding, what the broker says when refused) is the adapter.
 */

export interface Produced {
  payload: Buffer;
  headers?: Record<string, string>;
}

export interface SourceBrokerAdapter {
  type: 'redis' | 'nats' | 'kafka' | 'rabbitmq';
  skip: false | string;
  start(): Promise<TestBroker>;
  /** A fresh topic / stream / queue on the broker; its name. */
  place(broker: TestBroker): Promise<string>;
  /** The source config that consumes `place`. */
  config(broker: TestBroker, place: string, extra?: Record<string, unknown>): Record<string, unknown>;
  /** Puts the records on `place`, durably, in order. */
  produce(broker: TestBroker, place: string, records: Produced[]): Promise<void>;
  /** Makes the broker hand the source's already acknowledged records over again (a rewind, or a repeat publish). */
  redeliver(broker: TestBroker, place: string, sourceId: string, setDisabled: (disabled: boolean) => Promise<void>): Promise<void>;
  /** True once the broker holds nothing the source has not acknowledged on `place`. */
  drained(broker: TestBroker, place: string, sourceId: string, setDisabled: (disabled: boolean) => Promise<void>): Promise<boolean>;
  /** A config with wrong credentials and the state error expected; null when the test broker has no authentication. */
  wrongCredentials: ((broker: TestBroker, place: string) => Record<string, unknown>) | null;
  wrongCredentialsError: RegExp;
  /** A config naming a topic / stream / queue that does not exist, and the state error expected. */
  unknownPlace: (broker: TestBroker) => Promise<Record<string, unknown>>;
  unknownPlaceError: RegExp;
  /** The state error when nothing listens at the broker's address. */
  downError: RegExp;
  /** Called after a restart of the broker, before producing again (e.g. a queue to declare again). */
  afterRestart?(broker: TestBroker, place: string): Promise<void>;
  close(): Promise<void>;
}

export const TOTAL = 10_000;

/** Every message of an app, straight from the store. */
export async function allMessages(relay: TestRelay, appId: string): Promise<Message[]> {
  const out: Message[] = [];
  let iterator: string | null = null;
  for (;;) {
    const page = await relay.store.listMessages(appId, {}, { limit: 5000, iterator, order: 'ascending' });
    out.push(...page.data);
    if (page.done || page.data.length === 0) return out;
    iterator = page.iterator;
  }
}

/** How many messages an app has, without reading their payloads. */
export async function countMessages(relay: TestRelay, appId: string): Promise<number> {
  let count = 0;
  let iterator: string | null = null;
  for (;;) {
    const page = await relay.store.listMessages(appId, {}, { limit: 5000, iterator, order: 'ascending' });
    count += page.data.length;
    if (page.done || page.data.length === 0) return count;
    iterator = page.iterator;
  }
}

export function brokerSourceSuite(adapter: SourceBrokerAdapter): void {
  describe(`${adapter.type} source (real server)`, { skip: adapter.skip }, () => {
    let broker: TestBroker;
    let relay: TestRelay;

    before(async () => {
      [broker, relay] = await Promise.all([adapter.start(), startRelay()]);
    });
    after(async () => {
      await relay?.close();
      await adapter.close();
      await broker?.close();
    });

    async function createSource(config: Record<string, unknown>): Promise<{ id: string; appId: string }> {
      const created = await relay.api('POST', '/ingest/api/v1/source', { name: `${adapter.type}-source`, type: adapter.type, config });
      assert.equal(created.status, 201, created.text);
      return created.body;
    }

    const stateOf = async (id: string) => {
      const got = await relay.api('GET', `/ingest/api/v1/source/${id}`);
      assert.equal(got.status, 200, got.text);
      return got.body.consumer as { state: string; error: string | null } | null;
    };

    const waitForState = (id: string, state: string, error?: RegExp) =>
      waitUntil(`source ${id} to be ${state}${error ? ` with ${error}` : ''}`, async () => {
        const now = await stateOf(id);
        return now && now.state === state && (!error || error.test(now.error ?? '')) ? now : null;
      }, 60_000, 100) as Promise<{ state: string; error: string | null }>;

    /** Waits until the app has `at` messages or more (counted through the source's app in the overview), then lists them. */
    const countOf = async (appId: string, at: number) => {
      await waitUntil(`${at} messages`, async () => (await countMessages(relay, appId)) >= at, 120_000, 250);
      return allMessages(relay, appId);
    };

    it('keeps the payload bytes exactly and maps event types from a header, a JSON field or a fixed name', async () => {
      const spaced = Buffer.from('{ "type" : "order.created",\n  "amount": 12345678901234567890.10 }');
      const binary = Buffer.from([0x00, 0xff, 0xfe, 0x80, 0x7b, 0x22]);
      const records: Produced[] = [
        { payload: spaced, headers: { 'event-type': 'invoice.paid', 'x-tenant': 'acme' } },
        { payload: binary, headers: { 'content-type': 'application/octet-stream' } },
      ];
      // Each source reads its own topic / stream / queue (a RabbitMQ queue's consumers compete for its messages).
      const source = async (extra: Record<string, unknown>) => {
        const place = await adapter.place(broker);
        await adapter.produce(broker, place, records);
        return createSource(adapter.config(broker, place, extra));
      };
      const byHeader = await source({ keepHeaders: ['X-Tenant'] });
      const byField = await source({ eventType: { field: 'type', fallback: 'no.type' } });
      const fixed = await source({ eventType: { fixed: 'fixed.one' } });

      // Records of one batch are accepted together: the order of their messages is not the broker's.
      const byPayload = (messages: Message[]) => new Map(messages.map((m) => [Buffer.from(m.payload!).toString('hex'), m]));
      const header = byPayload(await countOf(byHeader.appId, 2));
      assert.deepEqual([...header.keys()].sort(), [spaced.toString('hex'), binary.toString('hex')].sort());
      const [first, second] = [header.get(spaced.toString('hex'))!, header.get(binary.toString('hex'))!];
      assert.deepEqual([first.eventType, second.eventType], ['invoice.paid', 'unknown']);
      assert.deepEqual([first.contentType, second.contentType], ['application/json', 'application/octet-stream']);
      assert.equal(first.headers?.['x-tenant'], 'acme');
      assert.equal(first.verified, false);
      assert.equal(first.sourceId, byHeader.id);
      for (const m of [first, second]) assert.match(m.eventId ?? '', new RegExp(`^${adapter.type === 'rabbitmq' ? 'amqp' : adapter.type}:`));

      const field = byPayload(await countOf(byField.appId, 2));
      assert.deepEqual([field.get(spaced.toString('hex'))?.eventType, field.get(binary.toString('hex'))?.eventType], ['order.created', 'no.type']);
      const fixedOnes = await countOf(fixed.appId, 2);
      assert.deepEqual(fixedOnes.map((m) => m.eventType), ['fixed.one', 'fixed.one']);
      assert.equal((await waitForState(byHeader.id, 'running')).error, null);
    });

    it(`takes ${TOTAL} records with the broker killed and restarted mid-run, and a redelivery of all of them, as ${TOTAL} messages; a source created while the broker is down shows why and then consumes`, async (t) => {
      const setDisabled = async (disabled: boolean) => {
        const saved = await relay.api('PUT', `/ingest/api/v1/source/${source.id}`, { name: 'bulk', type: adapter.type, config: adapter.config(broker, place, { disabled }) });
        assert.equal(saved.status, 200, saved.text);
      };
      const started = Date.now();
      const phase = (what: string) => t.diagnostic(`${what} at ${Date.now() - started} ms`);
      const place = await adapter.place(broker);
      const latePlace = await adapter.place(broker);
      const records = Array.from({ length: TOTAL }, (_, i) => ({ payload: Buffer.from(JSON.stringify({ i, pad: 'x'.repeat(i % 50) })), headers: { 'event-type': `bulk.${i % 3}` } }));
      await adapter.produce(broker, place, records);
      phase('produced');
      const source = await createSource(adapter.config(broker, place));
      await countOf(source.appId, 500);
      phase('500 consumed');
      await broker.stop();
      await waitForState(source.id, 'error', adapter.downError);
      phase('error state');
      // A source created while its broker is down says why.
      const late = await createSource(adapter.config(broker, latePlace));
      const lateState = await waitForState(late.id, 'error', adapter.downError);
      assert.match(lateState.error!, adapter.downError);
      await broker.start();
      await adapter.afterRestart?.(broker, place);
      await adapter.afterRestart?.(broker, latePlace);
      phase('restarted');
      const messages = await countOf(source.appId, TOTAL);
      phase('all consumed');
      await waitUntil('the broker to hold nothing unacknowledged', () => adapter.drained(broker, place, source.id, setDisabled), 60_000, 200);
      const seen = new Set(messages.map((m) => Buffer.from(m.payload!).toString()));
      assert.equal(seen.size, TOTAL, 'every record is one message');
      assert.equal(messages.length, TOTAL, 'no record became two messages');
      assert.equal(new Set(messages.map((m) => m.eventId)).size, TOTAL);
      assert.deepEqual([...new Set(messages.map((m) => m.eventType))].sort(), ['bulk.0', 'bulk.1', 'bulk.2']);

      // The late source recovered with the broker.
      await waitForState(late.id, 'running');
      await adapter.produce(broker, latePlace, [{ payload: Buffer.from('{"after":"restart"}'), headers: { 'event-type': 'back.again' } }]);
      const [message] = await countOf(late.appId, 1);
      assert.equal(message.eventType, 'back.again');

      // The broker hands every record over again (as after a crash between accept and ack): still one message each.
      await adapter.redeliver(broker, place, source.id, setDisabled);
      phase('redelivering');
      await waitUntil('the redelivered records to be consumed', () => adapter.drained(broker, place, source.id, setDisabled), 60_000, 200);
      phase('redelivery consumed');
      const again = await allMessages(relay, source.appId);
      assert.equal(again.length, TOTAL, 'a redelivered record stays one message');
      await waitForState(source.id, 'running');
    });

    it('names wrong credentials and an unknown topic or queue in the source state; secrets are never returned', async () => {
      const unknown = await createSource(await adapter.unknownPlace(broker));
      await waitForState(unknown.id, 'error', adapter.unknownPlaceError);
      if (adapter.wrongCredentials) {
        const place = await adapter.place(broker);
        const wrong = await createSource(adapter.wrongCredentials(broker, place));
        await waitForState(wrong.id, 'error', adapter.wrongCredentialsError);
        const shown = await relay.api('GET', `/ingest/api/v1/source/${wrong.id}`);
        assert.doesNotMatch(shown.text, /wrong-secret/);
        assert.ok(!('password' in shown.body.config) && !('token' in shown.body.config) && !('password' in (shown.body.config.sasl ?? {})));
        // At rest the password is sealed: the row holds no copy of it.
        const rows = await (relay.store as SealedStore).inner.scanSecrets('source', '', 1000);
        const row = rows.find((r) => r.id === wrong.id) as { config: Record<string, unknown> };
        assert.match(String(adapter.type === 'kafka' ? (row.config.sasl as { password: unknown }).password : row.config.password), /^hrenc:v1:/);
        assert.doesNotMatch(JSON.stringify(rows), /wrong-secret/);
        // Fixed: the consumer restarts with the new settings and runs.
        const fixed = await relay.api('PUT', `/ingest/api/v1/source/${wrong.id}`, { name: 'fixed', type: adapter.type, config: adapter.config(broker, place) });
        assert.equal(fixed.status, 200, fixed.text);
        await waitForState(wrong.id, 'running');
      }
      // Disabled: the consumer stops; deleted: it is gone.
      const place = await adapter.place(broker);
      const source = await createSource(adapter.config(broker, place));
      await waitForState(source.id, 'running');
      const disabled = await relay.api('PUT', `/ingest/api/v1/source/${source.id}`, { name: 'off', type: adapter.type, config: adapter.config(broker, place, { disabled: true }) });
      assert.equal(disabled.status, 200, disabled.text);
      assert.equal(disabled.body.consumer.state, 'disabled');
      await adapter.produce(broker, place, [{ payload: Buffer.from('{"waits":true}') }]);
      const enabled = await relay.api('PUT', `/ingest/api/v1/source/${source.id}`, { name: 'on', type: adapter.type, config: adapter.config(broker, place) });
      assert.equal(enabled.status, 200, enabled.text);
      const [waited] = await countOf(source.appId, 1);
      assert.equal(Buffer.from(waited.payload!).toString(), '{"waits":true}');
      // Nothing posts to a broker source: its ingest URL answers 404.
      assert.equal((await fetch(enabled.body.ingestUrl, { method: 'POST', body: '{}' })).status, 404);
      assert.equal((await relay.api('DELETE', `/ingest/api/v1/source/${source.id}`)).status, 204);
    });

    it('refuses a broker address the egress policy does not allow (422 naming the setting) and bad settings', async () => {
      const strict = await startRelay({ allowNetworks: '' });
      try {
        const refused = await strict.api('POST', '/ingest/api/v1/source', { name: 'x', type: adapter.type, config: adapter.config(broker, 'anything') });
        assert.equal(refused.status, 422, refused.text);
        assert.deepEqual(refused.body.detail[0].loc.slice(0, 3), ['body', 'config', adapter.type === 'kafka' ? 'brokers' : 'address']);
        const bad = await strict.api('POST', '/ingest/api/v1/source', { name: 'x', type: adapter.type, config: { ...adapter.config(broker, 'anything'), eventType: { header: 'a b' } } });
        assert.equal(bad.status, 422, bad.text);
        assert.deepEqual(bad.body.detail[0].loc.slice(0, 3), ['body', 'config', 'eventType']);
      } finally {
        await strict.close();
      }
    });
  });
}

