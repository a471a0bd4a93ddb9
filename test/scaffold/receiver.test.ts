import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startRelay, type TestRelay } from '../helpers/relay.js';
import { waitUntil } from '../helpers/wait.js';
import { runCli, tempDir } from '../process/child.js';

/**
 * `hookrelay scaffold receiver` end to end: generate each framework's project from real event types, install it from
 * the npm registry, run its own tests (signed replays of the schemas' examples), and for Express run it and let this
 * hookrelay deliver to it.
 */

const INVOICE_PAID = {
  type: 'object',
  title: 'Invoice paid',
  required: ['type', 'data'],
  properties: {
    type: { const: 'invoice.paid' },
    data: {
      type: 'object',
      required: ['id', 'amount', 'currency'],
      properties: { id: { type: 'string' }, amount: { type: 'integer', minimum: 0 }, currency: { enum: ['EUR', 'USD'] }, lines: { type: 'array', items: { type: 'object', properties: { sku: { type: 'string' } } } } },
    },
  },
  examples: [{ type: 'invoice.paid', data: { id: 'in_1', amount: 1200, currency: 'EUR', lines: [{ sku: 'A-1' }] } }],
};
const USER_CREATED = {
  type: 'object',
  required: ['type', 'user'],
  properties: { type: { const: 'user.created' }, user: { type: 'object', required: ['email'], properties: { email: { type: 'string' }, name: { type: ['string', 'null'] } } } },
  examples: [{ type: 'user.created', user: { email: 'ada@example.com', name: 'Ada' } }, { type: 'user.created', user: { email: 'bob@example.com', name: null } }],
};

/** Runs a command in `cwd` to completion; rejects with its output when it fails. */
function run(command: string, args: string[], cwd: string, timeoutMs = 240_000): Promise<string> {
  return new Promise((resolve, reject) => {
    // Without NODE_TEST_CONTEXT: the generated project's `node --test` must run as its own test run, not as a child of this one.
    const { NODE_TEST_CONTEXT: _inherited, ...env } = process.env;
    const child = spawn(command, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...env, npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' } });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c));
    child.stderr.on('data', (c: Buffer) => (output += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(output);
      else reject(new Error(`${command} ${args.join(' ')} in ${cwd} exited ${code}:\n${output.slice(-4000)}`));
    });
  });
}

const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

describe('hookrelay scaffold receiver', () => {
  let relay: TestRelay;
  const temp = tempDir();
  const connection = () => ['--server', relay.url, '--token', relay.adminToken];
  before(async () => {
    relay = await startRelay();
    await relay.svix.eventType.create({ name: 'invoice.paid', description: 'An invoice was paid in full.', schemas: { '1': INVOICE_PAID } });
    await relay.svix.eventType.create({ name: 'user.created', description: 'A user signed up.', schemas: { '1': USER_CREATED } });
    await relay.svix.eventType.create({ name: 'legacy.ping', description: 'No schema.' });
  });
  after(async () => {
    await relay.close();
    temp.remove();
  });

  it('writes a typed handler per event type, types from the schemas and samples from the examples', async () => {
    const dir = join(temp.dir, 'shape');
    const result = await runCli(['scaffold', 'receiver', '--framework', 'express', '--out', dir, ...connection()]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /3 event type\(s\) \(invoice\.paid, legacy\.ping, user\.created\), 3 sample payload\(s\)/);
    const types = readFileSync(join(dir, 'src/types/invoice-paid.ts'), 'utf8');
    assert.match(types, /export interface InvoicePaid \{/);
    assert.match(types, /currency: "EUR" \| "USD";/);
    assert.match(types, /amount: number;/);
    assert.match(readFileSync(join(dir, 'src/types/user-created.ts'), 'utf8'), /name\?: string \| null;/);
    assert.match(readFileSync(join(dir, 'src/handlers/invoice-paid.ts'), 'utf8'), /export default async function handleInvoicePaid\(event: InvoicePaid, context: WebhookContext\)/);
    assert.match(readFileSync(join(dir, 'src/types/legacy-ping.ts'), 'utf8'), /export type LegacyPing = unknown;/);
    assert.deepEqual(JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).dependencies, { express: '^5.1.0', standardwebhooks: '^1.0.0' });

    // --app: only the event types the application's endpoints subscribe to.
    const app = await relay.svix.application.create({ name: 'billing', uid: 'billing' });
    await relay.svix.endpoint.create(app.id, { url: 'https://billing.example.com/hooks', channels: null, eventTypes: ['invoice.paid'] } as never);
    const narrowed = await runCli(['scaffold', 'receiver', '--framework', 'lambda', '--app', 'billing', '--out', join(temp.dir, 'narrow'), ...connection()]);
    assert.equal(narrowed.code, 0, narrowed.stderr);
    assert.ok(existsSync(join(temp.dir, 'narrow/src/handlers/invoice-paid.ts')));
    assert.ok(!existsSync(join(temp.dir, 'narrow/src/handlers/user-created.ts')));

    // --update after a new event type: generated files rewritten, new handler added, edited handler kept.
    const handlerFile = join(dir, 'src/handlers/invoice-paid.ts');
    writeFileSync(handlerFile, readFileSync(handlerFile, 'utf8').replace('context.log(', '/* edited */ context.log('));
    await relay.svix.eventType.create({ name: 'order.shipped', description: 'Shipped.', schemas: { '1': { type: 'object', properties: { carrier: { type: 'string' } } } } });
    const updated = await runCli(['scaffold', 'receiver', '--framework', 'express', '--out', dir, '--update', ...connection()]);
    assert.equal(updated.code, 0, updated.stderr);
    assert.match(readFileSync(handlerFile, 'utf8'), /\/\* edited \*\//);
    assert.match(readFileSync(join(dir, 'src/events.ts'), 'utf8'), /'order\.shipped'/);
    assert.ok(existsSync(join(dir, 'src/handlers/order-shipped.ts')));
    await relay.api('DELETE', '/api/v1/event-type/order.shipped?expunge=true');

    // Refusals: no framework, an unknown one, a directory that is not empty.
    assert.equal((await runCli(['scaffold', 'receiver', ...connection()])).code, 2);
    assert.match((await runCli(['scaffold', 'receiver', '--framework', 'koa', ...connection()])).stderr, /--framework must be one of express, fastify, lambda/);
    assert.match((await runCli(['scaffold', 'receiver', '--framework', 'express', '--out', dir, ...connection()])).stderr, /is not empty/);
    assert.match((await runCli(['scaffold', 'receiver', '--framework', 'express', '--out', join(temp.dir, 'nothing'), '--update', ...connection()])).stderr, /holds no generated receiver/);
  });

  for (const framework of ['express', 'fastify', 'lambda'] as const) {
    it(`generates a ${framework} project that installs and passes its own tests`, { timeout: 600_000 }, async () => {
      const dir = join(temp.dir, framework);
      const generated = await runCli(['scaffold', 'receiver', '--framework', framework, '--out', dir, ...connection()]);
      assert.equal(generated.code, 0, generated.stderr);
      await run(npm, ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'], dir);
      const output = await run(npm, ['test'], dir);
      // Node 20 reports in TAP when not on a terminal (`# pass 2`), Node 22+ with the spec reporter (`ℹ pass 2`).
      assert.match(output, /^(?:#|ℹ) pass 2\b/m, output);
      assert.match(output, /^(?:#|ℹ) fail 0\b/m, output);
    });
  }

  it('receives a real delivery from hookrelay: verified, processed once, answered 2xx', { timeout: 120_000 }, async () => {
    const dir = join(temp.dir, 'express');
    assert.ok(existsSync(join(dir, 'dist/src/server.js')), 'the express project was built by the test before');
    const app = await relay.svix.application.create({ name: 'scaffolded receiver' });
    // Create the endpoint first to learn its secret, then start the receiver with it and point the endpoint at it.
    const endpoint = await relay.svix.endpoint.create(app.id, { url: 'http://127.0.0.1:9/not-yet', disabled: true });
    const { key } = await relay.svix.endpoint.getSecret(app.id, endpoint.id);
    let output = '';
    const server: ChildProcess = spawn(process.execPath, ['dist/src/server.js'], { cwd: dir, env: { PATH: process.env.PATH, WEBHOOK_SECRET: key, PORT: '0' }, stdio: ['ignore', 'pipe', 'pipe'] });
    server.stdout!.on('data', (c: Buffer) => (output += c));
    server.stderr!.on('data', (c: Buffer) => (output += c));
    try {
      const port = (await waitUntil('the receiver to listen', () => /listening on port (\d+)/.exec(output)?.[1], 20_000))!;
      await relay.svix.endpoint.patch(app.id, endpoint.id, { url: `http://127.0.0.1:${port}/webhooks`, disabled: false });
      const msg = await relay.svix.message.create(app.id, { eventType: 'invoice.paid', payload: INVOICE_PAID.examples[0] });
      await waitUntil('the receiver to process the delivery', () => output.includes(`processed invoice.paid ${msg.id}`), 20_000);
      // The receiver logs before it answers, and hookrelay records the attempt once the answer is in.
      await waitUntil('the attempt to be recorded', async () => (await relay.svix.messageAttempt.listByMsg(app.id, msg.id)).data.length > 0);
      const attempts = await relay.svix.messageAttempt.listByMsg(app.id, msg.id);
      assert.equal(attempts.data.length, 1);
      assert.equal(attempts.data[0].responseStatusCode, 204);
      // A resend carries the same webhook-id: acknowledged, not processed again.
      await relay.svix.messageAttempt.resend(app.id, msg.id, endpoint.id);
      await waitUntil('the resend', async () => (await relay.svix.messageAttempt.listByMsg(app.id, msg.id)).data.length === 2);
      const again = await relay.svix.messageAttempt.listByMsg(app.id, msg.id);
      assert.deepEqual(again.data.map((a) => a.responseStatusCode).sort(), [200, 204]);
      assert.equal(output.split(`processed invoice.paid ${msg.id}`).length - 1, 1, output);
    } finally {
      server.kill();
    }
  });
});
