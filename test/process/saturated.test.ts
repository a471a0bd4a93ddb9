import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { startReceiver } from '../helpers/receiver.js';
import { waitUntil } from '../helpers/wait.js';
import { startChild, tempDir } from './child.js';

/**
 * A dispatcher at its `--max-in-flight` keeps serving while messages keep waking it: it must wait for a slot, not
 * spin. (A wake-up that the loop never cleared once made it spin without yielding, so the process stopped answering
 * anything, its attempts included.) Run as a real process, so that a spinning event loop fails this test by timing
 * out its calls instead of freezing the test runner.
 */
describe('a saturated dispatcher', () => {
  it('delivers everything and answers the API while every slot is busy and accepts keep waking it', { timeout: 60_000 }, async (t) => {
    const dir = tempDir();
    const receiver = await startReceiver(() => ({ status: 200, delayMs: 150 }));
    const child = await startChild({ db: join(dir.dir, 'hookrelay.db'), flags: ['--max-in-flight', '2'] });
    t.after(async () => {
      await child.stop();
      await receiver.close();
      dir.remove();
    });
    const app = await child.svix.application.create({ name: 'saturated' });
    await child.svix.endpoint.create(app.id, { url: receiver.url });
    // One at a time, each one a wake-up, while the two slots are held by slow attempts.
    for (let i = 0; i < 12; i++) {
      const sent = await child.api('POST', `/api/v1/app/${app.id}/msg`, { eventType: 'saturated.test', payload: { i } });
      assert.equal(sent.status, 202, `message ${i}: ${sent.text}`);
    }
    const health = await child.api('GET', '/readyz');
    assert.equal(health.status, 200, 'the API answers while the dispatcher waits for a slot');
    await receiver.waitFor(12, 20_000);
    await waitUntil('every attempt recorded', async () => (await child.api('GET', `/api/v1/app/${app.id}/attempt/endpoint/${(await child.svix.endpoint.list(app.id)).data[0].id}?limit=50`)).body.data.length === 12);
    assert.deepEqual(receiver.received.map((r) => JSON.parse(r.body.toString()).i).sort((a, b) => a - b), [...Array(12).keys()]);
  });
});
