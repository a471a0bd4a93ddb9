import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { startRelay, type TestRelay } from '../helpers/relay.js';
import { runCli, tempDir } from '../process/child.js';

describe('hookrelay endpoint transformation|simulate (CLI)', () => {
  let relay: TestRelay;
  let receiver: Receiver;
  let env: Record<string, string>;
  const temp = tempDir();
  const cli = (...args: string[]) => runCli(args, { env });

  before(async () => {
    receiver = await startReceiver();
    relay = await startRelay();
    env = { HOOKRELAY_URL: relay.url, HOOKRELAY_ADMIN_TOKEN: relay.adminToken };
    const app = await relay.svix.application.create({ name: 'Acme', uid: 'acme' });
    await relay.svix.endpoint.create(app.id, { url: receiver.url, uid: 'hooks' });
  });
  after(async () => {
    await relay?.close();
    await receiver?.close();
    temp.remove();
  });

  it('sets, shows, disables and removes a transformation, and refuses code that does not load', async () => {
    const file = join(temp.dir, 'handler.js');
    writeFileSync(file, 'function handler(webhook) {\n  webhook.payload = { text: webhook.eventType };\n  return webhook;\n}\n');
    const set = await cli('endpoint', 'transformation', 'acme', 'hooks', '--code-file', file, '--enabled', 'true', '--json');
    assert.equal(set.code, 0, set.stderr);
    assert.deepEqual({ ...JSON.parse(set.stdout), updatedAt: null }, { code: 'function handler(webhook) {\n  webhook.payload = { text: webhook.eventType };\n  return webhook;\n}\n', enabled: true, variables: null, updatedAt: null });

    const shown = await cli('endpoint', 'transformation', 'acme', 'hooks');
    assert.match(shown.stdout, /^enabled: yes; updated: \d{4}-/);
    assert.match(shown.stdout, /webhook\.payload = \{ text: webhook\.eventType \}/);

    const simulated = await cli('endpoint', 'simulate', 'acme', 'hooks', '--code-file', file, '--event-type', 'user.created', '--data', '{"id": 1}');
    assert.equal(simulated.code, 0, simulated.stderr);
    assert.equal(simulated.stdout, `POST ${receiver.url}\n\n{"text":"user.created"}\n`);
    assert.equal(receiver.received.length, 0);

    writeFileSync(join(temp.dir, 'broken.js'), 'function handler(webhook) {');
    const broken = await cli('endpoint', 'transformation', 'acme', 'hooks', '--code-file', join(temp.dir, 'broken.js'));
    assert.equal(broken.code, 2);
    assert.match(broken.stderr, /422.*body\.code: SyntaxError/);

    assert.match((await cli('endpoint', 'transformation', 'acme', 'hooks', '--enabled', 'false')).stdout, /^enabled: no/);
    const removed = await cli('endpoint', 'transformation', 'acme', 'hooks', '--remove', '--json');
    assert.equal(JSON.parse(removed.stdout).code, null);
  });
});
