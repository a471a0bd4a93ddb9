import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { skipWithoutPostgres } from '../helpers/postgres.js';
import { startReceiver } from '../helpers/receiver.js';
import { startRelayOn, type TestStoreKind } from '../helpers/relay.js';
import { waitUntil } from '../helpers/wait.js';

/**
 * Retention as a running hookrelay does it: on its timer, in batches, with nothing asked of the API. A delivered
 * message loses its payload and attempts once older than the retention period; one still being retried keeps
 * its payload (it will be sent again). Run on both stores.
 */
for (const kind of ['sqlite', 'postgres'] as TestStoreKind[]) {
  describe(`retention on ${kind}`, { skip: kind === 'postgres' ? skipWithoutPostgres() : false }, () => {
    it('prunes the payload and attempts of a delivered message after the retention period, and keeps a pending one’s payload', async (t) => {
      const receiver = await startReceiver((request) => ({ status: request.path.endsWith('/failing') ? 500 : 200 }));
      // The first attempt is immediate; the next one is an hour away, so the failing delivery stays pending.
      const relay = await startRelayOn(kind, { retrySchedule: '0,1h' }, {}, { retentionMs: 3_000, pruneIntervalMs: 100 });
      t.after(async () => {
        await relay.close();
        await receiver.close();
      });
      const app = await relay.svix.application.create({ name: 'retention' });
      await relay.svix.endpoint.create(app.id, { url: receiver.url, eventTypes: ['ok'] });
      await relay.svix.endpoint.create(app.id, { url: receiver.url.replace(/\/webhook$/, '/failing'), eventTypes: ['failing'] });
      const delivered = await relay.svix.message.create(app.id, { eventType: 'ok', payload: { keep: 'no' } });
      const pending = await relay.svix.message.create(app.id, { eventType: 'failing', payload: { keep: 'yes' } });
      assert.deepEqual((await relay.svix.message.get(app.id, delivered.id, { withContent: true })).payload, { keep: 'no' }, 'pruned before the retention period');
      await receiver.waitFor(2, 10_000);
      const attempts = async (msgId: string) => (await relay.svix.messageAttempt.listByMsg(app.id, msgId)).data.length;
      await waitUntil('both attempts to be recorded', async () => (await attempts(delivered.id)) === 1 && (await attempts(pending.id)) === 1, 10_000);

      await waitUntil('the delivered message’s payload to be pruned', async () => Object.keys((await relay.svix.message.get(app.id, delivered.id, { withContent: true })).payload).length === 0, 15_000, 100);
      await waitUntil('old attempts to be pruned', async () => (await attempts(delivered.id)) === 0 && (await attempts(pending.id)) === 0, 10_000, 100);
      assert.deepEqual((await relay.svix.message.get(app.id, pending.id, { withContent: true })).payload, { keep: 'yes' }, 'a message still being retried lost its payload');
    });
  });
}
