import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Webhook } from 'svix';
import { startReceiver } from '../helpers/receiver.js';
import { waitUntil } from '../helpers/wait.js';
import { listAllMessageIds, startChild, tempDir, type Child } from './child.js';

const N = 300;

describe('crash safety (kill -9)', () => {
  it('delivers every acknowledged message at least once across a SIGKILL and restart', async (t) => {
    const tmp = tempDir();
    const receiver = await startReceiver(() => ({ status: 200, delayMs: 300 }));
    const children: Child[] = [];
    t.after(async () => {
      for (const c of children) if (c.alive()) c.proc.kill('SIGKILL');
      await Promise.all(children.map((c) => c.exited));
      await receiver.close();
      tmp.remove();
    });
    const db = join(tmp.dir, 'relay.db');
    // A per-endpoint cap of 12 against a 300 ms receiver keeps the run long enough to kill it mid-way.
    const first = await startChild({ db, flags: ['--endpoint-concurrency', '12'] });
    children.push(first);

    const app = await first.svix.application.create({ name: 'crash' });
    const endpoint = await first.svix.endpoint.create(app.id, { url: receiver.url });
    const { key: secret } = await first.svix.endpoint.getSecret(app.id, endpoint.id);

    const acknowledged: string[] = [];
    const workers = Array.from({ length: 8 }, async (_, w) => {
      for (let i = w; i < N; i += 8) {
        const msg = await first.svix.message.create(app.id, { eventType: 'crash.test', payload: { i } });
        acknowledged.push(msg.id);
      }
    });
    await Promise.all(workers);
    assert.equal(new Set(acknowledged).size, N);

    await receiver.waitFor(30, 20_000);
    const seenAtKill = receiver.received.length;
    assert.ok(seenAtKill < N, `the receiver already had all ${N} deliveries before the kill; the test could not crash mid-way`);
    first.proc.kill('SIGKILL');
    const exit = await first.exited;
    assert.equal(exit.signal, 'SIGKILL');

    const second = await startChild({ db, flags: ['--endpoint-concurrency', '12'] });
    children.push(second);

    const seen = new Map<string, number>();
    const tally = () => {
      seen.clear();
      for (const r of receiver.received) {
        const id = String(r.headers['webhook-id']);
        seen.set(id, (seen.get(id) ?? 0) + 1);
      }
      return acknowledged.every((id) => seen.has(id));
    };
    await waitUntil('every acknowledged message to reach the receiver', tally, 60_000, 100).catch((error) => {
      const missing = acknowledged.filter((id) => !seen.has(id));
      throw new Error(`${(error as Error).message}: ${missing.length} of ${N} missing, e.g. ${missing.slice(0, 5).join(', ')}`);
    });

    const missing = acknowledged.filter((id) => !seen.has(id));
    assert.deepEqual(missing, []);
    const unknown = [...seen.keys()].filter((id) => !acknowledged.includes(id));
    assert.deepEqual(unknown, [], 'the receiver got deliveries for messages that were never sent');
    for (const r of receiver.received) {
      const headers = Object.fromEntries(Object.entries(r.headers).map(([k, v]) => [k, String(v)]));
      new Webhook(secret).verify(r.body.toString(), headers);
    }
    const duplicates = receiver.received.length - seen.size;
    t.diagnostic(`received ${seenAtKill} before the kill; ${receiver.received.length} deliveries in total for ${N} messages, ${duplicates} duplicates`);

    const listed = await listAllMessageIds(second.svix, app.id);
    assert.equal(listed.length, N);
    assert.deepEqual(new Set(listed), new Set(acknowledged));
  });
});
