import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Kafka, logLevel, type Admin, type KafkaMessage } from 'kafkajs';
import { allSucceeded, failedAttempts, failureMatching, sendMany, tally } from '../helpers/broker-bulk.js';
import { kafkaSkip, startKafka, type TestBroker } from '../helpers/brokers.js';
import { startRelay, type TestRelay } from '../helpers/relay.js';
import { makeTestCa, type TestCa } from '../helpers/test-ca.js';
import { waitUntil } from '../helpers/wait.js';

const SASL_USER = 'hookrelay';
const SASL_PASSWORD = 'kafka-pass-' + randomUUID();

describe('kafka destination (real single-node KRaft broker)', { skip: kafkaSkip() }, () => {
  let kafka: TestBroker & { saslAddress: string | null; tlsAddress: string | null };
  let caDir: string;
  let ca: TestCa;
  let relay: TestRelay;
  let client: Kafka;
  let admin: Admin;

  before(async () => {
    caDir = mkdtempSync(join(tmpdir(), 'hookrelay-kafka-tls-'));
    ca = makeTestCa(caDir);
    const tls = { certFile: ca.server.certFile, keyFile: ca.server.keyFile, caFile: ca.caFile };
    [kafka, relay] = await Promise.all([startKafka({ saslUsers: { [SASL_USER]: SASL_PASSWORD }, tls }), startRelay({ retrySchedule: '0,200ms,300ms,500ms,1s,1s,2s,2s,2s,2s,2s,2s', circuitCooldown: '1s', circuitMaxCooldown: '2s' })]);
    client = new Kafka({ clientId: 'hookrelay-test', brokers: [kafka.address], logLevel: logLevel.NOTHING, retry: { retries: 10 } });
    admin = client.admin();
    await admin.connect();
  });
  after(async () => {
    await admin?.disconnect().catch(() => undefined);
    await relay?.close();
    await kafka?.close();
    if (caDir) rmSync(caDir, { recursive: true, force: true });
  });

  const destination = (extra: Record<string, unknown> = {}) => ({ type: 'kafka', brokers: [kafka.address], topic: 'webhooks', timeoutMs: 3000, ...extra });

  async function endpoint(appId: string, body: Record<string, unknown>): Promise<string> {
    const response = await relay.api('POST', `/api/v1/app/${appId}/endpoint`, body);
    assert.equal(response.status, 201, response.text);
    return response.body.id;
  }

  async function attempts(appId: string, msgId: string, endpointId: string) {
    const page = await relay.svix.messageAttempt.listByMsg(appId, msgId, { endpointId, limit: 250 });
    return [...page.data].sort((a, b) => a.timestamp.getTime() - b.timestamp.getTime() || a.id.localeCompare(b.id));
  }

  const delivered = (appId: string, ids: string[], endpointId: string) =>
    waitUntil(`${ids.length} message(s) delivered to ${endpointId}`, async () => {
      for (const id of ids) if (!(await attempts(appId, id, endpointId)).some((a) => a.status === 0)) return false;
      return true;
    }, 60_000);

  async function topic(): Promise<string> {
    const name = 'hr-' + randomUUID();
    await admin.createTopics({ topics: [{ topic: name, numPartitions: 1 }], waitForLeaders: true });
    return name;
  }

  /** Every record of the topic, read by a fresh consumer group from the beginning. */
  async function records(name: string, count: number): Promise<KafkaMessage[]> {
    const consumer = client.consumer({ groupId: 'test-' + randomUUID() });
    const got: KafkaMessage[] = [];
    await consumer.connect();
    try {
      await consumer.subscribe({ topic: name, fromBeginning: true });
      await consumer.run({ eachMessage: async ({ message }) => void got.push(message) });
      await waitUntil(`${count} record(s) on ${name}`, () => got.length >= count, 30_000);
    } finally {
      await consumer.disconnect();
    }
    return got;
  }

  /** The webhook-id header of every record on the topic (its offsets are contiguous: no transactions). */
  async function topicIds(name: string): Promise<string[]> {
    const total = (await admin.fetchTopicOffsets(name)).reduce((sum, p) => sum + Number(p.high) - Number(p.low), 0);
    return total === 0 ? [] : (await records(name, total)).map((r) => String(r.headers!['webhook-id']));
  }

  it('validates the destination (422 naming the field), names the endpoint kafka://…, and never returns the SASL password or TLS key', async () => {
    const app = await relay.svix.application.create({ name: 'kafka-config' });
    const bad = await relay.api('POST', `/api/v1/app/${app.id}/endpoint`, { destination: destination({ topic: 'orders/{eventType}' }) });
    assert.equal(bad.status, 422, bad.text);
    assert.deepEqual(bad.body.detail[0].loc, ['body', 'destination', 'topic']);
    const badBroker = await relay.api('POST', `/api/v1/app/${app.id}/endpoint`, { destination: destination({ brokers: [kafka.address, 'nope'] }) });
    assert.equal(badBroker.status, 422, badBroker.text);
    assert.deepEqual(badBroker.body.detail[0].loc, ['body', 'destination', 'brokers', 1]);

    const password = 'sasl-' + randomUUID();
    const clientKey = '-----BEGIN PRIVATE KEY-----\nsecret-' + randomUUID() + '\n-----END PRIVATE KEY-----';
    const created = await relay.api('POST', `/api/v1/app/${app.id}/endpoint`, {
      destination: destination({ sasl: { mechanism: 'scram-sha-512', username: 'hookrelay', password }, ssl: { clientCert: '-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----', clientKey } }),
    });
    assert.equal(created.status, 201, created.text);
    assert.equal(created.body.url, `kafka://${kafka.address}/webhooks`);
    assert.equal(created.body.destination.key, '{appId}');
    assert.equal(created.body.destination.sasl.username, 'hookrelay');
    const listed = await relay.api('GET', `/api/v1/app/${app.id}/endpoint`);
    for (const shown of [created.text, listed.text]) assert.ok(!shown.includes(password) && !shown.includes(clientKey), `a secret came back: ${shown}`);
    assert.equal((await relay.api('DELETE', `/api/v1/app/${app.id}/endpoint/${created.body.id}`)).status, 204);
  });

  it('refuses a broker address the egress policy does not allow, naming the list entry, when the endpoint is saved', async () => {
    const strict = await startRelay({ allowNetworks: '' });
    try {
      const app = await strict.svix.application.create({ name: 'kafka-egress' });
      const refused = await strict.api('POST', `/api/v1/app/${app.id}/endpoint`, { destination: destination({ brokers: ['kafka.example.com:9092', kafka.address] }) });
      assert.equal(refused.status, 422, refused.text);
      assert.deepEqual(refused.body.detail[0].loc, ['body', 'destination', 'brokers', 1]);
      assert.match(refused.body.detail[0].msg, /refused: 127\.0\.0\.1 is a loopback address/);
    } finally {
      await strict.close();
    }
  });

  it('produces one record per message: key = app id, hookrelay headers as record headers, the exact payload bytes', async () => {
    const app = await relay.svix.application.create({ name: 'kafka-exact' });
    const name = await topic();
    const ep = await endpoint(app.id, { destination: destination({ topic: name }), headers: { 'X-Tenant': 'acme' } });
    const payload = '{ "total":1.0,\n  "id": 820982911946154508, "note":"naïve café ☃ 𝄞" }';
    const created = await relay.api('POST', `/api/v1/app/${app.id}/msg`, undefined, { rawBody: `{"eventType":"order.created","payload":${payload}}`, headers: { 'content-type': 'application/json' } });
    assert.equal(created.status, 202, created.text);
    const msgId = created.body.id;
    await delivered(app.id, [msgId], ep);

    const [record] = await records(name, 1);
    assert.equal(record.key!.toString(), app.id);
    assert.ok(record.value!.equals(Buffer.from(payload)), `payload bytes differ: ${record.value}`);
    const headers = Object.fromEntries(Object.entries(record.headers ?? {}).map(([k, v]) => [k, String(v)]));
    assert.deepEqual(headers, { 'x-tenant': 'acme', 'content-type': 'application/json', 'webhook-id': msgId, 'x-hookrelay-event-type': 'order.created' });
    const success = (await attempts(app.id, msgId, ep)).find((a) => a.status === 0)!;
    assert.deepEqual(JSON.parse(success.response), { topic: name, partition: 0, offset: record.offset });
  });

  it('a topic that does not exist is a failed attempt naming it, delivered once the topic is created', async () => {
    const app = await relay.svix.application.create({ name: 'kafka-unknown' });
    const name = 'hr-missing-' + randomUUID();
    const ep = await endpoint(app.id, { destination: destination({ topic: name, key: '{eventType}' }) });
    const msg = await relay.svix.message.create(app.id, { eventType: 'late.topic', payload: { ok: true } });
    await waitUntil('a failed attempt', async () => (await attempts(app.id, msg.id, ep)).some((a) => a.status === 2), 20_000);
    const failed = (await attempts(app.id, msg.id, ep)).find((a) => a.status === 2)!;
    assert.match(failed.response, /topic/i, failed.response);
    await admin.createTopics({ topics: [{ topic: name, numPartitions: 1 }], waitForLeaders: true });
    await delivered(app.id, [msg.id], ep);
    const [record] = await records(name, 1);
    assert.equal(record.key!.toString(), 'late.topic');
  });

  it('SASL on its own listener: PLAIN and SCRAM-SHA-512 with the right password deliver; a wrong one is a failed attempt naming the refusal, delivered once fixed', async () => {
    const app = await relay.svix.application.create({ name: 'kafka-sasl' });
    const name = await topic();
    const viaSasl = (sasl: Record<string, string>) => destination({ brokers: [kafka.saslAddress], topic: name, sasl });
    const plain = await endpoint(app.id, { destination: viaSasl({ mechanism: 'plain', username: SASL_USER, password: SASL_PASSWORD }) });
    const scram = await endpoint(app.id, { destination: viaSasl({ mechanism: 'scram-sha-512', username: SASL_USER, password: SASL_PASSWORD }) });
    const wrong = await endpoint(app.id, { destination: viaSasl({ mechanism: 'plain', username: SASL_USER, password: 'not-the-password' }) });
    const msg = await relay.svix.message.create(app.id, { eventType: 'sasl.check', payload: { ok: true } });
    await delivered(app.id, [msg.id], plain);
    await delivered(app.id, [msg.id], scram);
    await failureMatching(relay, app.id, wrong, new RegExp(`kafka ${kafka.saslAddress}: .*SASL PLAIN authentication failed`));
    const fixed = await relay.api('PATCH', `/api/v1/app/${app.id}/endpoint/${wrong}`, { destination: viaSasl({ mechanism: 'plain', username: SASL_USER, password: SASL_PASSWORD }) });
    assert.equal(fixed.status, 200, fixed.text);
    await delivered(app.id, [msg.id], wrong);
    const got = (await records(name, 3)).map((r) => String(r.headers!['webhook-id']));
    assert.deepEqual(got, [msg.id, msg.id, msg.id]);
  });

  it('over TLS with a client certificate: the CA and the certificate deliver; no CA, another server name or no client certificate fail naming why', async () => {
    const app = await relay.svix.application.create({ name: 'kafka-tls' });
    const name = await topic();
    const viaTls = (ssl: unknown) => destination({ brokers: [kafka.tlsAddress], topic: name, ssl });
    const mtls = { caCert: ca.caCert, clientCert: ca.client.cert, clientKey: ca.client.key };
    const trusted = await endpoint(app.id, { destination: viaTls(mtls) });
    const noCa = await endpoint(app.id, { destination: viaTls(true) });
    const otherName = await endpoint(app.id, { destination: viaTls({ ...mtls, serverName: 'kafka.example.com' }) });
    const noClientCert = await endpoint(app.id, { destination: viaTls({ caCert: ca.caCert }) });
    const msg = await relay.svix.message.create(app.id, { eventType: 'tls.check', payload: { secure: true } });
    await delivered(app.id, [msg.id], trusted);
    await failureMatching(relay, app.id, noCa, new RegExp(`kafka ${kafka.tlsAddress}: .*(unable to (get|verify)|self-signed certificate)`));
    await failureMatching(relay, app.id, otherName, /kafka\.example\.com\. is not in the cert's altnames/);
    // The broker refuses the handshake without a client certificate (an alert, or a reset on TLS 1.3).
    await failureMatching(relay, app.id, noClientCert, new RegExp(`kafka ${kafka.tlsAddress}: .*(bad certificate|certificate required|ECONNRESET)`));
    const got = (await records(name, 1)).map((r) => String(r.headers!['webhook-id']));
    assert.deepEqual(got, [msg.id]);
  });

  it('10,000 messages: every message id on the topic, duplicates no more than failed attempts', async (t) => {
    const app = await relay.svix.application.create({ name: 'kafka-bulk' });
    const name = await topic();
    const ep = await endpoint(app.id, { destination: destination({ topic: name }), maxInFlight: 64 });
    const ids = await sendMany(relay, app.id, 10_000);
    await allSucceeded(relay, app.id, ep, ids.length, 120_000);
    const held = await topicIds(name);
    const failed = await failedAttempts(relay, app.id, ep);
    const { missing, duplicates, strangers } = tally(ids, held);
    t.diagnostic(`${held.length} records for ${ids.length} messages: ${duplicates} duplicates, ${failed.length} failed attempts`);
    assert.equal(missing.length, 0, `${missing.length} messages missing from the topic, e.g. ${missing.slice(0, 3)}`);
    assert.equal(strangers, 0);
    // The idempotent producer drops its own resends; a later attempt (a new producer) may add a record again.
    assert.ok(duplicates <= failed.length, `${duplicates} duplicates but only ${failed.length} failed attempts`);
  });

  it('the broker down from the start: attempts fail naming the refused connection, then every message arrives once it starts', async () => {
    const app = await relay.svix.application.create({ name: 'kafka-down' });
    const name = await topic();
    await admin.disconnect();
    await kafka.stop();
    const ep = await endpoint(app.id, { destination: destination({ topic: name }) });
    const ids = await sendMany(relay, app.id, 50, 8);
    await failureMatching(relay, app.id, ep, new RegExp(`kafka ${kafka.address}: .*ECONNREFUSED`));
    await kafka.start();
    admin = client.admin();
    await admin.connect();
    await allSucceeded(relay, app.id, ep, ids.length, 60_000);
    const { missing, duplicates, strangers } = tally(ids, await topicIds(name));
    // Nothing can have been written while connections were refused: each message exactly once.
    assert.deepEqual({ missing, duplicates, strangers }, { missing: [], duplicates: 0, strangers: 0 });
  });

  it('retries while the broker is down and delivers once it is back, each message once', async () => {
    const app = await relay.svix.application.create({ name: 'kafka-restart' });
    const name = await topic();
    const ep = await endpoint(app.id, { destination: destination({ topic: name }) });
    const warm = await relay.svix.message.create(app.id, { eventType: 'warm', payload: {} });
    await delivered(app.id, [warm.id], ep);

    await admin.disconnect();
    await kafka.stop();
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) ids.push((await relay.svix.message.create(app.id, { eventType: 'outage', payload: { i } })).id);
    await waitUntil('failed attempts while Kafka is down', async () => (await attempts(app.id, ids[0], ep)).some((a) => a.status === 2), 20_000);
    await kafka.start();
    admin = client.admin();
    await admin.connect();

    await delivered(app.id, ids, ep);
    const got = (await records(name, ids.length + 1)).map((r) => String(r.headers!['webhook-id']));
    // The broker was down before any of these was produced: none can have been written twice.
    assert.deepEqual(got.slice(1).sort(), [...ids].sort());
  });
});
