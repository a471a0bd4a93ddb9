import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startRelay, type TestRelay } from '../helpers/relay.js';
import { runCli } from '../process/child.js';

const cli = (args: string[], env: Record<string, string>) => runCli(args, { env });

describe('hookrelay app-key (CLI)', () => {
  let relay: TestRelay;
  let env: Record<string, string>;
  before(async () => {
    relay = await startRelay();
    env = { HOOKRELAY_URL: relay.url, HOOKRELAY_ADMIN_TOKEN: relay.adminToken };
  });
  after(() => relay.close());

  it('creates a key that works on its application only, lists it without the key, and revokes it', async () => {
    const app = await relay.svix.application.create({ name: 'cli', uid: 'cli-app' });
    const other = await relay.svix.application.create({ name: 'other' });
    const created = await cli(['app-key', 'create', 'cli-app', '--name', 'deploy bot', '--expires-at', new Date(Date.now() + 86_400_000).toISOString()], env);
    assert.equal(created.code, 0, created.stderr);
    const key = JSON.parse(created.stdout);
    assert.equal(key.name, 'deploy bot');
    assert.equal((await relay.api('GET', `/api/v1/app/${app.id}`, undefined, { token: key.key })).status, 200);
    assert.equal((await relay.api('GET', `/api/v1/app/${other.id}`, undefined, { token: key.key })).status, 404);

    const listed = await cli(['app-key', 'list', 'cli-app'], env);
    assert.equal(listed.code, 0, listed.stderr);
    assert.deepEqual(JSON.parse(listed.stdout).map((k: { id: string }) => k.id), [key.id]);
    assert.ok(!listed.stdout.includes(key.key), 'list printed the key');

    const revoked = await cli(['app-key', 'revoke', 'cli-app', key.id], env);
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.equal((await relay.api('GET', `/api/v1/app/${app.id}`, undefined, { token: key.key })).status, 401);
    const again = await cli(['app-key', 'revoke', 'cli-app', key.id], env);
    assert.equal(again.code, 2);
    assert.match(again.stderr, /404/);
  });

  it('explains what is missing: an action, an application, a key id, a token', async () => {
    assert.equal((await cli(['app-key'], env)).code, 2);
    const unknown = await cli(['app-key', 'mint', 'x'], env);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown app-key action "mint"/);
    assert.match((await cli(['app-key', 'create'], env)).stderr, /needs an application id or uid/);
    assert.match((await cli(['app-key', 'revoke', 'cli-app'], env)).stderr, /needs the key id/);
    const noToken = await cli(['app-key', 'list', 'cli-app', '--db', '/nonexistent/x.db'], { HOOKRELAY_URL: relay.url });
    assert.equal(noToken.code, 2);
    assert.match(noToken.stderr, /no admin token/);
  });
});
