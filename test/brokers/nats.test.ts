import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect, type JetStreamManager, type NatsConnection } from 'nats';
import { allSucceeded, failedAttempts, failureMatching, sendMany, tally } from '../helpers/broker-bulk.js';
import { brokerSkip, startNats, type TestBroker } from '../helpers/brokers.js';
import { startRelay, type TestRelay } from '../helpers/relay.js';
import { waitUntil } from '../helpers/wait.js';

const USER = 'hookrelay';
const PASSWORD = 'nats-pass-' + randomUUID();

describe('nats destination (real nats-server with JetStream)', { skip: brokerSkip('nats-server', 'nats.sh') }, () => {
  let nats: TestBroker;
  let relay: TestRelay;
  let nc: NatsConnection;
  let jsm: JetStreamManager;

  const connectReader = async () => {
    nc = await connect({ servers: nats.address, user: USER, pass: PASSWORD });
    jsm = await nc.jetstreamManager();
  };

  before(async () => {
    nats = await startNats({ user: USER, password: PASSWORD });
    relay = await startRelay({ retrySchedule: '0,200ms,300ms,500ms,1s,1s,2s,2s,2s,2s', circuitCooldown: '1s', circuitMaxCooldown: '2s' });
    await connectReader();
  });
  after(async () => {
    await nc?.close().catch(() => undefined);
    await relay?.close();
    await nats?.close();
  });

  const destination = (extra: Record<string, unknown> = {}) => ({ type: 'nats', address: nats.address, user: USER, password: PASSWORD, subject: 'webhooks.{eventType}', timeoutMs: 2000, ...extra });

  async function endpoint(appId: string, body: Record<string, unknown>): Promise<string> {
    const response = await relay.api('POST', `/api/v1/app/${appId}/endpoint`, body);
    assert.equal(response.status, 201, response.text);
    return response.body.id;
  }

  async function attempts(appId: string, msgId: string, endpointId: string) {
    const page = await relay.svix.messageAttempt.listByMsg(appId, msgId, { endpointId, limit: 250 });
    return [...page.data].sort((a, b) => a.timestamp.getTime() - b.timestamp.getTime() || a.id.localeCompare(b.id));
  }

  const succeeded = async (appId: string, msgId: string, endpointId: string) =>
    (await waitUntil(`a successful attempt of ${msgId} to ${endpointId}`, async () => {
      const list = await attempts(appId, msgId, endpointId);
      return list.some((a) => a.status === 0) ? list : null;
    }, 20_000))!;

  /** A stream on `prefix.>`, named after the prefix. */
  async function stream(prefix: string): Promise<string> {
    const name = prefix.replace(/[^A-Za-z0-9_-]/g, '_');
    await jsm.streams.add({ name, subjects: [`${prefix}.>`] });
    return name;
  }

  async function stored(name: string) {
    const info = await jsm.streams.info(name);
    const out = [];
    for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) out.push(await jsm.streams.getMessage(name, { seq }));
    return out;
  }

  /** The Nats-Msg-Id of every message the stream holds, read by an ordered consumer. */
  async function streamIds(name: string): Promise<string[]> {
    const total = (await jsm.streams.info(name)).state.messages;
    const out: string[] = [];
    if (total === 0) return out;
    const messages = await (await nc.jetstream().consumers.get(name)).consume();
    for await (const m of messages) {
      out.push(m.headers?.get('Nats-Msg-Id') ?? '');
      if (out.length === total) break;
    }
    return out;
  }

  it('validates the destination (422 naming the field), names the endpoint nats://…, and never returns its credentials', async () => {
    const app = await relay.svix.application.create({ name: 'nats-config' });
    const wildcard = await relay.api('POST', `/api/v1/app/${app.id}/endpoint`, { destination: destination({ subject: 'webhooks.*' }) });
    assert.equal(wildcard.status, 422, wildcard.text);
    assert.deepEqual(wildcard.body.detail[0].loc, ['body', 'destination', 'subject']);
    const half = await relay.api('POST', `/api/v1/app/${app.id}/endpoint`, { destination: destination({ password: undefined }) });
    assert.equal(half.status, 422, half.text);
    assert.deepEqual(half.body.detail[0].loc, ['body', 'destination', 'password']);

    const token = 'nats-token-' + randomUUID();
    const created = await relay.api('POST', `/api/v1/app/${app.id}/endpoint`, { destination: destination({ user: undefined, password: undefined, token }) });
    assert.equal(created.status, 201, created.text);
    const withPassword = await relay.api('POST', `/api/v1/app/${app.id}/endpoint`, { destination: destination() });
    assert.equal(withPassword.status, 201, withPassword.text);
    assert.equal(withPassword.body.url, `nats://${nats.address}/webhooks.{eventType}`);
    assert.equal(withPassword.body.destination.user, USER);
    const listed = await relay.api('GET', `/api/v1/app/${app.id}/endpoint`);
    for (const shown of [created.text, withPassword.text, listed.text]) assert.ok(!shown.includes(token) && !shown.includes(PASSWORD), `a secret came back: ${shown}`);
    for (const id of [created.body.id, withPassword.body.id]) assert.equal((await relay.api('DELETE', `/api/v1/app/${app.id}/endpoint/${id}`)).status, 204);
  });

  it('publishes to JetStream with Nats-Msg-Id = message id, hookrelay headers, and the exact payload bytes; the attempt records the PubAck', async () => {
    const app = await relay.svix.application.create({ name: 'nats-exact' });
    const prefix = 'exact' + randomUUID().slice(0, 8);
    const name = await stream(prefix);
    const ep = await endpoint(app.id, { destination: destination({ subject: `${prefix}.{eventType}`, stream: name }), headers: { 'X-Tenant': 'acme' } });
    const payload = '{ "total":1.0,\n  "id": 820982911946154508, "note":"naïve café ☃ 𝄞" }';
    const created = await relay.api('POST', `/api/v1/app/${app.id}/msg`, undefined, { rawBody: `{"eventType":"order.created","payload":${payload}}`, headers: { 'content-type': 'application/json' } });
    assert.equal(created.status, 202, created.text);
    const msgId = created.body.id;

    const list = await succeeded(app.id, msgId, ep);
    const [got] = await stored(name);
    assert.equal(got.subject, `${prefix}.order.created`);
    assert.ok(Buffer.from(got.data).equals(Buffer.from(payload)), `payload bytes differ: ${Buffer.from(got.data)}`);
    assert.equal(got.header.get('Nats-Msg-Id'), msgId);
    assert.equal(got.header.get('webhook-id'), msgId);
    assert.equal(got.header.get('x-hookrelay-event-type'), 'order.created');
    assert.equal(got.header.get('content-type'), 'application/json');
    assert.equal(got.header.get('x-tenant'), 'acme');
    const ack = JSON.parse(list.find((a) => a.status === 0)!.response);
    assert.deepEqual(ack, { stream: name, seq: got.seq, duplicate: false });

    // A resend publishes the same Nats-Msg-Id again: the stream's duplicate window drops it.
    const resent = await relay.api('POST', `/api/v1/app/${app.id}/msg/${msgId}/endpoint/${ep}/resend`);
    assert.equal(resent.status, 202, resent.text);
    const again = await waitUntil('the resend attempt', async () => {
      const all = (await attempts(app.id, msgId, ep)).filter((a) => a.status === 0);
      return all.length >= 2 ? all : null;
    }, 20_000);
    assert.equal(JSON.parse(again!.at(-1)!.response).duplicate, true);
    assert.equal((await stored(name)).length, 1);
  });

  it('no stream for the subject, or the wrong stream, is a failed attempt saying so', async () => {
    const app = await relay.svix.application.create({ name: 'nats-nostream' });
    const ep = await endpoint(app.id, { destination: destination({ subject: 'nobody.listens.{eventType}' }) });
    const msg = await relay.svix.message.create(app.id, { eventType: 'lost', payload: {} });
    await waitUntil('a failed attempt', async () => (await attempts(app.id, msg.id, ep)).some((a) => a.status === 2), 10_000);
    const failed = (await attempts(app.id, msg.id, ep)).find((a) => a.status === 2)!;
    assert.match(failed.response, /no JetStream stream takes subject nobody\.listens\.lost/);

    const prefix = 'wrong' + randomUUID().slice(0, 8);
    await stream(prefix);
    const wrong = await endpoint(app.id, { destination: destination({ subject: `${prefix}.x`, stream: 'SOMEOTHER' }) });
    const msg2 = await relay.svix.message.create(app.id, { eventType: 'lost', payload: {} });
    await waitUntil('a failed attempt', async () => (await attempts(app.id, msg2.id, wrong)).some((a) => a.status === 2), 10_000);
    assert.match((await attempts(app.id, msg2.id, wrong)).find((a) => a.status === 2)!.response, /stream/i);
  });

  it('wrong credentials are a failed attempt naming the refusal', async () => {
    const app = await relay.svix.application.create({ name: 'nats-auth' });
    const ep = await endpoint(app.id, { destination: destination({ password: 'not-the-password' }) });
    const msg = await relay.svix.message.create(app.id, { eventType: 'auth.check', payload: {} });
    await waitUntil('a failed attempt', async () => (await attempts(app.id, msg.id, ep)).some((a) => a.status === 2), 10_000);
    assert.match((await attempts(app.id, msg.id, ep)).find((a) => a.status === 2)!.response, /authorization violation/i);
  });

  it('10,000 messages: every message id stored exactly once (the stream dedupes on Nats-Msg-Id)', async (t) => {
    const app = await relay.svix.application.create({ name: 'nats-bulk' });
    const prefix = 'bulk' + randomUUID().slice(0, 8);
    const name = await stream(prefix);
    const ep = await endpoint(app.id, { destination: destination({ subject: `${prefix}.{eventType}`, stream: name }), maxInFlight: 64 });
    const ids = await sendMany(relay, app.id, 10_000);
    await allSucceeded(relay, app.id, ep, ids.length);
    const held = await streamIds(name);
    t.diagnostic(`${held.length} stored for ${ids.length} messages, ${(await failedAttempts(relay, app.id, ep)).length} failed attempts`);
    const { missing, duplicates, strangers } = tally(ids, held);
    assert.deepEqual({ missing: missing.slice(0, 3), missing_count: missing.length, duplicates, strangers }, { missing: [], missing_count: 0, duplicates: 0, strangers: 0 });
  });

  it('NATS down from the start: attempts fail naming the refused connection, then every message is stored once after it starts', async () => {
    const app = await relay.svix.application.create({ name: 'nats-down' });
    const prefix = 'down' + randomUUID().slice(0, 8);
    const name = await stream(prefix);
    await nc.close();
    await nats.stop();
    const ep = await endpoint(app.id, { destination: destination({ subject: `${prefix}.{eventType}` }) });
    const ids = await sendMany(relay, app.id, 50, 8);
    await failureMatching(relay, app.id, ep, new RegExp(`nats ${nats.address}: .*(CONNECTION_REFUSED|ECONNREFUSED)`));
    await nats.start();
    await connectReader();
    await waitUntil('the stream recovered', async () => jsm.streams.info(name).then(() => true, () => false), 20_000);
    await allSucceeded(relay, app.id, ep, ids.length, 30_000);
    const { missing, duplicates, strangers } = tally(ids, await streamIds(name));
    assert.deepEqual({ missing, duplicates, strangers }, { missing: [], duplicates: 0, strangers: 0 });
  });

  it('retries while NATS is down and delivers once it is back, each message stored once', async () => {
    const app = await relay.svix.application.create({ name: 'nats-restart' });
    const prefix = 'restart' + randomUUID().slice(0, 8);
    const name = await stream(prefix);
    const ep = await endpoint(app.id, { destination: destination({ subject: `${prefix}.{eventType}` }) });
    await succeeded(app.id, (await relay.svix.message.create(app.id, { eventType: 'warm', payload: {} })).id, ep);

    await nc.close();
    await nats.stop();
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) ids.push((await relay.svix.message.create(app.id, { eventType: 'outage', payload: { i } })).id);
    await waitUntil('failed attempts while NATS is down', async () => (await attempts(app.id, ids[0], ep)).some((a) => a.status === 2), 10_000);
    await nats.start();
    await connectReader();
    // JetStream recovers its streams from the store dir a moment after the port opens.
    await waitUntil('the stream recovered', async () => jsm.streams.info(name).then(() => true, () => false), 20_000);

    await waitUntil('every message delivered after the restart', async () => {
      for (const id of ids) if (!(await attempts(app.id, id, ep)).some((a) => a.status === 0)) return false;
      return true;
    }, 30_000);
    const got = (await stored(name)).map((m) => m.header.get('Nats-Msg-Id'));
    assert.deepEqual(got.slice(1).sort(), [...ids].sort());
  });

  it('over TLS, dials the checked address but verifies the certificate against the name in the address', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hookrelay-nats-tls-'));
    const [certFile, keyFile] = [join(dir, 'cert.pem'), join(dir, 'key.pem')];
    const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost'], { encoding: 'utf8' });
    assert.equal(made.status, 0, made.stderr);
    const secure = await startNats({ tls: { certFile, keyFile } });
    try {
      const caCert = readFileSync(certFile, 'utf8');
      const admin = await connect({ servers: `localhost:${secure.port}`, tls: { ca: caCert } });
      await (await admin.jetstreamManager()).streams.add({ name: 'SECURE', subjects: ['secure.>'] });
      await admin.close();

      const app = await relay.svix.application.create({ name: 'nats-tls' });
      const trusted = await endpoint(app.id, { destination: { type: 'nats', address: `localhost:${secure.port}`, subject: 'secure.{eventType}', tls: { caCert }, timeoutMs: 2000 } });
      const untrusted = await endpoint(app.id, { destination: { type: 'nats', address: `localhost:${secure.port}`, subject: 'secure.{eventType}', tls: true, timeoutMs: 2000 } });
      const msg = await relay.svix.message.create(app.id, { eventType: 'tls', payload: { secure: true } });
      const list = await succeeded(app.id, msg.id, trusted);
      assert.equal(JSON.parse(list.find((a) => a.status === 0)!.response).stream, 'SECURE');
      await waitUntil('a failed attempt without the CA', async () => (await attempts(app.id, msg.id, untrusted)).some((a) => a.status === 2), 10_000);
      assert.match((await attempts(app.id, msg.id, untrusted)).find((a) => a.status === 2)!.response, /certificate/i);
    } finally {
      await secure.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
