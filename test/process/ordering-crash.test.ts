import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { waitUntil } from '../helpers/wait.js';
import { assertKeyOrder, startOrderedReceiver } from '../pipeline/ordering-support.js';
import { startChild, tempDir, type Child } from './child.js';

const KEYS = 20;
const PER_KEY = 50;

describe('ordering keys across kill -9 (SQLite)', () => {
  it('keeps every key in order when the serving process is SIGKILLed mid-run and restarted: a repeat of the message in flight, never a reordering', { timeout: 240_000 }, async (t) => {
    const tmp = tempDir();
    const receiver = await startOrderedReceiver((_key, _seq, attempt) => ({ status: attempt < 2 && Math.random() < 0.1 ? 500 : 200, delayMs: 5 + Math.floor(Math.random() * 30) }));
    const children: Child[] = [];
    t.after(async () => {
      for (const c of children) if (c.alive()) c.proc.kill('SIGKILL');
      await Promise.all(children.map((c) => c.exited));
      await receiver.close();
      tmp.remove();
    });
    const db = join(tmp.dir, 'relay.db');
    const first = await startChild({ db });
    children.push(first);
    const app = await first.svix.application.create({ name: 'ordering-crash' });
    const endpoint = await first.api('POST', `/api/v1/app/${app.id}/endpoint`, { url: receiver.url, ordering: 'key', maxInFlight: 8 });
    assert.equal(endpoint.status, 201, endpoint.text);

    // The receiver holds its answers while the messages are sent, so that the run is still young when they all are.
    const release = receiver.pause();
    const keys = Array.from({ length: KEYS }, (_, k) => `order-${k}`);
    await Promise.all(keys.map(async (key) => {
      for (let seq = 0; seq < PER_KEY; seq++) {
        const sent = await first.api('POST', `/api/v1/app/${app.id}/msg`, { eventType: 'ordered', payload: { key, seq }, orderingKey: key });
        assert.equal(sent.status, 202, sent.text);
      }
    }));
    release();
    await waitUntil('a third of the deliveries', () => receiver.arrivals.filter((a) => a.ok).length >= (KEYS * PER_KEY) / 3, 60_000, 20);
    first.proc.kill('SIGKILL');
    assert.equal((await first.exited).signal, 'SIGKILL');
    const atKill = receiver.complete(PER_KEY);
    assert.ok(atKill < KEYS, 'every key was complete before the kill; the test could not crash mid-run');

    const second = await startChild({ db });
    children.push(second);
    await waitUntil('every key to be delivered after the restart', () => receiver.complete(PER_KEY) === KEYS, 120_000, 100);
    assertKeyOrder(receiver.arrivals, keys, PER_KEY, { repeatsAfterSuccess: true });
    const repeats = receiver.arrivals.filter((a, i) => a.ok && receiver.arrivals.slice(0, i).some((b) => b.key === a.key && b.seq === a.seq && b.ok)).length;
    t.diagnostic(`${atKill} of ${KEYS} keys complete at the kill; ${receiver.arrivals.length} requests, ${repeats} repeats of a delivered message`);
  });
});
