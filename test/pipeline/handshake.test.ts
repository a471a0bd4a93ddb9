import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Webhook as StandardWebhook } from 'standardwebhooks';
import { freshDatabase, skipWithoutPostgres } from '../helpers/postgres.js';
import { startReceiver, type Answer, type Received, type Receiver } from '../helpers/receiver.js';
import { startRelayOn, type TestRelay, type TestStoreKind } from '../helpers/relay.js';
import { waitUntil } from '../helpers/wait.js';
import { startDnsServer } from '../egress/support.js';
import { runCli } from '../process/child.js';
import { createApp, send } from './support.js';

/**
 * The endpoint registration handshake (docs/api.md#registration-handshake), against real receivers on loopback: an
 * endpoint created with `verification: "challenge"` gets nothing but signed challenges until it echoes one; what is
 * sent to it meanwhile is held and then delivered in order; a receiver that stays silent or echoes the wrong value
 * ends `verificationFailed` with the reason; the operator can start it again.
 */

// Short enough to exhaust within a test; long enough (9 s after the second attempt) that a test can act in between.
const SCHEDULE = '100ms,100ms,200ms,500ms,1s,2s,5s';

const isHandshake = (r: Received) => r.headers['content-type'] === 'application/json' && JSON.parse(r.body.toString()).type === 'endpoint.verification';
const echo = (r: Received): Answer => ({ status: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ challenge: JSON.parse(r.body.toString()).challenge }) });

/** A receiver that answers handshakes as `handshake` says (echoing by default) and every delivery with 200. */
function receiverOf(handshake: (r: Received) => Answer = echo): Promise<Receiver> {
  return startReceiver((r) => (isHandshake(r) ? handshake(r) : { status: 200 }));
}

const handshakes = (receiver: Receiver) => receiver.received.filter(isHandshake);
const deliveries = (receiver: Receiver) => receiver.received.filter((r) => !isHandshake(r));

async function endpointView(relay: TestRelay, appId: string, endpointId: string): Promise<any> {
  const response = await relay.api('GET', `/api/v1/app/${appId}/endpoint/${endpointId}`);
  assert.equal(response.status, 200, response.text);
  return response.body;
}

async function createChallenged(relay: TestRelay, appId: string, body: Record<string, unknown>): Promise<{ id: string; secret: string; view: any }> {
  const response = await relay.api('POST', `/api/v1/app/${appId}/endpoint`, { verification: 'challenge', ordering: 'fifo', ...body });
  assert.equal(response.status, 201, response.text);
  const { key } = await relay.svix.endpoint.getSecret(appId, response.body.id);
  return { id: response.body.id, secret: key, view: response.body };
}

const stateOf = async (relay: TestRelay, appId: string, endpointId: string) => (await endpointView(relay, appId, endpointId)).verification;

function waitForState(relay: TestRelay, appId: string, endpointId: string, state: string, timeoutMs = 15_000): Promise<any> {
  return waitUntil(`endpoint ${endpointId} to be ${state}`, async () => {
    const v = await stateOf(relay, appId, endpointId);
    return v.state === state ? v : null;
  }, timeoutMs);
}

function suite(kind: TestStoreKind): void {
  const start = (flags: Record<string, string> = {}) => startRelayOn(kind, { verificationSchedule: SCHEDULE, deliveryTimeout: '1s', ...flags });

  it('sends a signed challenge; an endpoint that echoes it is verified, and what was sent before arrives after, in order', async (t) => {
    let reachable = false;
    const receiver = await receiverOf((r) => (reachable ? echo(r) : { status: 503 }));
    const relay = await start();
    t.after(async () => {
      await relay.close();
      await receiver.close();
    });
    const appId = await createApp(relay);
    const endpoint = await createChallenged(relay, appId, { url: receiver.url });
    assert.equal(endpoint.view.verification.mode, 'challenge');
    assert.equal(endpoint.view.verification.state, 'pendingVerification');

    const sent: string[] = [];
    for (let i = 0; i < 5; i++) sent.push(await send(relay, appId, { i }));
    await waitUntil('two handshake attempts', () => handshakes(receiver).length >= 2);
    // The receiver sees a handshake before hookrelay has judged its answer and counted it.
    await waitUntil('two handshake attempts recorded', async () => (await stateOf(relay, appId, endpoint.id)).attempts >= 2);
    const pending = await stateOf(relay, appId, endpoint.id);
    assert.equal(pending.state, 'pendingVerification');
    assert.equal(pending.reason, 'status 503');
    assert.ok(pending.attempts >= 2 && pending.nextAttemptAt !== null, JSON.stringify(pending));
    assert.equal(deliveries(receiver).length, 0, 'nothing is delivered to an endpoint that has not echoed the challenge');
    const held = await relay.api('GET', `/api/v1/app/${appId}/endpoint/${endpoint.id}/stats`);
    assert.deepEqual({ pending: held.body.pending, fail: held.body.fail }, { pending: 5, fail: 0 }, 'held messages are pending, not failed');
    const attempts = await relay.api('GET', `/api/v1/app/${appId}/attempt/endpoint/${endpoint.id}`);
    assert.equal(attempts.body.data.length, 0, 'held messages are not attempted');

    reachable = true;
    const verified = await waitForState(relay, appId, endpoint.id, 'verified');
    assert.equal(verified.reason, null);
    assert.equal(verified.nextAttemptAt, null);
    await receiver.waitFor(handshakes(receiver).length + 5);
    assert.deepEqual(deliveries(receiver).map((r) => JSON.parse(r.body.toString()).i), [0, 1, 2, 3, 4], 'held messages arrive in acceptance order');
    assert.deepEqual(deliveries(receiver).map((r) => r.headers['webhook-id']), sent);

    // Every handshake request is a Standard Webhooks request signed with the endpoint's secret, each with a new challenge.
    const wh = new StandardWebhook(endpoint.secret.replace(/^whsec_/, ''));
    const challenges = new Set<string>();
    for (const request of handshakes(receiver)) {
      const body = wh.verify(request.body.toString(), {
        'webhook-id': request.headers['webhook-id'] as string,
        'webhook-timestamp': request.headers['webhook-timestamp'] as string,
        'webhook-signature': request.headers['webhook-signature'] as string,
      }) as { type: string; challenge: string; endpointId: string };
      assert.equal(body.type, 'endpoint.verification');
      assert.equal(body.endpointId, endpoint.id);
      assert.match(body.challenge, /^[A-Za-z0-9_-]{32}$/);
      challenges.add(body.challenge);
    }
    assert.equal(challenges.size, handshakes(receiver).length, 'a fresh challenge per attempt');
    // A verified endpoint gets new messages at once, with no further handshake.
    const before = handshakes(receiver).length;
    await send(relay, appId, { i: 5 });
    await waitUntil('the sixth delivery', () => deliveries(receiver).length === 6);
    assert.equal(handshakes(receiver).length, before);
  });

  it('a silent endpoint is retried on the schedule, then verificationFailed with the reason; its messages stay held until the operator starts it again', async (t) => {
    let silent = true;
    const receiver = await receiverOf((r) => (silent ? { hang: true } : echo(r)));
    const relay = await start({ verificationSchedule: '100ms,100ms' });
    t.after(async () => {
      await relay.close();
      await receiver.close();
    });
    const appId = await createApp(relay);
    const endpoint = await createChallenged(relay, appId, { url: receiver.url });
    await send(relay, appId, { i: 0 });
    await send(relay, appId, { i: 1 });
    const failed = await waitForState(relay, appId, endpoint.id, 'verificationFailed');
    assert.equal(failed.attempts, 3, 'the first attempt and one per schedule entry');
    assert.equal(failed.reason, 'timed out after 1000 ms');
    assert.equal(failed.nextAttemptAt, null);
    assert.notEqual(failed.lastAttemptAt, null);
    assert.equal(handshakes(receiver).length, 3);
    assert.equal(deliveries(receiver).length, 0);
    const held = await relay.api('GET', `/api/v1/app/${appId}/endpoint/${endpoint.id}/stats`);
    assert.equal(held.body.pending, 2);

    silent = false;
    const restarted = await runCli(['endpoint', 'verify', appId, endpoint.id, '--json'], { env: { HOOKRELAY_URL: relay.url, HOOKRELAY_ADMIN_TOKEN: relay.adminToken } });
    assert.equal(restarted.code, 0, restarted.stderr);
    assert.equal(JSON.parse(restarted.stdout).verification.state, 'pendingVerification');
    await waitForState(relay, appId, endpoint.id, 'verified');
    await waitUntil('both held messages', () => deliveries(receiver).length === 2);
    assert.deepEqual(deliveries(receiver).map((r) => JSON.parse(r.body.toString()).i), [0, 1]);
  });

  it('an endpoint echoing the wrong value fails with "wrong challenge"; the API re-trigger answers 202 and verifies it once it echoes', async (t) => {
    let wrong = true;
    const receiver = await receiverOf((r) => (wrong ? { status: 200, headers: { 'content-type': 'application/json' }, body: '{"challenge":"not-the-one-sent"}' } : echo(r)));
    const relay = await start({ verificationSchedule: '100ms' });
    t.after(async () => {
      await relay.close();
      await receiver.close();
    });
    const appId = await createApp(relay);
    const endpoint = await createChallenged(relay, appId, { url: receiver.url });
    await send(relay, appId, { held: true });
    const failed = await waitForState(relay, appId, endpoint.id, 'verificationFailed');
    assert.equal(failed.reason, 'wrong challenge');
    assert.equal(deliveries(receiver).length, 0);

    wrong = false;
    const restarted = await relay.api('POST', `/api/v1/app/${appId}/endpoint/${endpoint.id}/verification`);
    assert.equal(restarted.status, 202, restarted.text);
    assert.equal(restarted.body.verification.state, 'pendingVerification');
    assert.equal(restarted.body.verification.attempts, 0);
    await waitForState(relay, appId, endpoint.id, 'verified');
    await waitUntil('the held message', () => deliveries(receiver).length === 1);
  });

  it('a verified endpoint whose URL changes is pending again, and holds messages until the new URL echoes', async (t) => {
    const first = await receiverOf();
    let reachable = false;
    const second = await receiverOf((r) => (reachable ? echo(r) : { status: 500 }));
    const relay = await start();
    t.after(async () => {
      await relay.close();
      await first.close();
      await second.close();
    });
    const appId = await createApp(relay);
    const endpoint = await createChallenged(relay, appId, { url: first.url });
    await waitForState(relay, appId, endpoint.id, 'verified');
    const described = await relay.api('PATCH', `/api/v1/app/${appId}/endpoint/${endpoint.id}`, { description: 'same URL' });
    assert.equal(described.body.verification.state, 'verified', 'changing anything but the URL keeps the endpoint verified');

    const moved = await relay.api('PATCH', `/api/v1/app/${appId}/endpoint/${endpoint.id}`, { url: second.url });
    assert.equal(moved.status, 200, moved.text);
    assert.equal(moved.body.verification.state, 'pendingVerification');
    await send(relay, appId, { after: 'move' });
    await waitUntil('a failed handshake to the new URL', async () => (await stateOf(relay, appId, endpoint.id)).reason === 'status 500');
    assert.equal(deliveries(first).length + deliveries(second).length, 0);

    reachable = true;
    await waitForState(relay, appId, endpoint.id, 'verified');
    await waitUntil('the held message at the new URL', () => deliveries(second).length === 1);
    assert.equal(deliveries(first).length, 0);

    // Turning the handshake off releases what a pending endpoint holds.
    reachable = false;
    const again = await relay.api('PATCH', `/api/v1/app/${appId}/endpoint/${endpoint.id}`, { url: `${second.url}?moved=again` });
    assert.equal(again.body.verification.state, 'pendingVerification');
    await send(relay, appId, { after: 'second move' });
    const tried = handshakes(second).length;
    await waitUntil('a handshake to the changed URL', () => handshakes(second).length > tried);
    const off = await relay.api('PATCH', `/api/v1/app/${appId}/endpoint/${endpoint.id}`, { verification: 'none' });
    assert.equal(off.body.verification.state, 'notRequired');
    await waitUntil('the message released by verification none', () => deliveries(second).length === 2);
    assert.deepEqual(JSON.parse(deliveries(second)[1].body.toString()), { after: 'second move' });
  });
}

describe('endpoint registration handshake (SQLite)', () => suite('sqlite'));
describe('endpoint registration handshake (PostgreSQL)', { skip: skipWithoutPostgres() }, () => suite('postgres'));

describe('endpoint registration handshake: input and tenancy', () => {
  it('refuses bad input precisely and keeps tenants apart', async (t) => {
    const receiver = await receiverOf();
    const relay = await startRelayOn('sqlite', { verificationSchedule: SCHEDULE });
    t.after(async () => {
      await relay.close();
      await receiver.close();
    });
    const appId = await createApp(relay);
    const bogus = await relay.api('POST', `/api/v1/app/${appId}/endpoint`, { url: receiver.url, verification: 'bogus' });
    assert.equal(bogus.status, 422, bogus.text);
    assert.deepEqual(bogus.body.detail[0].loc, ['body', 'verification']);

    const plain = await relay.api('POST', `/api/v1/app/${appId}/endpoint`, { url: receiver.url });
    assert.deepEqual(plain.body.verification, { mode: 'none', state: 'notRequired', attempts: 0, lastAttemptAt: null, nextAttemptAt: null, reason: null });
    const notChallenged = await relay.api('POST', `/api/v1/app/${appId}/endpoint/${plain.body.id}/verification`);
    assert.equal(notChallenged.status, 409, notChallenged.text);
    assert.equal(notChallenged.body.code, 'verification_not_enabled');
    const badPatch = await relay.api('PATCH', `/api/v1/app/${appId}/endpoint/${plain.body.id}`, { verification: 'yes' });
    assert.equal(badPatch.status, 422, badPatch.text);
    // Only an HTTP endpoint's URL can answer a challenge.
    const toTemporal = await relay.api('POST', `/api/v1/app/${appId}/endpoint`, { destination: { type: 'temporal', address: 'temporal.example.com:7233', taskQueue: 'q', workflowType: 'handle' }, verification: 'challenge' });
    assert.equal(toTemporal.status, 422, toTemporal.text);
    assert.deepEqual(toTemporal.body.detail[0].loc, ['body', 'verification']);

    // Another application's key can neither see nor re-trigger this app's endpoint.
    const challenged = await createChallenged(relay, appId, { url: receiver.url });
    await waitForState(relay, appId, challenged.id, 'verified');
    const otherApp = await createApp(relay);
    const minted = await relay.api('POST', `/api/v1/app/${otherApp}/api-key`, { name: 'other tenant' });
    assert.equal(minted.status, 201, minted.text);
    const otherKey = minted.body.key as string;
    for (const path of [`/api/v1/app/${appId}/endpoint/${challenged.id}/verification`, `/api/v1/app/${otherApp}/endpoint/${challenged.id}/verification`]) {
      const refused = await relay.api('POST', path, undefined, { token: otherKey });
      assert.equal(refused.status, 404, `${path}: ${refused.text}`);
    }
    assert.equal((await stateOf(relay, appId, challenged.id)).state, 'verified', 'the refused calls changed nothing');
    // The app's own key may.
    const ownKey = (await relay.api('POST', `/api/v1/app/${appId}/api-key`, { name: 'owner' })).body.key as string;
    const own = await relay.api('POST', `/api/v1/app/${appId}/endpoint/${challenged.id}/verification`, undefined, { token: ownKey });
    assert.equal(own.status, 202, own.text);
    assert.equal(own.body.verification.state, 'pendingVerification');
  });
});

describe('endpoint registration handshake: restart (SQLite)', () => {
  it('a handshake left in flight by a process that died is due at once when the next one starts, not after its lease', async (t) => {
    const receiver = await receiverOf();
    const dir = mkdtempSync(join(tmpdir(), 'hookrelay-handshake-'));
    const db = join(dir, 'hookrelay.db');
    let second: TestRelay | undefined;
    t.after(async () => {
      await second?.close();
      await receiver.close();
      rmSync(dir, { recursive: true, force: true });
    });
    // The first process only accepts; a lease taken through its store stands for a handshake it was making when it died.
    const first = await startRelayOn('sqlite', { db, dispatch: 'off' });
    const appId = await createApp(first);
    const endpoint = await createChallenged(first, appId, { url: receiver.url });
    await send(first, appId, { before: 'restart' });
    const now = Date.now();
    assert.equal((await first.store.claimVerifications('a-process-that-died', now, now + 3_600_000, 10)).length, 1);
    await first.close();

    second = await startRelayOn('sqlite', { db, verificationSchedule: SCHEDULE });
    await waitForState(second, appId, endpoint.id, 'verified');
    await waitUntil('the held message', () => deliveries(receiver).length === 1);
  });
});

describe('endpoint registration handshake: stopping', () => {
  it('a handshake cut off by a stop is not counted as an attempt, and is made again at once after a start', async (t) => {
    let answering = false;
    const receiver = await receiverOf((r) => (answering ? echo(r) : { hang: true }));
    const relay = await startRelayOn('sqlite', { verificationSchedule: SCHEDULE, deliveryTimeout: '30s' });
    t.after(async () => {
      await relay.close();
      await receiver.close();
    });
    const appId = await createApp(relay);
    const endpoint = await createChallenged(relay, appId, { url: receiver.url });
    await waitUntil('the handshake request', () => handshakes(receiver).length === 1);
    await relay.handshakes.stop();
    const after = await stateOf(relay, appId, endpoint.id);
    assert.deepEqual({ state: after.state, attempts: after.attempts, reason: after.reason }, { state: 'pendingVerification', attempts: 0, reason: null });

    answering = true;
    relay.handshakes.start();
    const verified = await waitForState(relay, appId, endpoint.id, 'verified');
    assert.equal(verified.attempts, 1);
    assert.equal(handshakes(receiver).length, 2);
  });
});

describe('endpoint registration handshake: egress policy', () => {
  it('sends the challenge only to addresses deliveries may reach: a name resolving to loopback fails at once with the refusal', async (t) => {
    const receiver = await receiverOf();
    const dns = await startDnsServer((name, type) => (name === 'hooks.test' && type === 'A' ? ['127.0.0.1'] : []));
    const relay = await startRelayOn('sqlite', { allowNetworks: '', dnsServers: dns.address, verificationSchedule: SCHEDULE });
    t.after(async () => {
      await relay.close();
      await receiver.close();
      await dns.close();
    });
    const appId = await createApp(relay);
    const endpoint = await createChallenged(relay, appId, { url: receiver.url.replace('127.0.0.1', 'hooks.test') });
    const failed = await waitForState(relay, appId, endpoint.id, 'verificationFailed');
    assert.equal(failed.attempts, 1, 'a refusal is not retried: the policy does not change by waiting');
    assert.match(failed.reason, /^refused: hooks\.test resolves to 127\.0\.0\.1 \(a loopback address\)/);
    assert.equal(receiver.received.length, 0);
  });
});

describe('endpoint registration handshake: operational webhooks', () => {
  it('sends endpoint.verified and endpoint.verification_failed (with the reason), signed, to the operator', async (t) => {
    const ops = await startReceiver(() => ({ status: 204 }));
    const good = await receiverOf();
    const bad = await receiverOf(() => ({ status: 404 }));
    const relay = await startRelayOn('sqlite', { verificationSchedule: '50ms' });
    t.after(async () => {
      await relay.close();
      await Promise.all([ops.close(), good.close(), bad.close()]);
    });
    const operational = await relay.api('POST', '/api/v1/operational-webhook/endpoint', { url: ops.url, filterTypes: ['endpoint.verified', 'endpoint.verification_failed'] });
    assert.equal(operational.status, 201, operational.text);
    const secret = (await relay.api('GET', `/api/v1/operational-webhook/endpoint/${operational.body.id}/secret`)).body.key as string;
    const appId = await createApp(relay);
    const verified = await createChallenged(relay, appId, { url: good.url });
    const failing = await createChallenged(relay, appId, { url: bad.url });
    await ops.waitFor(2, 15_000);
    const wh = new StandardWebhook(secret.replace(/^whsec_/, ''));
    const events = ops.received.map((r) =>
      wh.verify(r.body.toString(), { 'webhook-id': String(r.headers['webhook-id']), 'webhook-timestamp': String(r.headers['webhook-timestamp']), 'webhook-signature': String(r.headers['webhook-signature']) }),
    ) as { type: string; data: Record<string, unknown> }[];
    const byType = new Map(events.map((e) => [e.type, e.data]));
    assert.deepEqual(byType.get('endpoint.verified'), { appId, appUid: null, endpointId: verified.id, endpointUid: null });
    assert.deepEqual(byType.get('endpoint.verification_failed'), { appId, appUid: null, endpointId: failing.id, endpointUid: null, reason: 'status 404' });
  });
});

describe('endpoint registration handshake across processes (PostgreSQL)', { skip: skipWithoutPostgres() }, () => {
  it('runs each handshake in one process at a time; a message held by one process flows once another verified the endpoint', async (t) => {
    const database = await freshDatabase();
    let reachable = false;
    let concurrent = 0;
    let maxConcurrent = 0;
    // Each handshake answer takes 300 ms, so two processes running the same handshake would overlap.
    const receiver = await receiverOf((r) => {
      concurrent++;
      maxConcurrent = Math.max(maxConcurrent, concurrent);
      setTimeout(() => concurrent--, 300);
      return { ...(reachable ? echo(r) : { status: 503 }), delayMs: 300 };
    });
    const flags = { db: database.url, verificationSchedule: '100ms,100ms,100ms,5s' };
    const a = await startRelayOn('postgres', flags);
    const b = await startRelayOn('postgres', flags);
    t.after(async () => {
      await a.close();
      await b.close();
      await receiver.close();
      await database.drop();
    });
    const appId = await createApp(a);
    const endpoint = await createChallenged(a, appId, { url: receiver.url });
    await waitUntil('four recorded handshake attempts', async () => (await stateOf(b, appId, endpoint.id)).attempts === 4);
    assert.equal(handshakes(receiver).length, 4, 'both processes look for due handshakes, but each attempt is made once');
    assert.equal(maxConcurrent, 1);

    // From here A only delivers and B only runs handshakes: A holds the message, B verifies, A delivers it.
    await a.handshakes.stop();
    await b.dispatcher.stop(0);
    await send(a, appId, { held: 'by A' });
    reachable = true;
    const restarted = await b.api('POST', `/api/v1/app/${appId}/endpoint/${endpoint.id}/verification`);
    assert.equal(restarted.status, 202, restarted.text);
    await waitForState(a, appId, endpoint.id, 'verified');
    await waitUntil('the message held on A', () => deliveries(receiver).length === 1);
    assert.deepEqual(JSON.parse(deliveries(receiver)[0].body.toString()), { held: 'by A' });
  });
});
