import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Svix } from 'svix';
import { Webhook } from 'svix1';
import { startReceiver } from '../helpers/receiver.js';
import { waitUntil } from '../helpers/wait.js';
import { startChild, tempDir, type Child } from './child.js';

const PAYLOAD_MARK = 'distinctive-payload-q7Zt93kPw';
const ENDPOINT_SECRET = 'whsec_' + Buffer.from('endpoint-secret-for-log-test-xy').toString('base64');

describe('generated admin token', () => {
  it('is generated once, kept beside the database (0600), reused on restart, and never logged with secrets or payloads', async (t) => {
    const tmp = tempDir();
    // The first attempt fails so the retry path is logged too.
    const receiver = await startReceiver((_r, n) => (n === 0 ? { status: 500, body: 'try again' } : { status: 200 }));
    const children: Child[] = [];
    t.after(async () => {
      for (const c of children) if (c.alive()) c.proc.kill('SIGKILL');
      await Promise.all(children.map((c) => c.exited));
      await receiver.close();
      tmp.remove();
    });
    const db = join(tmp.dir, 'relay.db');
    const noToken = { HOOKRELAY_ADMIN_TOKEN: undefined };

    const first = await startChild({ db, env: noToken, flags: ['--log-level', 'trace'] });
    children.push(first);
    const banner = (await waitUntil('the admin token banner on stderr', () => /Admin token \(kept in (.+)\):\n {2}(\S+)\n/.exec(first.stderr()), 5_000))!;
    const [bannerText, keptIn, token] = banner;
    const file = join(tmp.dir, 'relay.admin-token');
    assert.equal(keptIn, file);
    assert.equal(statSync(file).mode & 0o777, 0o600, 'the token file is readable by others');
    assert.equal(readFileSync(file, 'utf8').trim(), token);
    assert.ok(token.length >= 32, `a short token: ${token}`);

    assert.equal((await first.api('GET', '/api/v1/app', undefined, null)).status, 401);
    assert.equal((await first.api('GET', '/api/v1/app', undefined, token.slice(0, -1) + (token.endsWith('x') ? 'y' : 'x'))).status, 401);
    const svix = new Svix(token, { serverUrl: first.url });
    const app = await svix.application.create({ name: 'token' });
    const endpoint = await svix.endpoint.create(app.id, { url: receiver.url, secret: ENDPOINT_SECRET });
    const message = await svix.message.create(app.id, { eventType: 'token.test', payload: { note: PAYLOAD_MARK } });
    // A rejected request carrying the payload must not be logged with its body either.
    const invalid = await first.api('POST', `/api/v1/app/${app.id}/msg`, { payload: { note: PAYLOAD_MARK } }, token);
    assert.equal(invalid.status, 422);
    await receiver.waitFor(2, 10_000);
    for (const r of receiver.received) {
      assert.equal(r.headers['webhook-id'], message.id);
      const headers = Object.fromEntries(Object.entries(r.headers).map(([k, v]) => [k, String(v)]));
      assert.deepEqual(new Webhook(ENDPOINT_SECRET).verify(r.body.toString(), headers), { note: PAYLOAD_MARK });
    }
    await waitUntil('the successful attempt to be recorded', async () => (await svix.messageAttempt.listByMsg(app.id, message.id)).data.some((a) => a.status === 0), 5_000);
    const stopped = await first.stop();
    assert.equal(stopped.code, 0);

    const second = await startChild({ db, env: noToken, token });
    children.push(second);
    const again = new Svix(token, { serverUrl: second.url });
    assert.equal((await again.application.get(app.id)).id, app.id);
    assert.equal((await again.endpoint.getSecret(app.id, endpoint.id)).key, ENDPOINT_SECRET);
    assert.equal(readFileSync(file, 'utf8').trim(), token);
    await second.stop();
    assert.doesNotMatch(second.stderr(), /Admin token/, 'a second token banner on restart');

    const firstStderr = first.stderr();
    assert.equal(firstStderr.split(bannerText).length, 2, 'the banner is printed exactly once');
    const output = [first.stdoutLines.join('\n'), firstStderr.replace(bannerText, ''), second.stdoutLines.join('\n'), second.stderr()].join('\n');
    assert.ok(first.logs().length > 3, 'expected JSON log lines on stdout');
    const secrets = { 'admin token': token, 'endpoint secret': ENDPOINT_SECRET, 'endpoint secret key': ENDPOINT_SECRET.slice('whsec_'.length), payload: PAYLOAD_MARK };
    for (const [what, value] of Object.entries(secrets)) {
      const line = output.split('\n').find((l) => l.includes(value));
      assert.equal(line, undefined, `the ${what} appears in the logs: ${line}`);
    }
  });
});
