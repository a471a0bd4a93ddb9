import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { startRelay, type TestRelay } from '../helpers/relay.js';
import { runCli } from '../process/child.js';

const cli = (args: string[], env: Record<string, string>) => runCli(args, { env });

describe('hookrelay source (CLI)', () => {
  let relay: TestRelay;
  let env: Record<string, string>;
  before(async () => {
    relay = await startRelay();
    env = { HOOKRELAY_URL: relay.url, HOOKRELAY_ADMIN_TOKEN: relay.adminToken };
  });
  after(() => relay.close());

  it('creates a GitHub source whose ingest URL accepts a signed request, lists, rotates and deletes it', async () => {
    const created = await cli(['source', 'create', '--type', 'github', '--name', 'Repo hooks', '--uid', 'repo-hooks', '--secret', 'cli-secret'], env);
    assert.equal(created.code, 0, created.stderr);
    const source = JSON.parse(created.stdout);
    assert.equal(source.type, 'github');
    assert.ok(!created.stdout.includes('cli-secret'), 'the secret is never printed back');

    const body = JSON.stringify({ action: 'opened', number: 1 });
    const signature = 'sha256=' + createHmac('sha256', 'cli-secret').update(body).digest('hex');
    const posted = await fetch(source.ingestUrl, { method: 'POST', headers: { 'content-type': 'application/json', 'x-hub-signature-256': signature, 'x-github-event': 'issues', 'x-github-delivery': 'cli-1' }, body });
    assert.equal(posted.status, 200);

    const listed = await cli(['source', 'list'], env);
    assert.equal(listed.code, 0);
    assert.deepEqual(JSON.parse(listed.stdout).map((s: { uid: string }) => s.uid), ['repo-hooks']);

    const endpoint = await cli(['source', 'add-endpoint', 'repo-hooks', '--url', 'https://example.com/github'], env);
    assert.equal(endpoint.code, 0, endpoint.stderr);
    assert.match(JSON.parse(endpoint.stdout).secret, /^whsec_/);
    // A content filter routes only pushes to main there (docs/routing.md); a bad one is explained, exit code 2.
    const filter = { headers: { 'x-github-event': 'push' }, body: { ref: 'refs/heads/main' } };
    const filtered = await cli(['source', 'add-endpoint', 'repo-hooks', '--url', 'https://example.com/ci', '--filter', JSON.stringify(filter)], env);
    assert.equal(filtered.code, 0, filtered.stderr);
    assert.deepEqual(JSON.parse(filtered.stdout).filter, filter);
    const badFilter = await cli(['source', 'add-endpoint', 'repo-hooks', '--url', 'https://example.com/ci', '--filter', '{"body": {"ref": {"$startsWith": "refs/"}}}'], env);
    assert.equal(badFilter.code, 2);
    assert.match(badFilter.stderr, /body\.filter\.body\.ref\.\$startsWith.*unknown operator/);

    const rotated = await cli(['source', 'rotate-token', 'repo-hooks'], env);
    assert.equal(rotated.code, 0);
    assert.notEqual(JSON.parse(rotated.stdout).ingestUrl, source.ingestUrl);
    assert.equal((await fetch(source.ingestUrl, { method: 'POST', body: '{}' })).status, 404);

    const deleted = await cli(['source', 'delete', 'repo-hooks'], env);
    assert.equal(deleted.code, 0);
    assert.equal((await cli(['source', 'get', 'repo-hooks'], env)).code, 2);
  });

  it('lists every source type with its config fields and which are secret, from the server', async () => {
    // No token: the OpenAPI document the types come from is public.
    const noToken = { HOOKRELAY_URL: relay.url };
    const table = await cli(['source', 'types'], noToken);
    assert.equal(table.code, 0, table.stderr);
    const rows = table.stdout.trim().split('\n').map((line) => line.split(/\s{2,}/));
    assert.deepEqual(rows[0], ['TYPE', 'FIELD', 'VALUE', 'REQUIRED', 'SECRET', 'DEFAULT']);
    assert.deepEqual(rows.find((r) => r[0] === 'github' && r[1] === 'secret'), ['github', 'secret', 'string', 'yes', 'secret']);
    assert.deepEqual(rows.find((r) => r[0] === 'github' && r[1] === 'allowSha1'), ['github', 'allowSha1', 'boolean', 'no', 'false']);
    assert.deepEqual(rows.find((r) => r[0] === 'hmac' && r[1] === 'algorithm'), ['hmac', 'algorithm', 'sha1|sha256|sha512', 'no', '"sha256"']);
    assert.deepEqual(rows.find((r) => r[0] === 'basic-auth' && r[1] === 'password')?.slice(3), ['yes', 'secret']);
    assert.deepEqual(rows.find((r) => r[0] === 'basic-auth' && r[1] === 'username')?.slice(3), ['yes']);
    // The settings every type shares are listed once, not per type.
    assert.deepEqual(rows.filter((r) => r[1] === 'maxBodyBytes'), [['(every HTTP type)', 'maxBodyBytes', 'integer', 'no', '1048576']]);
    // A broker source's fields are its own (docs/brokers.md); its secrets are marked.
    assert.deepEqual(rows.find((r) => r[0] === 'kafka' && r[1] === 'topic')?.slice(3), ['yes']);
    assert.deepEqual(rows.find((r) => r[0] === 'redis' && r[1] === 'password')?.slice(3), ['no', 'secret']);

    const json = await cli(['source', 'types', 'discord', '--json'], noToken);
    assert.equal(json.code, 0, json.stderr);
    const [discord] = JSON.parse(json.stdout);
    assert.equal(discord.type, 'discord');
    assert.deepEqual(discord.fields.find((f: { name: string }) => f.name === 'publicKey'), { name: 'publicKey', value: 'string', required: true, secret: false });
    assert.ok(discord.fields.some((f: { name: string }) => f.name === 'maxBodyBytes'), 'one type alone shows its shared settings too');

    // Every type the server lists can be created: the listing is the server's own.
    const all = JSON.parse((await cli(['source', 'types', '--json'], noToken)).stdout) as { type: string }[];
    const created = await relay.api('GET', '/api/v1/openapi.json', undefined, { token: null });
    assert.deepEqual(all.map((t) => t.type), Object.keys(created.body.components.schemas.IngestSourceIn.discriminator.mapping));
    const refused = await relay.api('POST', '/ingest/api/v1/source', { name: 'x', type: 'nope' });
    for (const { type } of all) assert.match(refused.body.detail[0].msg, new RegExp(`\\b${type}\\b`));

    const unknown = await cli(['source', 'types', 'nope'], noToken);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown source type "nope"/);
  });

  it('explains bad input with exit code 2 and no stack trace', async () => {
    const cases = [
      { args: ['source', 'create', '--name', 'x'], says: /--type and --name/ },
      { args: ['source', 'create', '--type', 'github', '--name', 'x', '--config', '{nope'], says: /--config is not valid JSON/ },
      { args: ['source', 'create', '--type', 'nope', '--name', 'x'], says: /body\.type.*must be one of/ },
      { args: ['source', 'frobnicate'], says: /unknown source action/ },
      { args: ['source', 'get'], says: /needs a source id/ },
      { args: ['source', 'add-endpoint', 'x', '--url', 'https://example.com', '--filter', '{nope'], says: /--filter is not valid JSON/ },
    ];
    for (const { args, says } of cases) {
      const result = await cli(args, env);
      assert.equal(result.code, 2, args.join(' '));
      assert.match(result.stderr, says);
      assert.doesNotMatch(result.stderr, /\n\s+at /);
    }
    const unreachable = await cli(['source', 'list'], { ...env, HOOKRELAY_URL: 'http://127.0.0.1:9' });
    assert.equal(unreachable.code, 1);
    assert.match(unreachable.stderr, /cannot reach hookrelay/);
  });
});
