import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { Webhook } from 'standardwebhooks';
import type { Worker } from 'node:worker_threads';
import { EgressPolicy } from '../../src/egress/policy.js';
import { HttpDestination } from '../../src/pipeline/destinations/http.js';
import { ThreadTransport } from '../../src/pipeline/destinations/http-thread.js';
import type { ClaimedDelivery } from '../../src/domain/types.js';
import { generateSecret } from '../../src/signing/standard-webhooks.js';
import { loadSettings } from '../../src/config.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { startRelay } from '../helpers/relay.js';
import { waitUntil } from '../helpers/wait.js';
import { createApp, createEndpoint, sendMany, verifySignature } from './support.js';

const LOOPBACK = new EgressPolicy({ allowNetworks: ['127.0.0.0/8'] });
const options = { timeoutMs: 5_000, connectTimeoutMs: 2_000, responseBodyLimit: 64, connectionsPerOrigin: 8, userAgent: 'hookrelay/test', egress: LOOPBACK };

function claimed(url: string, payload: string, secret: string, headers: Record<string, string> = {}): ClaimedDelivery {
  const id = `msg_${Math.random().toString(36).slice(2)}`;
  return {
    delivery: { id: 1, messageId: id, endpointId: 'ep_1', appId: 'app_1', retryIndex: 0, manual: false },
    endpoint: { id: 'ep_1', url, secrets: [{ key: secret, expiresAt: null }], headers, encryptionKeys: [] },
    message: { id, eventType: 'thing.happened', payload: Buffer.from(payload), contentType: 'application/json' },
  } as unknown as ClaimedDelivery;
}

const threadOf = (transport: ThreadTransport) => (transport as unknown as { worker: Worker | null }).worker;

/** An HTTP destination over its own delivery thread, closed with the receiver after the test. */
function threaded(t: TestContext, receiver: Receiver, settings = options) {
  const transport = new ThreadTransport(settings);
  const http = new HttpDestination(settings, transport);
  t.after(async () => {
    await http.close();
    await receiver.close();
  });
  return { transport, http };
}

describe('HTTP deliveries from the delivery thread', () => {
  it('sends the exact bytes, signed, with the headers in order, and reports the answer', async (t) => {
    const receiver = await startReceiver(() => ({ status: 201, body: 'x'.repeat(100) }));
    const { http } = threaded(t, receiver);
    const secret = generateSecret();
    const payload = '{"amount":12345678901234567890,"nested":{"b":1,"a":2}}';
    const delivery = claimed(receiver.url, payload, secret, { 'X-First': '1', 'X-Second': '2' });
    const result = await http.send(delivery, new AbortController().signal);
    assert.equal(result.kind, 'success');
    assert.equal(result.statusCode, 201);
    assert.equal(result.responseBody, 'x'.repeat(64), 'the answer is kept up to the body limit');
    const [got] = receiver.received;
    assert.equal(got.body.toString(), payload);
    // undici writes host and connection first; hookrelay's headers follow in the order it built them.
    const names = got.rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
    assert.deepEqual(names.filter((n) => n !== 'host' && n !== 'connection' && n !== 'content-length'), result.request?.headers.map(([n]) => n.toLowerCase()));
    assert.deepEqual(result.request?.headers.map(([n]) => n.toLowerCase()).slice(0, 2), ['x-first', 'x-second']);
    // The official verifier accepts what the thread sent.
    const verified = new Webhook(secret).verify(got.body.toString(), got.headers as Record<string, string>);
    assert.deepEqual(verified, JSON.parse(payload));
  });

  it('answers many attempts at once, each with its own outcome', async (t) => {
    const receiver = await startReceiver((req) => ({ status: Number(JSON.parse(req.body.toString()).status) }));
    const { http } = threaded(t, receiver);
    const statuses = Array.from({ length: 300 }, (_, i) => [200, 204, 410, 500, 429][i % 5]);
    const signal = new AbortController().signal;
    const results = await Promise.all(statuses.map((status) => http.send(claimed(receiver.url, JSON.stringify({ status }), generateSecret()), signal)));
    assert.deepEqual(results.map((r) => r.statusCode), statuses);
    assert.deepEqual(results.map((r) => r.kind), statuses.map((s) => (s < 300 ? 'success' : s === 410 ? 'gone' : 'retry')));
  });

  it('refuses addresses the egress policy refuses, in the thread too', async (t) => {
    const receiver = await startReceiver();
    const strict = { ...options, egress: new EgressPolicy() };
    const { http } = threaded(t, receiver, strict);
    const result = await http.send(claimed(receiver.url, '{}', generateSecret()), new AbortController().signal);
    assert.equal(result.kind, 'fatal');
    assert.match(result.kind === 'fatal' ? result.error : '', /refused: 127\.0\.0\.1 is a loopback address/);
    assert.equal(receiver.received.length, 0);
  });

  it('times out an attempt the receiver never answers, and a shutdown ends the others at once', async (t) => {
    const receiver = await startReceiver(() => ({ hang: true }));
    const quick = { ...options, timeoutMs: 300 };
    const { http } = threaded(t, receiver, quick);
    const timedOut = await http.send(claimed(receiver.url, '{}', generateSecret()), new AbortController().signal);
    assert.equal(timedOut.kind, 'retry');
    assert.match(timedOut.kind === 'retry' ? (timedOut.error ?? '') : '', /timed out after 300 ms/);

    const slow = { ...options, timeoutMs: 60_000 };
    const patient = new HttpDestination(slow, new ThreadTransport(slow));
    t.after(() => patient.close());
    const shutdown = new AbortController();
    const attempts = [1, 2, 3].map(() => patient.send(claimed(receiver.url, '{}', generateSecret()), shutdown.signal));
    await receiver.waitFor(4);
    shutdown.abort();
    const results = await Promise.all(attempts);
    for (const r of results) assert.deepEqual([r.kind, r.kind === 'retry' ? r.error : null], ['retry', 'aborted by shutdown']);
  });

  it('sends the unanswered attempts of a working thread that died again from a new thread, once', async (t) => {
    const receiver = await startReceiver((_, n) => (n === 1 ? { hang: true } : { status: 200 }));
    const { transport, http } = threaded(t, receiver);
    const signal = new AbortController().signal;
    assert.equal((await http.send(claimed(receiver.url, '{}', generateSecret()), signal)).kind, 'success');
    const delivery = claimed(receiver.url, '{"again":true}', generateSecret());
    const hanging = http.send(delivery, signal);
    await receiver.waitFor(2);
    const first = threadOf(transport)!;
    await first.terminate();
    const result = await hanging;
    assert.equal(result.kind, 'success', 'a dead thread is not the receiver failing');
    assert.notEqual(threadOf(transport), first);
    const copies = receiver.received.filter((r) => r.headers['webhook-id'] === delivery.message.id);
    assert.equal(copies.length, 2, 'sent again, as after a crash');
  });

  it('fails the attempts of a thread that died before answering anything as retries, and starts a new one a second later', async (t) => {
    const receiver = await startReceiver((_, n) => (n === 0 ? { hang: true } : { status: 200 }));
    const { transport, http } = threaded(t, receiver);
    const signal = new AbortController().signal;
    const hanging = http.send(claimed(receiver.url, '{}', generateSecret()), signal);
    await receiver.waitFor(1);
    const first = threadOf(transport)!;
    await first.terminate();
    const lost = await hanging;
    assert.equal(lost.kind, 'retry');
    assert.match(lost.kind === 'retry' ? (lost.error ?? '') : '', /the delivery thread exited .* before the attempt ended/);
    const soon = await http.send(claimed(receiver.url, '{}', generateSecret()), signal);
    assert.match(soon.kind === 'retry' ? (soon.error ?? '') : '', /the delivery thread cannot start: the delivery thread exited/);
    const next = (await waitUntil('a new delivery thread', async () => {
      const result = await http.send(claimed(receiver.url, '{}', generateSecret()), signal);
      return result.kind === 'success' ? result : null;
    }, 5_000, 200))!;
    assert.equal(next.statusCode, 200);
    assert.notEqual(threadOf(transport), first);
  });

  it('lets attempts in flight finish when it is closed, then ends the thread', async (t) => {
    const receiver = await startReceiver(() => ({ status: 200, delayMs: 300 }));
    t.after(() => receiver.close());
    const transport = new ThreadTransport(options);
    const http = new HttpDestination(options, transport);
    const thread = threadOf(transport)!;
    let exited = false;
    thread.once('exit', () => (exited = true));
    const attempt = http.send(claimed(receiver.url, '{}', generateSecret()), new AbortController().signal);
    await receiver.waitFor(1);
    await http.close();
    assert.equal((await attempt).kind, 'success');
    await waitUntil('the delivery thread to end', () => exited, 2_000);
    const after = await http.send(claimed(receiver.url, '{}', generateSecret()), new AbortController().signal);
    assert.deepEqual([after.kind, after.kind === 'retry' ? after.error : null], ['retry', 'the delivery thread is shut down']);
  });
});

describe('--delivery-thread', () => {
  it('is on by default; off and on deliver the same messages, signed, with the attempts recorded', async (t) => {
    assert.equal(loadSettings({}, {}).deliveryThread, true);
    assert.equal(loadSettings({}, { HOOKRELAY_DELIVERY_THREAD: 'off' }).deliveryThread, false);
    assert.throws(() => loadSettings({ deliveryThread: 'sometimes' }, {}), /--delivery-thread \(HOOKRELAY_DELIVERY_THREAD\)/);
    for (const mode of ['on', 'off']) {
      const [relay, receiver] = await Promise.all([startRelay({ deliveryThread: mode }), startReceiver()]);
      t.after(async () => {
        await relay.close();
        await receiver.close();
      });
      const appId = await createApp(relay);
      const endpoint = await createEndpoint(relay, appId, { url: receiver.url });
      const ids = await sendMany(relay, appId, 40, 10, (i) => ({ i, mode }));
      const got = await receiver.waitFor(40);
      for (const request of got) verifySignature(request, endpoint.secret);
      assert.deepEqual(new Set(got.map((r) => r.headers['webhook-id'])), new Set(ids), `delivery thread ${mode}`);
      await waitUntil(`the attempts of mode ${mode} recorded`, async () => {
        const page = await relay.api('GET', `/api/v1/app/${appId}/attempt/endpoint/${endpoint.id}?limit=100`);
        return page.body.data?.length === 40 && page.body.data.every((a: { status: number }) => a.status === 0);
      });
    }
  });
});
