import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { messageInRaw, Webhook } from 'svix';
import ts from 'typescript';
import { headersOf, rejectsWith } from '../api/support.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { startRelay, type TestRelay } from '../helpers/relay.js';
import { SVIX_UNSERVED } from '../../src/api/routes/svix-unserved.js';

const here = dirname(fileURLToPath(import.meta.url));

describe('svix 2.x SDK against hookrelay', () => {
  let relay: TestRelay;
  let receiver: Receiver;
  before(async () => {
    relay = await startRelay();
    receiver = await startReceiver();
  });
  after(async () => {
    await receiver.close();
    await relay.close();
  });

  it("passes the SDK's own end-to-end test (src/KitchenSink.test.ts of the svix package, run unchanged)", async () => {
    // The package ships its test as TypeScript importing the SDK as "."; it is compiled as is, with "." pointed at the package.
    const source = readFileSync(join(dirname(createRequire(import.meta.url).resolve('svix/package.json')), 'src', 'KitchenSink.test.ts'), 'utf8');
    const compiled = ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText;
    assert.match(compiled, /from "\."/, 'the test imports the SDK as "."');
    const dir = join(here, 'kitchen-sink');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, 'KitchenSink.test.mjs');
    writeFileSync(file, compiled.replace(/from "\."/g, 'from "svix"'));
    try {
      // A fresh test run of its own: without NODE_TEST_CONTEXT, which would make it report to this runner instead of stdout.
      const { NODE_TEST_CONTEXT: _parent, ...env } = process.env;
      // Asynchronously: the relay it talks to runs in this process.
      const run = await runNode(['--test', '--test-reporter=tap', file], { ...env, SVIX_TOKEN: relay.adminToken, SVIX_SERVER_URL: relay.url });
      assert.equal(run.status, 0, run.stdout + run.stderr);
      assert.match(run.stdout, /# fail 0/);
      assert.match(run.stdout, /# skipped 0/, 'the test ran (it skips itself without SVIX_TOKEN)');
      assert.match(run.stdout, /ok \d+ - endpoint crud/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('takes eventTypes or filterTypes on create, update and patch, and returns both', async () => {
    const app = await relay.svix.application.create({ name: 'filters' });
    const ep = await relay.svix.endpoint.create(app.id, { url: receiver.url, eventTypes: ['a.b'] });
    assert.deepEqual(ep.eventTypes, ['a.b']);
    const raw = (await relay.api('GET', `/api/v1/app/${app.id}/endpoint/${ep.id}`)).body;
    assert.deepEqual([raw.eventTypes, raw.filterTypes], [['a.b'], ['a.b']]);
    assert.deepEqual((await relay.svix.endpoint.upsert(app.id, ep.id, { url: receiver.url, eventTypes: ['c.d'] })).eventTypes, ['c.d']);
    assert.deepEqual((await relay.svix1.endpoint.patch(app.id, ep.id, { filterTypes: ['e.f'] })).filterTypes, ['e.f']);
    assert.deepEqual((await relay.svix.endpoint.patch(app.id, ep.id, { eventTypes: null })).eventTypes, null);
    const both = await relay.api('POST', `/api/v1/app/${app.id}/endpoint`, { url: receiver.url, eventTypes: ['x'], filterTypes: ['y'] });
    assert.equal(both.status, 422);
    assert.deepEqual(both.body.detail[0].loc, ['body', 'eventTypes']);
  });

  it('reads "metadata": null as {} on applications and endpoints', async () => {
    const app = await relay.api('POST', '/api/v1/app', { name: 'null-meta', metadata: null });
    assert.equal(app.status, 201);
    assert.deepEqual(app.body.metadata, {});
    const ep = await relay.api('POST', `/api/v1/app/${app.body.id}/endpoint`, { url: receiver.url, metadata: null });
    assert.equal(ep.status, 201);
    assert.deepEqual(ep.body.metadata, {});
    await relay.api('PATCH', `/api/v1/app/${app.body.id}`, { metadata: { k: 'v' } });
    assert.deepEqual((await relay.api('PATCH', `/api/v1/app/${app.body.id}`, { metadata: null })).body.metadata, {});
  });

  it("accepts Svix's channel names (project:123, a+b) on endpoints and messages, and delivers by them", async () => {
    const app = await relay.svix.application.create({ name: 'channels' });
    const ep = await relay.svix.endpoint.create(app.id, { url: receiver.url, channels: ['project:123', 'a+b'] });
    assert.deepEqual(ep.channels?.sort(), ['a+b', 'project:123']);
    const before = receiver.received.length;
    const msg = await relay.svix.message.create(app.id, { eventType: 'ch.event', payload: { n: 1 }, channels: ['a+b'] });
    const [delivered] = (await receiver.waitFor(before + 1)).slice(before);
    assert.equal(delivered.headers['webhook-id'], msg.id);
    assert.deepEqual((await relay.svix.message.list(app.id, { channel: 'a+b' })).data.map((m) => m.id), [msg.id]);
    await rejectsWith(relay.svix.endpoint.create(app.id, { url: receiver.url, channels: ['no spaces'] }), 422);
  });

  it('creates the application with the message (MessageIn.application), once, and only with a matching uid', async () => {
    const msg = await relay.svix.message.create('inline-app', { eventType: 'inline.event', payload: { a: 1 }, application: { name: 'Inline', uid: 'inline-app' } });
    const app = await relay.svix.application.get('inline-app');
    assert.equal(app.name, 'Inline');
    await relay.svix.message.create('inline-app', { eventType: 'inline.event', payload: { a: 2 }, application: { name: 'Ignored', uid: 'inline-app' } });
    assert.equal((await relay.svix.application.get('inline-app')).name, 'Inline', 'an existing app is used as it is');
    assert.equal((await relay.svix.message.list(app.id)).data.length, 2);
    assert.ok(msg.id.startsWith('msg_'));
    const mismatch = await rejectsWith(relay.svix.message.create('other-app', { eventType: 'x', payload: {}, application: { name: 'x', uid: 'not-the-path' } }), 422);
    assert.deepEqual(mismatch.detail[0].loc, ['body', 'application', 'uid']);
    await rejectsWith(relay.svix.message.create('no-such-app', { eventType: 'x', payload: {} }), 404);
  });

  it('schedules the first attempt at deliverAt and refuses a time more than 24 hours ahead', async () => {
    const app = await relay.svix.application.create({ name: 'scheduled' });
    const ep = await relay.svix.endpoint.create(app.id, { url: receiver.url });
    const at = new Date(Date.now() + 3_600_000);
    const msg = await relay.svix.message.create(app.id, { eventType: 'later.event', payload: { a: 1 }, deliverAt: at });
    const [destination] = (await relay.svix.messageAttempt.listAttemptedDestinations(app.id, msg.id)).data;
    assert.equal(destination.id, ep.id);
    assert.equal(destination.status, 1, 'pending');
    assert.equal(destination.nextAttempt?.getTime(), at.getTime());
    const far = await rejectsWith(relay.svix.message.create(app.id, { eventType: 'later.event', payload: {}, deliverAt: new Date(Date.now() + 25 * 3_600_000) }), 422);
    assert.deepEqual(far.detail[0].loc, ['body', 'deliverAt']);
  });

  it('delivers transformationsParams.rawPayload (messageInRaw) byte for byte, with its content type', async () => {
    const app = await relay.svix.application.create({ name: 'raw' });
    const ep = await relay.svix.endpoint.create(app.id, { url: receiver.url });
    const secret = (await relay.svix.endpoint.getSecret(app.id, ep.id)).key;
    for (const [body, type, expected] of [
      ['{"b": 2,  "a":1.0}', undefined, 'application/json'],
      ['<order id="7">naïve</order>', 'application/xml', 'application/xml'],
      ['plain words', undefined, 'text/plain; charset=utf-8'],
    ] as const) {
      const before = receiver.received.length;
      const msg = await relay.svix.message.create(app.id, messageInRaw('raw.event', body, type));
      const [delivered] = (await receiver.waitFor(before + 1)).slice(before);
      assert.equal(delivered.body.toString('utf8'), body);
      assert.equal(delivered.headers['content-type'], expected);
      assert.equal(delivered.headers['webhook-id'], msg.id);
      new Webhook(secret).verify(delivered.body, headersOf(delivered));
    }
    const bad = await relay.api('POST', `/api/v1/app/${app.id}/msg`, { eventType: 'raw.event', payload: {}, transformationsParams: { rawPayload: 'not json', headers: { 'content-type': 'application/json' } } });
    assert.equal(bad.status, 422);
  });

  it('signs with svix-* and webhook-* headers carrying the same values; --signature-headers picks one set', async () => {
    const app = await relay.svix.application.create({ name: 'headers' });
    const ep = await relay.svix.endpoint.create(app.id, { url: receiver.url });
    const secret = (await relay.svix.endpoint.getSecret(app.id, ep.id)).key;
    const before = receiver.received.length;
    await relay.svix.message.create(app.id, { eventType: 'h.event', payload: { h: 1 } });
    const [delivered] = (await receiver.waitFor(before + 1)).slice(before);
    for (const name of ['id', 'timestamp', 'signature']) assert.equal(delivered.headers[`svix-${name}`], delivered.headers[`webhook-${name}`]);
    // A receiver that reads only one set verifies.
    const only = (prefix: string) => Object.fromEntries(['id', 'timestamp', 'signature'].map((n) => [`${prefix}-${n}`, String(delivered.headers[`${prefix}-${n}`])]));
    new Webhook(secret).verify(delivered.body, only('svix'));
    new Webhook(secret).verify(delivered.body, only('webhook'));

    const svixOnly = await startRelay({ signatureHeaders: 'svix' });
    try {
      const app2 = await svixOnly.svix.application.create({ name: 'svix only' });
      await svixOnly.svix.endpoint.create(app2.id, { url: receiver.url });
      const n = receiver.received.length;
      await svixOnly.svix.message.create(app2.id, { eventType: 'h.event', payload: { h: 2 } });
      const [one] = (await receiver.waitFor(n + 1)).slice(n);
      assert.ok(one.headers['svix-signature']);
      assert.equal(one.headers['webhook-signature'], undefined);
    } finally {
      await svixOnly.close();
    }
  });

  it('upserts applications and endpoints with PUT', async () => {
    const app = await relay.svix.application.upsert('upsert-app', { name: 'Made by PUT', uid: 'upsert-app' });
    assert.equal((await relay.svix.application.get('upsert-app')).id, app.id);
    assert.equal((await relay.svix.application.upsert('upsert-app', { name: 'Renamed', uid: 'upsert-app' })).id, app.id);
    const ep = await relay.svix.endpoint.upsert(app.id, 'upsert-ep', { url: receiver.url, uid: 'upsert-ep' });
    assert.equal((await relay.svix.endpoint.get(app.id, 'upsert-ep')).id, ep.id);
    assert.equal((await relay.svix.endpoint.upsert(app.id, 'upsert-ep', { url: receiver.url + '?v=2', uid: 'upsert-ep' })).id, ep.id);

    // Without a uid in the body the path's id becomes the uid: the same PUT again updates what the first one created.
    const bare = await relay.svix.application.upsert('upsert-bare', { name: 'No uid in the body' });
    assert.equal(bare.uid, 'upsert-bare');
    assert.equal((await relay.svix.application.upsert('upsert-bare', { name: 'Again' })).id, bare.id);
    const bareEp = await relay.svix.endpoint.upsert(bare.id, 'bare-ep', { url: receiver.url });
    assert.equal(bareEp.uid, 'bare-ep');
    assert.equal((await relay.svix.endpoint.upsert(bare.id, 'bare-ep', { url: receiver.url + '?v=2' })).id, bareEp.id);
    assert.equal((await relay.svix.endpoint.list(bare.id)).data.length, 1);
    await rejectsWith(relay.svix.application.upsert('app_doesnotexist0000000000', { name: 'x' }), 404);
  });

  it('serves endpoint stats, send-example, replay-missing and attempt content expunge', async () => {
    await relay.svix.eventType.create({ name: 'example.event', description: 'e', schemas: { '1': { type: 'object', examples: [{ first: true }, { second: true }] } } }).catch(() => undefined);
    const app = await relay.svix.application.create({ name: 'tasks' });
    const old = await relay.svix.message.create(app.id, { eventType: 'example.event', payload: { before: 'the endpoint' } });
    const ep = await relay.svix.endpoint.create(app.id, { url: receiver.url, eventTypes: ['example.event'] });

    let n = receiver.received.length;
    const example = await relay.svix.endpoint.sendExample(app.id, ep.id, { eventType: 'example.event', exampleIndex: 1 });
    let [delivered] = (await receiver.waitFor(n + 1)).slice(n);
    assert.equal(delivered.headers['webhook-id'], example.id);
    assert.deepEqual(JSON.parse(delivered.body.toString()), { second: true });

    n = receiver.received.length;
    const replay = await relay.svix.endpoint.replayMissing(app.id, ep.id, { since: new Date(Date.now() - 3_600_000) });
    assert.equal(replay.status, 'finished');
    [delivered] = (await receiver.waitFor(n + 1)).slice(n);
    assert.equal(delivered.headers['webhook-id'], old.id, 'the message sent before the endpoint existed');
    const again = await relay.api('POST', `/api/v1/app/${app.id}/endpoint/${ep.id}/replay-missing`, { since: new Date(Date.now() - 3_600_000).toISOString() });
    assert.equal(again.body.replayed, 0, 'nothing is missing any more');

    const stats = await waitForStats(relay, app.id, ep.id, 2);
    assert.deepEqual(stats, { success: 2, pending: 0, sending: 0, fail: 0, canceled: 0 });

    const [attempt] = (await relay.svix.messageAttempt.listByMsg(app.id, old.id)).data;
    assert.equal(attempt.response, 'ok');
    await relay.svix.messageAttempt.expungeContent(app.id, old.id, attempt.id);
    assert.equal((await relay.svix.messageAttempt.get(app.id, old.id, attempt.id)).response, '');
    await rejectsWith(relay.svix.messageAttempt.expungeContent(app.id, old.id, 'atmpt_unknown'), 404);
  });

  it('answers the Svix routes it does not serve with 501 not_implemented naming the feature', async () => {
    const app = await relay.svix.application.create({ name: 'unserved' });
    const ep = await relay.svix.endpoint.create(app.id, { url: receiver.url });
    const { status, body } = await relay.api('PATCH', `/api/v1/app/${app.id}/destination/dest_x/transformation`, { enabled: true });
    assert.equal(status, 501);
    assert.equal(body.code, 'not_implemented');
    assert.match(body.detail, /Transformation/);
    const unauthenticated = await relay.api('GET', `/api/v1/app/${app.id}/destination/dest_x/transformation`, undefined, { token: null });
    assert.equal(unauthenticated.status, 401, 'authentication comes first');
    for (const [method, path, feature] of SVIX_UNSERVED) {
      const url = path.replace(/\{app_id\}/g, app.id).replace(/\{endpoint_id\}/g, ep.id).replace(/\{[a-z_]+\}/g, 'x');
      const answer = await relay.api(method, url, method === 'GET' || method === 'DELETE' ? undefined : {});
      assert.equal(answer.status, 501, `${method} ${path}`);
      assert.ok(answer.body.detail.includes(feature), `${method} ${path}: ${answer.body.detail}`);
    }
  });

  it('docs/api.md lists every Svix route with what hookrelay does', () => {
    const doc = readFileSync(join(here, '..', '..', '..', 'docs', 'api.md'), 'utf8');
    const rows = new Map([...doc.matchAll(/^\| (GET|POST|PUT|PATCH|DELETE) \| `([^`]+)` \| [^|]+ \| (yes|501) \|$/gm)].map((m) => [`${m[1]} ${m[2]}`, m[3]]));
    for (const [method, path] of SVIX_UNSERVED) assert.equal(rows.get(`${method} ${path}`), '501', `${method} ${path}`);
    const unserved = new Set(SVIX_UNSERVED.map(([m, p]) => `${m} ${p}`));
    for (const [route, status] of rows) if (status === 'yes') assert.ok(!unserved.has(route), route);
    assert.ok([...rows.values()].filter((s) => s === 'yes').length >= 50);
  });
});

function runNode(args: string[], env: NodeJS.ProcessEnv): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

async function waitForStats(relay: TestRelay, appId: string, endpointId: string, success: number) {
  for (let i = 0; i < 200; i++) {
    const stats = await relay.svix.endpoint.getStats(appId, endpointId);
    if (stats.success >= success) return stats;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return relay.svix.endpoint.getStats(appId, endpointId);
}
