import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Webhook } from 'svix';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { startRelay, type TestRelay } from '../helpers/relay.js';
import { waitUntil } from '../helpers/wait.js';
import { CLI, runCli } from '../process/child.js';

/** The inspect-and-act commands against a running server, as an operator types them. */
describe('hookrelay app|endpoint|message|attempt, resend, recover, tail (CLI)', () => {
  let relay: TestRelay;
  let receiver: Receiver;
  let env: Record<string, string>;
  let failing = true;
  const cli = (...args: string[]) => runCli(args, { env });
  const json = async (...args: string[]) => {
    const result = await cli(...args, '--json');
    assert.equal(result.code, 0, `${args.join(' ')}: ${result.stderr}`);
    return JSON.parse(result.stdout);
  };

  before(async () => {
    receiver = await startReceiver((request) => ({ status: request.path.endsWith('/flaky') && failing ? 500 : 200 }));
    relay = await startRelay({ retrySchedule: '0,50ms' });
    env = { HOOKRELAY_URL: relay.url, HOOKRELAY_ADMIN_TOKEN: relay.adminToken };
    await relay.svix.application.create({ name: 'Acme', uid: 'acme' });
  });
  after(async () => {
    await relay?.close();
    await receiver?.close();
  });

  it('lists and gets applications, as a table and as JSON', async () => {
    const table = await cli('app', 'list');
    assert.equal(table.code, 0, table.stderr);
    const [header, row] = table.stdout.split('\n');
    assert.match(header, /^ID\s+UID\s+NAME\s+CREATED$/);
    assert.match(row, /^app_\S+\s+acme\s+Acme\s+\d{4}-/);
    const [app] = await json('app', 'list');
    assert.equal(app.uid, 'acme');
    assert.equal((await json('app', 'get', 'acme')).id, app.id);
    const record = await cli('app', 'get', 'acme');
    assert.match(record.stdout, /^id\s+app_/m);
    assert.match(record.stdout, /^name\s+Acme$/m);
  });

  it('creates and updates a key-ordered endpoint and sends a message with an ordering key', async () => {
    const created = await json('endpoint', 'create', 'acme', '--url', `${receiver.url}/ordered`, '--uid', 'ordered', '--ordering', 'key', '--ordering-on-park', 'hold', '--filter-types', 'never.sent');
    assert.deepEqual([created.ordering, created.orderingOnPark], ['key', 'hold']);
    const updated = await json('endpoint', 'update', 'acme', 'ordered', '--ordering-on-park', 'skip');
    assert.deepEqual([updated.ordering, updated.orderingOnPark], ['key', 'skip']);
    assert.match((await cli('endpoint', 'get', 'acme', 'ordered')).stdout, /^ordering\s+key$/m);
    const refused = await cli('endpoint', 'update', 'acme', 'ordered', '--ordering', 'sorted');
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /ordering/);
    // No endpoint takes this event type: the receiver's first request stays the one the next test checks.
    const sent = await json('message', 'send', 'acme', '--event-type', 'ordered.nowhere', '--data', '{"n":1}', '--ordering-key', 'customer:7');
    assert.equal(sent.orderingKey, 'customer:7');
    assert.equal((await json('message', 'get', 'acme', sent.id)).orderingKey, 'customer:7');
  });

  it('creates an ed25519 endpoint and manages its encryption keys', async () => {
    const created = await json('endpoint', 'create', 'acme', '--url', `${receiver.url}/sealed`, '--uid', 'sealed', '--signing', 'ed25519', '--filter-types', 'never.sent');
    assert.equal(created.signing, 'ed25519');
    assert.match(created.publicKey, /^whpk_/);
    assert.equal((await cli('endpoint', 'secret', 'acme', 'sealed')).stdout.trim(), created.publicKey);
    assert.equal((await json('endpoint', 'update', 'acme', 'sealed', '--signing', 'hmac')).signing, 'hmac');

    const dir = mkdtempSync(join(tmpdir(), 'hookrelay-jwk-'));
    try {
      const jwkFile = join(dir, 'key.json');
      // RFC 7515 appendix A.3's example P-256 point, as a public encryption key.
      writeFileSync(jwkFile, JSON.stringify({ kty: 'EC', crv: 'P-256', kid: 'k1', x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU', y: 'x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0' }));
      const added = await json('endpoint', 'add-encryption-key', 'acme', 'sealed', '--jwk-file', jwkFile);
      assert.deepEqual([added.kid, added.alg, added.current], ['k1', 'ECDH-ES+A256KW', true]);
      const table = await cli('endpoint', 'encryption-keys', 'acme', 'sealed');
      assert.match(table.stdout, /^k1\s+ECDH-ES\+A256KW\s+/m);
      writeFileSync(jwkFile, JSON.stringify({ kty: 'EC', crv: 'P-384', kid: 'k2', x: 'AQ', y: 'AQ' }));
      const refused = await cli('endpoint', 'add-encryption-key', 'acme', 'sealed', '--jwk-file', jwkFile);
      assert.notEqual(refused.code, 0);
      assert.match(refused.stderr, /P-256/);
      assert.equal((await cli('endpoint', 'delete-encryption-key', 'acme', 'sealed', 'k1')).code, 0);
      assert.deepEqual(await json('endpoint', 'encryption-keys', 'acme', 'sealed'), []);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('creates, updates, shows the secret of, rotates and deletes an endpoint', async () => {
    const created = await json('endpoint', 'create', 'acme', '--url', `${receiver.url}/main`, '--uid', 'main', '--filter-types', 'invoice.paid,invoice.void', '--description', 'main');
    assert.equal(created.uid, 'main');
    assert.deepEqual(created.filterTypes, ['invoice.paid', 'invoice.void']);
    const updated = await json('endpoint', 'update', 'acme', 'main', '--description', 'primary', '--disabled', 'true');
    assert.equal(updated.description, 'primary');
    assert.equal(updated.disabled, true);
    assert.equal((await json('endpoint', 'update', 'acme', 'main', '--disabled', 'false')).disabled, false);
    const listed = await cli('endpoint', 'list', 'acme');
    assert.match(listed.stdout, /^ID\s+UID\s+URL\s+FILTER TYPES\s+DISABLED\s+CIRCUIT\s+VERIFICATION$/m);
    assert.match(listed.stdout, /main\s+http:\/\/127\.0\.0\.1:\d+\/webhook\/main\s+invoice\.paid,invoice\.void\s+no\s+closed/);

    const secret = (await cli('endpoint', 'secret', 'acme', 'main')).stdout.trim();
    assert.equal(secret, (await relay.svix.endpoint.getSecret('acme', 'main')).key);
    const rotated = await json('endpoint', 'rotate-secret', 'acme', 'main');
    assert.notEqual(rotated.key, secret);
    assert.match(rotated.key, /^whsec_/);

    const extra = await json('endpoint', 'create', 'acme', '--url', `${receiver.url}/extra`);
    const deleted = await cli('endpoint', 'delete', 'acme', extra.id);
    assert.equal(deleted.code, 0, deleted.stderr);
    assert.equal(deleted.stdout, `deleted ${extra.id}\n`);
    const gone = await cli('endpoint', 'get', 'acme', extra.id);
    assert.equal(gone.code, 2);
    assert.match(gone.stderr, /404.*not found/);
  });

  it('sends a message (from --data or a file, with an idempotency key), lists and gets it, and its signed delivery arrives', async () => {
    const sent = await json('message', 'send', 'acme', '--event-type', 'invoice.paid', '--event-id', 'inv-1', '--data', '{"amount":1200}', '--idempotency-key', 'k-1');
    assert.match(sent.id, /^msg_/);
    const again = await json('message', 'send', 'acme', '--event-type', 'invoice.paid', '--data', '{"amount":1}', '--idempotency-key', 'k-1');
    assert.equal(again.id, sent.id, 'the idempotency key was sent');
    const dir = mkdtempSync(join(tmpdir(), 'hookrelay-cli-'));
    try {
      writeFileSync(join(dir, 'payload.json'), '{"amount":99}');
      const fromFile = await cli('message', 'send', 'acme', '--event-type', 'invoice.void', '--data-file', join(dir, 'payload.json'));
      assert.equal(fromFile.code, 0, fromFile.stderr);
      assert.match(fromFile.stdout, /^accepted msg_\S+\n$/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const [delivered] = await receiver.waitFor(1);
    const key = (await relay.svix.endpoint.getSecret('acme', 'main')).key;
    const headers = Object.fromEntries(Object.entries(delivered.headers).map(([k, v]) => [k, String(v)]));
    new Webhook(key).verify(delivered.body.toString(), headers);
    assert.deepEqual(JSON.parse(delivered.body.toString()), { amount: 1200 });

    assert.equal((await json('message', 'get', 'acme', 'inv-1')).id, sent.id, 'found by eventId');
    const listed = await json('message', 'list', 'acme', '--event-types', 'invoice.paid');
    assert.deepEqual(listed.map((m: { id: string }) => m.id), [sent.id]);
    const attempts = await waitUntil('the attempt', async () => {
      const rows = await json('attempt', 'list', 'acme', '--message', sent.id);
      return rows.length > 0 ? rows : null;
    });
    const attempt = await json('attempt', 'get', 'acme', sent.id, attempts![0].id);
    assert.equal(attempt.responseStatusCode, 200);
    const table = await cli('attempt', 'list', 'acme', '--endpoint', 'main');
    assert.match(table.stdout, /^ID\s+TIME\s+MESSAGE\s+ENDPOINT\s+STATUS\s+HTTP\s+MS$/m);
    assert.match(table.stdout, /succeeded\s+200/);
  });

  it('resends a message and recovers failed deliveries, saying what it does', async () => {
    const flaky = await json('endpoint', 'create', 'acme', '--url', `${receiver.url}/flaky`, '--uid', 'flaky');
    const sent = await json('message', 'send', 'acme', '--event-type', 'order.created', '--data', '{"n":1}');
    await waitUntil('the delivery to be parked', async () => (await json('attempt', 'list', 'acme', '--endpoint', 'flaky')).length === 2);
    failing = false;
    const recovered = await cli('recover', 'acme', 'flaky', '--since', '1h');
    assert.equal(recovered.code, 0, recovered.stderr);
    assert.match(recovered.stderr, /^recovering failed deliveries to flaky of messages since \d{4}-.*…\n$/);
    assert.equal(recovered.stdout, 're-queued 1 failed delivery; they are delivered again now\n');
    await waitUntil('the recovered delivery', () => receiver.received.some((r) => r.path.endsWith('/flaky') && r.body.toString() === '{"n":1}' && !failing));
    const resent = await cli('resend', 'acme', sent.id, flaky.id);
    assert.equal(resent.code, 0, resent.stderr);
    await waitUntil('the resent attempt', async () => (await json('attempt', 'list', 'acme', '--endpoint', 'flaky')).some((a: { triggerType: number }) => a.triggerType === 1));
  });

  it('names what is missing or wrong, never the parser text', async () => {
    const noUrl = await cli('endpoint', 'create', 'acme');
    assert.equal(noUrl.code, 2);
    assert.match(noUrl.stderr, /^hookrelay: hookrelay endpoint create: --url is required\n/);
    const unknown = await cli('endpoint', 'list', 'acme', '--colour');
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /hookrelay endpoint has no option --colour/);
    assert.doesNotMatch(unknown.stderr, /Unknown option/);
    const noValue = await cli('message', 'send', 'acme', '--event-type');
    assert.match(noValue.stderr, /--event-type needs a value/);
    const badJson = await cli('message', 'send', 'acme', '--event-type', 'x', '--data', '{oops');
    assert.equal(badJson.code, 2);
    assert.match(badJson.stderr, /the message payload is not valid JSON/);
    const badTime = await cli('recover', 'acme', 'main', '--since', 'yesterday');
    assert.match(badTime.stderr, /--since must be an ISO 8601 time .* or a duration ago/);
    const which = await cli('attempt', 'list', 'acme');
    assert.match(which.stderr, /needs --endpoint or --message/);
    for (const command of ['source', 'app-key']) {
      const bogus = await cli(command, 'list', '--bogus');
      assert.equal(bogus.code, 2);
      assert.match(bogus.stderr, new RegExp(`^hookrelay: hookrelay ${command} has no option --bogus\n`));
    }
    const serveFlag = await runCli(['serve', '--prot', '1'], { env: {} });
    assert.equal(serveFlag.code, 2);
    assert.match(serveFlag.stderr, /hookrelay serve has no option --prot/);
  });

  it('tail follows new messages and attempt outcomes of one application', async () => {
    const other = await relay.svix.application.create({ name: 'Other', uid: 'other' });
    await relay.svix.endpoint.create(other.id, { url: `${receiver.url}/other` });
    const proc = spawn(process.execPath, [CLI, 'tail', '--app', 'acme', '--interval', '0.1', '--json'], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    proc.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    proc.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const exited = new Promise<number | null>((resolve) => proc.on('close', resolve));
    try {
      await waitUntil('tail to start following', () => stderr.includes('following 1 application'));
      const message = await relay.svix.message.create('acme', { eventType: 'invoice.paid', payload: { n: 'tail' } });
      await relay.svix.message.create(other.id, { eventType: 'invoice.paid', payload: { n: 'not followed' } });
      const lines = await waitUntil('the message and its attempt', () => {
        const parsed = stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l));
        return parsed.some((l) => l.kind === 'attempt' && l.msgId === message.id) ? parsed : null;
      });
      const seen = lines!.filter((l) => l.msgId === message.id || l.id === message.id);
      assert.equal(seen[0].kind, 'message', 'the message is printed before its attempts');
      const attempts = seen.filter((l) => l.kind === 'attempt');
      assert.ok(attempts.every((a) => a.responseStatusCode === 200));
      assert.equal(new Set(attempts.map((a) => a.id)).size, attempts.length, 'an attempt was printed twice');
      assert.ok(lines!.every((l) => l.appId !== other.id), 'tail printed another application');
    } finally {
      proc.kill('SIGTERM');
    }
    assert.equal(await exited, 0);
  });

  it('starts fast: version and help load neither the server nor the database', async () => {
    for (const args of [['version'], ['help'], ['endpoint', 'help']]) {
      const result = await runCli(args);
      assert.equal(result.code, 0, result.stderr);
    }
    // What a command loads is what it costs: these must not pull in Fastify, the stores or zod.
    const probe = await runCli(['version'], { env: { NODE_DEBUG: 'module' } });
    assert.equal(probe.code, 0);
    for (const heavy of ['fastify', 'better-sqlite3', '/pg/', 'zod', 'prom-client']) assert.ok(!probe.stderr.includes(heavy), `hookrelay version loaded ${heavy}`);
  });
});
