import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { prettyLine } from '../../src/log.js';
import { startReceiver } from '../helpers/receiver.js';
import { waitUntil } from '../helpers/wait.js';
import { ADMIN_TOKEN, CLI, startChild, tempDir, type Child } from '../process/child.js';

const PAYLOAD_MARK = 'distinctive-payload-logs-4Rk2';
const ENDPOINT_SECRET = 'whsec_' + Buffer.from('endpoint-secret-for-the-log-test').toString('base64');
const GITHUB_SECRET = 'github-secret-for-the-log-test';

describe('logs', () => {
  it('one line per attempt (debug on success, warn on failure), circuit and disable warnings with the last error, an opt-in request log, no secrets or payloads', async (t) => {
    const tmp = tempDir();
    const ok = await startReceiver(() => ({ status: 204 }));
    const failing = await startReceiver(() => ({ status: 503, body: 'overloaded' }));
    const gone = await startReceiver(() => ({ status: 410 }));
    let child: Child | null = null;
    t.after(async () => {
      await child?.stop();
      await Promise.all([ok.close(), failing.close(), gone.close()]);
      tmp.remove();
    });
    child = await startChild({ db: join(tmp.dir, 'logs.db'), flags: ['--log-level', 'debug', '--request-log', 'on', '--circuit-threshold', '2'] });
    const c = child;
    const app = await c.svix.application.create({ name: 'logs' });
    const good = await c.svix.endpoint.create(app.id, { url: `${ok.url}/ok`, secret: ENDPOINT_SECRET });
    const bad = await c.svix.endpoint.create(app.id, { url: `${failing.url}/bad` });
    const dead = await c.svix.endpoint.create(app.id, { url: `${gone.url}/gone` });
    const message = await c.svix.message.create(app.id, { eventType: 'invoice.paid', payload: { mark: PAYLOAD_MARK } });
    await c.svix.message.create(app.id, { eventType: 'invoice.paid', payload: { mark: PAYLOAD_MARK } });

    const succeeded = await c.waitForLog((l) => l.msg === 'attempt succeeded' && l.endpointId === good.id);
    assert.equal(succeeded.level, 20, 'a successful attempt is logged at debug');
    assert.equal(succeeded.appId, app.id);
    assert.equal(succeeded.destination, 'http');
    assert.equal(succeeded.status, 204);
    assert.equal(typeof succeeded.durationMs, 'number');
    assert.match(succeeded.messageId, /^msg_/);
    assert.match(succeeded.attemptId, /^atmpt_/);
    assert.match(succeeded.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, 'ISO timestamps');

    const failed = await c.waitForLog((l) => l.msg === 'attempt failed' && l.endpointId === bad.id && l.messageId === message.id);
    assert.equal(failed.level, 40, 'a failed attempt is logged at warn');
    assert.equal(failed.status, 503);
    assert.equal(failed.error, 'HTTP 503');
    assert.equal(failed.next, 'retry');
    assert.equal(failed.retry, 0);

    const opened = await c.waitForLog((l) => l.msg.startsWith('circuit opened') && l.endpointId === bad.id);
    assert.equal(opened.level, 40);
    assert.equal(opened.lastStatus, 503);
    assert.equal(opened.lastError, 'HTTP 503');

    const disabled = await c.waitForLog((l) => l.msg === 'endpoint disabled' && l.endpointId === dead.id);
    assert.equal(disabled.level, 40);
    assert.match(disabled.reason, /410 Gone/);
    assert.equal(disabled.lastStatus, 410);

    const requests = c.logs().filter((l) => l.msg === 'request');
    const accept = requests.find((l) => l.method === 'POST' && l.route === '/api/v1/app/:app_id/msg');
    assert.ok(accept, `no request line for the accept among ${JSON.stringify(requests)}`);
    assert.equal(accept.status, 202);
    assert.equal(accept.caller, 'admin');
    assert.equal(typeof accept.durationMs, 'number');

    // An ingest URL carries its source's token: the request log names the route pattern only.
    const source = await c.svix.ingest.source.create({ name: 'gh', type: 'github', config: { secret: GITHUB_SECRET } });
    const token = new URL(source.ingestUrl!).pathname.split('/').pop()!;
    assert.equal((await fetch(source.ingestUrl!, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).status, 401);
    await c.waitForLog((l) => l.msg === 'request' && l.method === 'POST' && l.status === 401 && String(l.route).startsWith('/ingest/'));

    const all = c.stdoutLines.join('\n');
    for (const secret of [PAYLOAD_MARK, ENDPOINT_SECRET, ADMIN_TOKEN, GITHUB_SECRET, token]) assert.ok(!all.includes(secret), `the logs contain ${secret}`);
  });

  it('--log-format pretty writes one readable line per record', async (t) => {
    const line = prettyLine(JSON.stringify({ level: 40, time: '2026-12-06T05:00:00.000Z', service: 'hookrelay', component: 'dispatcher', msg: 'attempt failed', endpointId: 'ep_1', status: 503, error: 'HTTP 503' }), false);
    assert.equal(line, '2026-12-06T05:00:00.000Z WARN  dispatcher: attempt failed endpointId=ep_1 status=503 error="HTTP 503"\n');

    const tmp = tempDir();
    t.after(() => tmp.remove());
    const proc = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--db', join(tmp.dir, 'pretty.db'), '--log-format', 'pretty'], {
      env: { ...process.env, HOOKRELAY_ADMIN_TOKEN: ADMIN_TOKEN },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    proc.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    const exited = new Promise<number | null>((resolve) => proc.on('close', resolve));
    t.after(() => proc.kill('SIGKILL'));
    await waitUntil('the pretty "serving" line', () => /INFO {2}hookrelay is serving url=http:\/\/127\.0\.0\.1:\d+ /.test(stdout));
    assert.ok(!stdout.includes('{"level"'), `JSON in pretty output: ${stdout}`);
    proc.kill('SIGTERM');
    assert.equal(await exited, 0);
  });

  it('keeps serving and delivering when its stdout and stderr are closed (EPIPE), and still stops cleanly', async (t) => {
    const tmp = tempDir();
    const receiver = await startReceiver(() => ({ status: 200 }));
    t.after(async () => {
      await receiver.close();
      tmp.remove();
    });
    const proc = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--db', join(tmp.dir, 'epipe.db'), '--log-level', 'debug', '--request-log', 'on'], {
      env: { ...process.env, HOOKRELAY_ADMIN_TOKEN: ADMIN_TOKEN, HOOKRELAY_ALLOW_NETWORKS: '127.0.0.0/8' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
    t.after(() => proc.kill('SIGKILL'));
    let stdout = '';
    proc.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    const url = (await waitUntil('the serving line', () => /"url":"(http:[^"]+)"/.exec(stdout)))![1];
    // Whoever read the logs went away: every later write gets EPIPE.
    proc.stdout.destroy();
    proc.stderr.destroy();

    const headers = { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' };
    const call = async (method: string, path: string, body?: unknown) => {
      const response = await fetch(url + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
      return { status: response.status, body: (response.status === 204 ? null : await response.json()) as any };
    };
    const app = (await call('POST', '/api/v1/app', { name: 'epipe' })).body;
    await call('POST', `/api/v1/app/${app.id}/endpoint`, { url: `${receiver.url}/hook` });
    for (let i = 0; i < 20; i++) assert.equal((await call('POST', `/api/v1/app/${app.id}/msg`, { eventType: 'e', payload: { i } })).status, 202);
    await receiver.waitFor(20);
    assert.equal((await fetch(`${url}/healthz`)).status, 200);
    assert.equal(proc.exitCode, null, 'the server is still running');

    proc.kill('SIGTERM');
    assert.deepEqual(await exited, { code: 0, signal: null });
  });

  it('keeps serving and delivering when every log write fails with ENOSPC (stdout on /dev/full)', { skip: existsSync('/dev/full') ? false : 'no /dev/full here' }, async (t) => {
    const tmp = tempDir();
    const receiver = await startReceiver(() => ({ status: 200 }));
    const full = openSync('/dev/full', 'w');
    t.after(async () => {
      closeSync(full);
      await receiver.close();
      tmp.remove();
    });
    const port = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, '127.0.0.1', () => {
        const { port } = probe.address() as { port: number };
        probe.close(() => resolve(port));
      });
    });
    const proc = spawn(process.execPath, [CLI, 'serve', '--port', String(port), '--db', join(tmp.dir, 'full.db'), '--log-level', 'debug', '--request-log', 'on', '--log-format', 'pretty'], {
      env: { ...process.env, HOOKRELAY_ADMIN_TOKEN: ADMIN_TOKEN, HOOKRELAY_ALLOW_NETWORKS: '127.0.0.0/8' },
      stdio: ['ignore', full, 'pipe'],
    });
    let stderr = '';
    proc.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
    t.after(() => proc.kill('SIGKILL'));
    const url = `http://127.0.0.1:${port}`;
    await waitUntil('the server to answer', async () => {
      if (proc.exitCode !== null) throw new Error(`hookrelay exited with ${proc.exitCode}: ${stderr}`);
      return (await fetch(`${url}/healthz`).catch(() => null))?.ok ?? false;
    });
    const headers = { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' };
    const app = (await (await fetch(`${url}/api/v1/app`, { method: 'POST', headers, body: JSON.stringify({ name: 'full' }) })).json()) as { id: string };
    await fetch(`${url}/api/v1/app/${app.id}/endpoint`, { method: 'POST', headers, body: JSON.stringify({ url: `${receiver.url}/hook` }) });
    for (let i = 0; i < 10; i++) assert.equal((await fetch(`${url}/api/v1/app/${app.id}/msg`, { method: 'POST', headers, body: JSON.stringify({ eventType: 'e', payload: { i } }) })).status, 202);
    await receiver.waitFor(10);
    assert.equal(proc.exitCode, null, `the server stopped: ${stderr}`);
    proc.kill('SIGTERM');
    assert.deepEqual(await exited, { code: 0, signal: null });
  });
});
