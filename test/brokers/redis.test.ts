import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { allSucceeded, failedAttempts, failureMatching, sendMany, tally } from '../helpers/broker-bulk.js';
import { brokerSkip, startRedis, type TestBroker } from '../helpers/brokers.js';
import { startRelay, testStoreKind, type TestRelay } from '../helpers/relay.js';
import { makeTestCa } from '../helpers/test-ca.js';
import { waitUntil } from '../helpers/wait.js';

const PASSWORD = 'redis-pass-' + randomUUID();
/** An ACL user that may write to `allowed:*` keys only. */
const WRITER = 'writer';
const WRITER_PASSWORD = 'writer-pass-' + randomUUID();

/** A stream entry as Redis holds it: field names and values, values as bytes. */
type Entry = { id: string; fields: Map<string, Buffer> };

describe('redis destination (real redis-server)', { skip: brokerSkip('redis-server', 'redis.sh') }, () => {
  let redis: TestBroker;
  let relay: TestRelay;
  let reader: Redis;

  before(async () => {
    redis = await startRedis({ password: PASSWORD, users: [`${WRITER} on >${WRITER_PASSWORD} ~allowed:* +@all`] });
    // Retries long enough to outlast a server restart.
    relay = await startRelay({ retrySchedule: '0,200ms,300ms,500ms,1s,1s,2s,2s,2s,2s', circuitCooldown: '1s', circuitMaxCooldown: '2s' });
    reader = new Redis({ host: '127.0.0.1', port: redis.port, password: PASSWORD, lazyConnect: true, maxRetriesPerRequest: 1 });
    reader.on('error', () => undefined);
    await reader.connect();
  });
  after(async () => {
    reader?.disconnect();
    await relay?.close();
    await redis?.close();
  });

  const destination = (extra: Record<string, unknown> = {}) => ({ type: 'redis', address: redis.address, password: PASSWORD, stream: 'webhooks', timeoutMs: 2000, ...extra });

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

  async function entries(stream: string): Promise<Entry[]> {
    const raw = (await reader.callBuffer('XRANGE', [stream, '-', '+'])) as [Buffer, Buffer[]][];
    return raw.map(([id, flat]) => {
      const fields = new Map<string, Buffer>();
      for (let i = 0; i < flat.length; i += 2) fields.set(flat[i].toString(), flat[i + 1]);
      return { id: id.toString(), fields };
    });
  }

  /** The `message-id` field of every entry of the stream, read in pages. */
  async function streamIds(stream: string): Promise<string[]> {
    const out: string[] = [];
    for (let start = '-'; ; ) {
      const page = (await reader.xrange(stream, start, '+', 'COUNT', 1000)) as [string, string[]][];
      for (const [, fields] of page) out.push(fields[fields.indexOf('message-id') + 1]);
      if (page.length < 1000) return out;
      start = '(' + page.at(-1)![0];
    }
  }

  async function sendRaw(appId: string, body: string): Promise<string> {
    const created = await relay.api('POST', `/api/v1/app/${appId}/msg`, undefined, { rawBody: body, headers: { 'content-type': 'application/json' } });
    assert.equal(created.status, 202, created.text);
    return created.body.id;
  }

  it('validates the destination (422 naming the field), names the endpoint redis://…, and never returns the password', async () => {
    const app = await relay.svix.application.create({ name: 'redis-config' });
    const bad = await relay.api('POST', `/api/v1/app/${app.id}/endpoint`, { destination: destination({ stream: 'webhooks:{topic}' }) });
    assert.equal(bad.status, 422, bad.text);
    assert.deepEqual(bad.body.detail[0].loc, ['body', 'destination', 'stream']);
    const badAddress = await relay.api('POST', `/api/v1/app/${app.id}/endpoint`, { destination: destination({ address: 'redis://localhost' }) });
    assert.equal(badAddress.status, 422, badAddress.text);
    assert.deepEqual(badAddress.body.detail[0].loc, ['body', 'destination', 'address']);

    const clientKey = '-----BEGIN PRIVATE KEY-----\nsecret-' + randomUUID() + '\n-----END PRIVATE KEY-----';
    const created = await relay.api('POST', `/api/v1/app/${app.id}/endpoint`, {
      destination: destination({ tls: { clientCert: '-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----', clientKey }, maxLen: 1000 }),
    });
    assert.equal(created.status, 201, created.text);
    assert.equal(created.body.url, `redis://${redis.address}/0/webhooks`);
    assert.equal(created.body.destination.maxLen, 1000);
    const fetched = await relay.api('GET', `/api/v1/app/${app.id}/endpoint/${created.body.id}`);
    const listed = await relay.api('GET', `/api/v1/app/${app.id}/endpoint`);
    for (const shown of [created.text, fetched.text, listed.text]) {
      assert.ok(!shown.includes(PASSWORD) && !shown.includes(clientKey), `a secret came back: ${shown}`);
    }
    // Sealed at rest: neither the database file nor its WAL holds them in clear.
    if (testStoreKind() === 'sqlite') {
      for (const file of readdirSync(relay.dir)) {
        const bytes = readFileSync(join(relay.dir, file));
        for (const secret of [PASSWORD, clientKey]) assert.ok(!bytes.includes(secret), `${file} holds a secret in clear`);
      }
    }
    assert.equal((await relay.api('DELETE', `/api/v1/app/${app.id}/endpoint/${created.body.id}`)).status, 204);
  });

  it('refuses a broker address the egress policy does not allow, when the endpoint is saved', async () => {
    const strict = await startRelay({ allowNetworks: '' });
    try {
      const app = await strict.svix.application.create({ name: 'redis-egress' });
      const refused = await strict.api('POST', `/api/v1/app/${app.id}/endpoint`, { destination: destination() });
      assert.equal(refused.status, 422, refused.text);
      assert.match(refused.text, /refused/);
    } finally {
      await strict.close();
    }
  });

  it('adds one stream entry per message: message id, event type, headers and the exact payload bytes', async () => {
    const app = await relay.svix.application.create({ name: 'redis-exact' });
    const stream = 'orders:' + randomUUID();
    const ep = await endpoint(app.id, { destination: destination({ stream: stream + ':{eventType}' }), headers: { 'X-Tenant': 'acme' } });
    // Spacing, key order, a big integer, 1.0 and non-ASCII text: JSON.parse + stringify would change every one.
    const payload = '{ "total":1.0,\n  "id": 820982911946154508, "note":"naïve café ☃ 𝄞", "a":{"z":1,"b":[ ]} }';
    const body = `{"eventType":"order.created","payload":${payload}}`;
    const msgId = await sendRaw(app.id, body);

    const list = await succeeded(app.id, msgId, ep);
    const [entry] = await entries(`${stream}:order.created`);
    assert.ok(entry, 'no entry in the stream');
    assert.deepEqual([...entry.fields.keys()], ['message-id', 'event-type', 'headers', 'payload']);
    assert.equal(entry.fields.get('message-id')!.toString(), msgId);
    assert.equal(entry.fields.get('event-type')!.toString(), 'order.created');
    assert.ok(entry.fields.get('payload')!.equals(Buffer.from(payload)), `payload bytes differ: ${entry.fields.get('payload')}`);
    assert.deepEqual(JSON.parse(entry.fields.get('headers')!.toString()), {
      'x-tenant': 'acme',
      'content-type': 'application/json',
      'webhook-id': msgId,
      'x-hookrelay-event-type': 'order.created',
    });
    // The attempt records Redis' answer: the entry id.
    const success = list.find((a) => a.status === 0)!;
    assert.equal(success.responseStatusCode, 200);
    assert.deepEqual(JSON.parse(success.response), { stream: `${stream}:order.created`, id: entry.id });
  });

  it('trims the stream with MAXLEN ~ when maxLen is set', async () => {
    const app = await relay.svix.application.create({ name: 'redis-maxlen' });
    const stream = 'trimmed:' + randomUUID();
    const ep = await endpoint(app.id, { destination: destination({ stream, maxLen: 1 }) });
    const ids: string[] = [];
    for (let i = 0; i < 300; i++) ids.push((await relay.svix.message.create(app.id, { eventType: 'tick', payload: { i } })).id);
    await succeeded(app.id, ids.at(-1)!, ep);
    await waitUntil('every message delivered', async () => {
      for (const id of ids) if (!(await attempts(app.id, id, ep)).some((a) => a.status === 0)) return false;
      return true;
    }, 30_000);
    // `~` lets Redis trim whole macro nodes only (100 entries each by default): fewer than were added, not exactly 1.
    const length = await reader.xlen(stream);
    assert.ok(length < 300, `the stream was not trimmed: ${length} entries`);
  });

  it('a wrong password is a failed attempt naming the refusal, then succeeds once the endpoint is fixed', async () => {
    const app = await relay.svix.application.create({ name: 'redis-auth' });
    const stream = 'auth:' + randomUUID();
    const ep = await endpoint(app.id, { destination: destination({ stream, password: 'not-the-password' }) });
    const msg = await relay.svix.message.create(app.id, { eventType: 'auth.check', payload: { ok: true } });
    const failed = await waitUntil('a failed attempt', async () => (await attempts(app.id, msg.id, ep)).find((a) => a.status === 2), 10_000);
    const detail = await relay.api('GET', `/api/v1/app/${app.id}/attempt/endpoint/${ep}?limit=10`);
    assert.match(detail.text, /WRONGPASS|invalid username-password/i, detail.text);
    assert.ok(failed);
    const fixed = await relay.api('PATCH', `/api/v1/app/${app.id}/endpoint/${ep}`, { destination: destination({ stream }) });
    assert.equal(fixed.status, 200, fixed.text);
    await succeeded(app.id, msg.id, ep);
    assert.equal((await entries(stream)).length, 1);
  });

  it('an ACL user: the right username and password deliver; a wrong password, or a key outside its patterns, is a failed attempt naming why', async () => {
    const app = await relay.svix.application.create({ name: 'redis-acl' });
    const stream = 'allowed:' + randomUUID();
    const writer = await endpoint(app.id, { destination: destination({ stream, username: WRITER, password: WRITER_PASSWORD }) });
    const wrong = await endpoint(app.id, { destination: destination({ stream, username: WRITER, password: 'not-the-password' }) });
    const denied = await endpoint(app.id, { destination: destination({ stream: 'forbidden:' + randomUUID(), username: WRITER, password: WRITER_PASSWORD }) });
    const msg = await relay.svix.message.create(app.id, { eventType: 'acl.check', payload: { ok: true } });
    await succeeded(app.id, msg.id, writer);
    await failureMatching(relay, app.id, wrong, /WRONGPASS/);
    await failureMatching(relay, app.id, denied, /NOPERM/);
    assert.deepEqual((await entries(stream)).map((e) => e.fields.get('message-id')!.toString()), [msg.id]);
  });

  it('over TLS with a client certificate: the CA and the certificate deliver; no CA, another server name or no client certificate fail naming why', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hookrelay-redis-tls-'));
    const ca = makeTestCa(dir);
    // Redis asks every client for a certificate signed by the CA (tls-auth-clients yes, its default).
    const secure = await startRedis({ tls: { certFile: ca.server.certFile, keyFile: ca.server.keyFile, caFile: ca.caFile } });
    try {
      const app = await relay.svix.application.create({ name: 'redis-tls' });
      const base = { type: 'redis', address: `localhost:${secure.port}`, stream: 'secure', timeoutMs: 2000 };
      const mtls = { caCert: ca.caCert, clientCert: ca.client.cert, clientKey: ca.client.key };
      const trusted = await endpoint(app.id, { destination: { ...base, tls: mtls } });
      const noCa = await endpoint(app.id, { destination: { ...base, tls: true } });
      const otherName = await endpoint(app.id, { destination: { ...base, tls: { ...mtls, serverName: 'redis.example.com' } } });
      const noClientCert = await endpoint(app.id, { destination: { ...base, tls: { caCert: ca.caCert } } });
      const msg = await relay.svix.message.create(app.id, { eventType: 'tls', payload: { secure: true } });

      const list = await succeeded(app.id, msg.id, trusted);
      assert.equal(JSON.parse(list.find((a) => a.status === 0)!.response).stream, 'secure');
      await failureMatching(relay, app.id, noCa, /self-signed certificate|unable to (get|verify)/i);
      await failureMatching(relay, app.id, otherName, /redis\.example\.com|altnames/i);
      // TLS 1.3: the server checks the client's certificate after the handshake and drops the connection (an alert, or a reset).
      await failureMatching(relay, app.id, noClientCert, new RegExp(`redis localhost:${secure.port}: .*(ECONNRESET|certificate required|Connection is closed|socket hang up)`));

      const tlsReader = new Redis({ host: '127.0.0.1', port: secure.port, tls: { ca: ca.caCert, cert: ca.client.cert, key: ca.client.key, servername: 'localhost' }, lazyConnect: true });
      try {
        await tlsReader.connect();
        const held = (await tlsReader.xrange('secure', '-', '+')) as [string, string[]][];
        assert.deepEqual(held.map(([, fields]) => fields[1]), [msg.id]);
      } finally {
        tlsReader.disconnect();
      }
    } finally {
      await secure.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('keeps one connection per endpoint and replaces it when the endpoint changes', async () => {
    const app = await relay.svix.application.create({ name: 'redis-pool' });
    const ep = await endpoint(app.id, { destination: destination({ stream: 'pool-a' }) });
    const clients = async () => String(await reader.call('CLIENT', 'LIST')).split('\n').filter((line: string) => / name=hookrelay /.test(line)).length;
    const before = await clients();
    for (let i = 0; i < 5; i++) await succeeded(app.id, (await relay.svix.message.create(app.id, { eventType: 'pool', payload: { i } })).id, ep);
    assert.equal(await clients(), before + 1, 'five deliveries to one endpoint should share one connection');
    const changed = await relay.api('PATCH', `/api/v1/app/${app.id}/endpoint/${ep}`, { destination: destination({ stream: 'pool-b' }) });
    assert.equal(changed.status, 200, changed.text);
    const msg = await relay.svix.message.create(app.id, { eventType: 'pool', payload: { changed: true } });
    await succeeded(app.id, msg.id, ep);
    assert.equal((await entries('pool-b')).length, 1);
    await waitUntil('the old connection closed', async () => (await clients()) === before + 1, 5_000);
  });

  it('10,000 messages: every message id on the stream, duplicates no more than failed attempts', async (t) => {
    const app = await relay.svix.application.create({ name: 'redis-bulk' });
    const stream = 'bulk:' + randomUUID();
    const ep = await endpoint(app.id, { destination: destination({ stream }), maxInFlight: 64 });
    const ids = await sendMany(relay, app.id, 10_000);
    await allSucceeded(relay, app.id, ep, ids.length);
    const held = await streamIds(stream);
    const failed = await failedAttempts(relay, app.id, ep);
    const { missing, duplicates, strangers } = tally(ids, held);
    t.diagnostic(`${held.length} entries for ${ids.length} messages: ${duplicates} duplicates, ${failed.length} failed attempts`);
    assert.equal(missing.length, 0, `${missing.length} messages missing from the stream, e.g. ${missing.slice(0, 3)}`);
    assert.equal(strangers, 0);
    // Redis does not dedupe: a record can be doubled only by a retry after a lost answer, i.e. after a failed attempt.
    assert.ok(duplicates <= failed.length, `${duplicates} duplicates but only ${failed.length} failed attempts`);
  });

  it('Redis down from the start: attempts fail naming the refused connection, then every message arrives once it starts', async () => {
    await redis.stop();
    const app = await relay.svix.application.create({ name: 'redis-down' });
    const stream = 'down:' + randomUUID();
    const ep = await endpoint(app.id, { destination: destination({ stream }) });
    const ids = await sendMany(relay, app.id, 50, 8);
    await failureMatching(relay, app.id, ep, new RegExp(`redis ${redis.address}: .*ECONNREFUSED`));
    await redis.start();
    await reader.connect().catch(() => undefined);
    await allSucceeded(relay, app.id, ep, ids.length, 30_000);
    const { missing, duplicates, strangers } = tally(ids, await streamIds(stream));
    // No XADD can have landed while the connection was refused: each message exactly once.
    assert.deepEqual({ missing, duplicates, strangers }, { missing: [], duplicates: 0, strangers: 0 });
  });

  it('retries while Redis is down and delivers once it is back, nothing lost and nothing doubled', async () => {
    const app = await relay.svix.application.create({ name: 'redis-restart' });
    const stream = 'restart:' + randomUUID();
    const ep = await endpoint(app.id, { destination: destination({ stream }) });
    await succeeded(app.id, (await relay.svix.message.create(app.id, { eventType: 'warm', payload: {} })).id, ep);

    await redis.stop();
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) ids.push((await relay.svix.message.create(app.id, { eventType: 'during.outage', payload: { i } })).id);
    await waitUntil('failed attempts while Redis is down', async () => (await attempts(app.id, ids[0], ep)).some((a) => a.status === 2), 10_000);
    await redis.start();
    await reader.connect().catch(() => undefined);

    await waitUntil('every message delivered after the restart', async () => {
      for (const id of ids) if (!(await attempts(app.id, id, ep)).some((a) => a.status === 0)) return false;
      return true;
    }, 30_000);
    const got = (await entries(stream)).map((e) => e.fields.get('message-id')!.toString());
    // Redis was down before any of these was sent, so no XADD of them can have landed twice.
    assert.deepEqual(got.slice(1).sort(), [...ids].sort());
  });
});
