import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { Webhook } from 'standardwebhooks';
import { startReceiver, type Answer, type Receiver } from '../helpers/receiver.js';
import { startRelay, type TestRelay } from '../helpers/relay.js';
import { waitUntil } from '../helpers/wait.js';
import { CLI, runCli } from '../process/child.js';

/** A `hookrelay listen` child process, its output followed as it comes. */
interface Listener {
  proc: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}

function listen(args: string[], env: Record<string, string>): Listener {
  const clean: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('HOOKRELAY_')) clean[k] = v;
  const proc = spawn(process.execPath, [CLI, 'listen', ...args], { env: { ...clean, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  proc.stdout!.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  proc.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const exited = new Promise<number | null>((resolve) => proc.on('close', (code) => resolve(code)));
  return { proc, stdout: () => stdout, stderr: () => stderr, exited };
}

describe('hookrelay listen (CLI, end to end)', () => {
  let relay: TestRelay;
  let receiver: Receiver;
  /** What the local receiver answers next; a test changes it. */
  let answer: Answer = { status: 200, body: 'local ok' };
  let appId: string;
  let appKey: string;
  let otherKey: string;
  const running: Listener[] = [];

  before(async () => {
    relay = await startRelay();
    receiver = await startReceiver(() => answer);
    appId = (await relay.api('POST', '/api/v1/app', { name: 'Listen', uid: 'listen-app' })).body.id;
    appKey = (await relay.api('POST', `/api/v1/app/${appId}/api-key`, { name: 'dev' })).body.key;
    const other = (await relay.api('POST', '/api/v1/app', { name: 'Other' })).body.id;
    otherKey = (await relay.api('POST', `/api/v1/app/${other}/api-key`, { name: 'other' })).body.key;
  });
  after(async () => {
    for (const l of running) l.proc.kill('SIGKILL');
    await receiver.close();
    await relay.close();
  });

  const start = async (session: string, extra: string[] = []) => {
    const listener = listen(['--app', 'listen-app', '--forward-to', `${new URL(receiver.url).origin}/hooks?from=listen`, '--session', session, ...extra], { HOOKRELAY_URL: relay.url, HOOKRELAY_ADMIN_TOKEN: appKey });
    running.push(listener);
    await waitUntil('the listener to be ready', () => /Signing secret: (whsec_\S+)/.exec(listener.stderr()));
    return { listener, secret: /Signing secret: (whsec_\S+)/.exec(listener.stderr())![1] };
  };
  const send = async (eventId: string, payload: unknown) => (await relay.api('POST', `/api/v1/app/${appId}/msg`, { eventType: 'order.paid', eventId, payload })).body;
  const attemptsOf = async (endpoint: string) => (await relay.api('GET', `/api/v1/app/${appId}/attempt/endpoint/${endpoint}`)).body.data as { msgId: string; responseStatusCode: number; status: number; response: string }[];

  it('forwards signed deliveries unchanged, records the local answer as the attempt, retries failures and a listener that went away', async () => {
    const { listener, secret } = await start('e2e');
    const endpoint = (await relay.api('GET', `/api/v1/app/${appId}/endpoint/listen-e2e`)).body;
    assert.equal(endpoint.url, 'listen://e2e');

    // Delivered through the CLI: path and query of --forward-to, the exact bytes, a signature the app's receiver checks.
    const sent = await send('first', { order: 1, note: 'héllo' });
    const [request] = await receiver.waitFor(1);
    assert.equal(request.path, '/hooks?from=listen');
    assert.deepEqual(JSON.parse(request.body.toString('utf8')), { order: 1, note: 'héllo' });
    const headers = Object.fromEntries(Object.entries(request.headers).map(([k, v]) => [k, String(v)]));
    assert.equal(headers['webhook-id'], sent.id);
    assert.doesNotThrow(() => new Webhook(secret).verify(request.body, headers));
    assert.throws(() => new Webhook(Buffer.from('not the secret').toString('base64')).verify(request.body, headers));
    const first = await waitUntil('the first attempt', async () => (await attemptsOf(endpoint.id)).find((a) => a.msgId === sent.id));
    assert.equal(first!.responseStatusCode, 200);
    assert.equal(first!.status, 0, 'succeeded');
    assert.equal(first!.response, 'local ok');
    assert.match(listener.stdout(), new RegExp(`order\\.paid  ${sent.id}  → 200`));

    // The local server fails: a failed attempt with its status and answer, retried, then delivered.
    answer = { status: 500, body: 'local boom' };
    const failing = await send('second', { order: 2 });
    await receiver.waitFor(2);
    const failed = await waitUntil('the failed attempt', async () => (await attemptsOf(endpoint.id)).find((a) => a.msgId === failing.id));
    assert.equal(failed!.responseStatusCode, 500);
    assert.equal(failed!.response, 'local boom');
    answer = { status: 204 };
    await waitUntil('the retry to succeed', async () => (await attemptsOf(endpoint.id)).some((a) => a.msgId === failing.id && a.responseStatusCode === 204));

    // The CLI goes away without a word: the delivery fails (no listener) and is retried once it is back.
    listener.proc.kill('SIGKILL');
    await listener.exited;
    const missed = await send('third', { order: 3 });
    const unheard = await waitUntil('an attempt with no listener', async () => (await attemptsOf(endpoint.id)).find((a) => a.msgId === missed.id));
    assert.equal(unheard!.responseStatusCode, 0);
    const detail = (await relay.api('GET', `/api/v1/app/${appId}/attempt/msg/${missed.id}`)).body.data[0];
    assert.ok(detail, 'the attempt is recorded');
    const back = await start('e2e');
    assert.equal(back.secret, secret, 'the session resumes with its endpoint and secret');
    await waitUntil('the missed delivery after the CLI came back', () => receiver.received.find((r) => r.headers['webhook-id'] === missed.id));
    await waitUntil('its successful attempt', async () => (await attemptsOf(endpoint.id)).some((a) => a.msgId === missed.id && a.responseStatusCode === 204));

    // Ctrl-C ends the session: its temporary endpoint is removed.
    back.listener.proc.kill('SIGINT');
    assert.equal(await back.listener.exited, 0, back.listener.stderr());
    assert.equal((await relay.api('GET', `/api/v1/app/${appId}/endpoint/listen-e2e`)).status, 404);
  });

  it("an app's key listens to its own app only, and the session's endpoint is hookrelay's to make", async () => {
    const foreign = await runCli(['listen', '--app', 'listen-app', '--forward-to', `${receiver.url}/x`, '--session', 'intruder'], { env: { HOOKRELAY_URL: relay.url, HOOKRELAY_ADMIN_TOKEN: otherKey } });
    assert.equal(foreign.code, 2);
    assert.match(foreign.stderr, /404/);
    assert.equal((await relay.api('GET', `/api/v1/app/${appId}/endpoint/listen-intruder`)).status, 404, 'no endpoint was made');

    const made = await relay.api('POST', `/api/v1/app/${appId}/endpoint`, { url: 'https://example.com/x', destination: { type: 'listen', session: 'forged' } });
    assert.equal(made.status, 422);
    assert.deepEqual(made.body.detail[0].loc, ['body', 'destination', 'type']);
    assert.doesNotMatch(made.body.detail[0].msg, /listen/);

    // A uid already taken by an ordinary endpoint is not turned into a session.
    await relay.api('POST', `/api/v1/app/${appId}/endpoint`, { url: 'https://example.com/y', uid: 'listen-taken' });
    const taken = await runCli(['listen', '--app', 'listen-app', '--forward-to', `${receiver.url}/x`, '--session', 'taken'], { env: { HOOKRELAY_URL: relay.url, HOOKRELAY_ADMIN_TOKEN: appKey } });
    assert.equal(taken.code, 2);
    assert.match(taken.stderr, /409 .*not a listen session/);
  });

  it('a server that shuts down ends its listen streams instead of waiting for them', async () => {
    const own = await startRelay();
    const appOwn = (await own.api('POST', '/api/v1/app', { name: 'closing' })).body.id;
    const response = await fetch(`${own.url}/api/v1/app/${appOwn}/listen`, {
      method: 'POST',
      headers: { authorization: `Bearer ${own.adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ session: 'closing' }),
    });
    const reader = response.body!.getReader();
    assert.match(new TextDecoder().decode((await reader.read()).value), /"type":"ready"/);
    await own.close();
    // The stream ends (done) rather than holding the close open.
    for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read());
  });

  it('names a missing or wrong flag', async () => {
    const env = { HOOKRELAY_URL: relay.url, HOOKRELAY_ADMIN_TOKEN: appKey };
    const cases = [
      { args: ['listen', '--forward-to', 'http://localhost:3000'], says: /--app is required/ },
      { args: ['listen', '--app', 'listen-app'], says: /--forward-to is required/ },
      { args: ['listen', '--app', 'listen-app', '--forward-to', 'localhost:3000'], says: /--forward-to must be an http/ },
      { args: ['listen', '--app', 'listen-app', '--forward-to', 'http://localhost:3000', '--session', 'a b'], says: /body\.session: must be 1-64 letters/ },
    ];
    for (const { args, says } of cases) {
      const result = await runCli(args, { env });
      assert.equal(result.code, 2, args.join(' '));
      assert.match(result.stderr, says);
      assert.doesNotMatch(result.stderr, /\n\s+at /);
    }
    // A server never reached is reported at once (exit 1); only a connection that worked is re-opened.
    const unreachable = await runCli(['listen', '--app', 'listen-app', '--forward-to', 'http://localhost:3000'], { env: { ...env, HOOKRELAY_URL: 'http://127.0.0.1:9' } });
    assert.equal(unreachable.code, 1);
    assert.match(unreachable.stderr, /cannot reach hookrelay at http:\/\/127\.0\.0\.1:9/);
  });
});
