import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Client, Connection, defaultPayloadConverter } from '@temporalio/client';
import { codecOf } from '../../src/pipeline/destinations/temporal.js';
import { startRelay, type TestRelay } from '../helpers/relay.js';
import { waitUntil } from '../helpers/wait.js';
import { findTemporalCli, MISSING_CLI, pythonWithTemporalio, skipReason, startPythonWorker, startTemporalServer, startWorker, type TemporalServer, type TestWorker } from './harness.js';

const run = promisify(execFile);
const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const QUEUE = 'hookrelay-test';
const PY_QUEUE = 'hookrelay-test-python';
const KEY_ID = 'hookrelay-test-key';
const KEY = randomBytes(32).toString('hex');
const text = (bytes: Uint8Array | null | undefined) => Buffer.from(bytes ?? new Uint8Array()).toString('utf8');

const cli = findTemporalCli();
const pythonMissing = pythonWithTemporalio();

describe('temporal destination (real Temporal dev server and worker)', { skip: skipReason(cli ? null : MISSING_CLI) }, () => {
  let server: TemporalServer;
  let relay: TestRelay;
  let worker: TestWorker;
  let connection: Connection;
  let client: Client;

  before(async () => {
    if (!cli) throw new Error(`CI=true and ${MISSING_CLI}`);
    server = await startTemporalServer(cli);
    // Retries long enough to outlast a server restart.
    [relay, worker] = await Promise.all([startRelay({ retrySchedule: '0,300ms,500ms,1s,1s,2s,2s,3s,3s,3s,3s,3s' }), startWorker(server.address, QUEUE, codecOf({ keyId: KEY_ID, key: KEY }))]);
    connection = await Connection.connect({ address: server.address });
    client = new Client({ connection, dataConverter: { payloadCodecs: [codecOf({ keyId: KEY_ID, key: KEY })] } });
  });
  after(async () => {
    await worker?.shutdown();
    await relay?.close();
    await connection?.close();
    await server?.close();
  });

  const destination = (extra: Record<string, unknown> = {}) => ({ type: 'temporal', address: server.address, workflowType: 'echoWebhook', taskQueue: QUEUE, timeoutMs: 3000, ...extra });

  async function endpoint(appId: string, body: Record<string, unknown>): Promise<string> {
    const response = await relay.api('POST', `/api/v1/app/${appId}/endpoint`, body);
    assert.equal(response.status, 201, response.text);
    return response.body.id;
  }

  async function attempts(appId: string, msgId: string, endpointId: string) {
    const page = await relay.svix.messageAttempt.listByMsg(appId, msgId, { endpointId, limit: 250 });
    return [...page.data].sort((a, b) => a.timestamp.getTime() - b.timestamp.getTime() || a.id.localeCompare(b.id));
  }

  const succeeded = async (appId: string, msgId: string, endpointId: string, count = 1) =>
    (await waitUntil(`${count} successful attempt(s) of ${msgId} to ${endpointId}`, async () => {
      const list = await attempts(appId, msgId, endpointId);
      return list.filter((a) => a.status === 0).length >= count ? list : null;
    }, 20_000))!;

  async function startedInput(workflowId: string) {
    const history = await connection.workflowService.getWorkflowExecutionHistory({ namespace: 'default', execution: { workflowId } });
    return history.history!.events![0].workflowExecutionStartedEventAttributes!.input!.payloads!;
  }

  it('validates the destination (422 naming the field), names the endpoint temporal://…, and never returns its secrets', async () => {
    const app = await relay.svix.application.create({ name: 'temporal-config' });
    const bad = await relay.api('POST', `/api/v1/app/${app.id}/endpoint`, { destination: destination({ taskQueue: 'webhooks.{topic}' }) });
    assert.equal(bad.status, 422, bad.text);
    assert.deepEqual(bad.body.detail[0].loc, ['body', 'destination', 'taskQueue']);
    const badKey = await relay.api('POST', `/api/v1/app/${app.id}/endpoint`, { destination: destination({ encryption: { keyId: 'k', key: 'abc' } }) });
    assert.equal(badKey.status, 422, badKey.text);
    assert.deepEqual(badKey.body.detail[0].loc, ['body', 'destination', 'encryption', 'key']);

    const secrets = { apiKey: 'cloud-api-key-' + randomUUID(), key: KEY, clientKey: '-----BEGIN PRIVATE KEY-----\nsecret-' + randomUUID() + '\n-----END PRIVATE KEY-----' };
    const created = await relay.api('POST', `/api/v1/app/${app.id}/endpoint`, {
      destination: destination({
        address: 'acme.a1b2c.tmprl.cloud:7233',
        namespace: 'acme.a1b2c',
        apiKey: secrets.apiKey,
        encryption: { keyId: KEY_ID, key: secrets.key },
        tls: { serverName: 'acme.a1b2c.tmprl.cloud', clientCert: '-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----', clientKey: secrets.clientKey },
      }),
    });
    assert.equal(created.status, 201, created.text);
    assert.equal(created.body.url, 'temporal://acme.a1b2c.tmprl.cloud:7233/acme.a1b2c/echoWebhook');
    assert.equal(created.body.destination.type, 'temporal');
    assert.equal(created.body.destination.workflowId, '{messageId}');
    assert.equal(created.body.destination.tls.serverName, 'acme.a1b2c.tmprl.cloud');
    const fetched = await relay.api('GET', `/api/v1/app/${app.id}/endpoint/${created.body.id}`);
    for (const shown of [created.text, fetched.text]) for (const secret of Object.values(secrets)) assert.ok(!shown.includes(secret), `a secret came back: ${shown}`);
    // Not a target the other tests' readiness checks should wait on.
    assert.equal((await relay.api('DELETE', `/api/v1/app/${app.id}/endpoint/${created.body.id}`)).status, 204);
  });

  let sent: { appId: string; msgId: string; plain: string; queued: string; payload: Record<string, unknown>; firstRunId: string; queuedId: string; queuedRunId: string };

  it('starts a workflow whose one argument is {headers, data}, plain and AES-GCM encrypted, on a fixed or templated task queue', async () => {
    const app = await relay.svix.application.create({ name: 'temporal-api' });
    const plain = await endpoint(app.id, { destination: destination(), headers: { 'x-tenant': 'acme' } });
    const encrypted = await endpoint(app.id, { destination: destination({ workflowId: 'enc-{messageId}', encryption: { keyId: KEY_ID, key: KEY } }) });
    // No worker polls this queue: its workflow stays running, which the duplicate test uses.
    const queued = await endpoint(app.id, { destination: destination({ taskQueue: 'webhooks.{eventType}', workflowId: 'queued-{eventId}', argument: 'json-string' }) });
    const payload = { order: 1042, total: '10.50', note: 'naïve café ☃ 𝄞', marker: 'PLAINTEXT-' + randomUUID() };
    const eventId = 'evt-' + randomUUID();
    const msg = await relay.svix.message.create(app.id, { eventType: 'order.created', eventId, payload });

    const [plainAttempts, , queuedAttempts] = await Promise.all([succeeded(app.id, msg.id, plain), succeeded(app.id, msg.id, encrypted), succeeded(app.id, msg.id, queued)]);
    const headers = { 'content-type': 'application/json', 'webhook-id': msg.id, 'x-hookrelay-event-type': 'order.created' };
    assert.deepEqual(await client.workflow.getHandle(msg.id).result(), { headers: { 'x-tenant': 'acme', ...headers }, data: payload });
    assert.deepEqual(await client.workflow.getHandle(`enc-${msg.id}`).result(), { headers, data: payload });

    // The attempt records the run it started.
    const started = JSON.parse(plainAttempts[0].response);
    assert.equal(plainAttempts[0].responseStatusCode, 200);
    assert.equal(started.workflowId, msg.id);
    assert.equal(started.runId, (await client.workflow.getHandle(msg.id).describe()).runId);

    // What Temporal stored: plaintext JSON for the plain endpoint, binary/encrypted under the key id for the other.
    const [stored] = await startedInput(msg.id);
    assert.equal(text(stored.metadata!.encoding), 'json/plain');
    assert.ok(text(stored.data).includes(payload.marker));
    const [sealed] = await startedInput(`enc-${msg.id}`);
    assert.equal(text(sealed.metadata!.encoding), 'binary/encrypted');
    assert.equal(text(sealed.metadata!['encryption-key-id']), KEY_ID);
    assert.ok(!text(sealed.data).includes(payload.marker) && !text(sealed.data).includes('order.created'), 'the encrypted history holds plaintext');

    // Templated queue and id, argument as a JSON string (workers written for the forwarder take a str).
    const described = await client.workflow.getHandle(`queued-${eventId}`).describe();
    assert.equal(described.taskQueue, 'webhooks.order.created');
    assert.equal(described.status.name, 'RUNNING');
    const [argument] = await startedInput(`queued-${eventId}`);
    assert.deepEqual(JSON.parse(defaultPayloadConverter.fromPayload(argument) as string), { headers, data: payload });

    sent = { appId: app.id, msgId: msg.id, plain, queued, payload, firstRunId: started.runId, queuedId: `queued-${eventId}`, queuedRunId: described.runId };
    assert.equal(JSON.parse(queuedAttempts[0].response).runId, described.runId);
  });

  it('forwards a verified Shopify webhook set up with the CLI (docs/temporal.md quick start) into the workflow', async () => {
    const env = { PATH: process.env.PATH ?? '', HOOKRELAY_URL: relay.url, HOOKRELAY_ADMIN_TOKEN: relay.adminToken };
    const secret = 'shpss_' + randomUUID();
    const created = await run(process.execPath, [CLI, 'source', 'create', '--type', 'shopify', '--name', 'Shop', '--uid', 'shop', '--secret', secret], { env });
    const source = JSON.parse(created.stdout);
    const target = { type: 'temporal', address: server.address, namespace: 'default', workflowType: 'echoWebhook', taskQueue: QUEUE, workflowId: 'shopify-{header.x-shopify-webhook-id}', encryption: { keyId: KEY_ID, key: KEY } };
    const added = await run(process.execPath, [CLI, 'source', 'add-endpoint', 'shop', '--destination', JSON.stringify(target)], { env });
    assert.equal(JSON.parse(added.stdout).url, `temporal://${server.address}/default/echoWebhook`);

    const body = `{"id":${Date.now()},"total_price":"10.50","note":"naïve café"}\n`;
    const hmac = createHmac('sha256', secret).update(body).digest('base64');
    const webhookId = randomUUID();
    const answer = await fetch(source.ingestUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-shopify-topic': 'orders/create', 'x-shopify-hmac-sha256': hmac, 'x-shopify-shop-domain': 'acme.myshopify.com', 'x-shopify-webhook-id': webhookId, 'x-shopify-api-version': '2025-01' },
      body,
    });
    assert.equal(answer.status, 200);
    const { id: msgId } = (await answer.json()) as { id: string };

    const result = (await waitUntil('the Shopify workflow', async () => {
      try {
        return await client.workflow.getHandle(`shopify-${webhookId}`).result();
      } catch {
        return null;
      }
    }, 20_000)) as { headers: Record<string, string>; data: unknown };
    assert.deepEqual(result.data, JSON.parse(body));
    assert.deepEqual(result.headers, {
      'content-type': 'application/json',
      'x-shopify-topic': 'orders/create',
      'x-shopify-shop-domain': 'acme.myshopify.com',
      'x-shopify-webhook-id': webhookId,
      'x-shopify-api-version': '2025-01',
      'webhook-id': msgId,
      'x-hookrelay-event-type': 'orders.create',
      'x-hookrelay-source': source.id,
      'x-hookrelay-verified': 'true',
    });
  });

  it('hands a non-JSON webhook to the workflow as base64 of its exact bytes', async () => {
    const secret = 'hmac-' + randomUUID();
    const created = await relay.api('POST', '/ingest/api/v1/source', { name: 'form-hooks', type: 'hmac', config: { secret, header: 'x-signature' } });
    assert.equal(created.status, 201, created.text);
    const added = await relay.api('POST', `/ingest/api/v1/source/${created.body.id}/endpoint`, { destination: destination() });
    assert.equal(added.status, 201, added.text);
    const body = Buffer.from('name=caf%C3%A9&amount=10.50&raw=\u00ff', 'latin1');
    const answer = await fetch(created.body.ingestUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-signature': createHmac('sha256', secret).update(body).digest('hex') },
      body,
    });
    assert.equal(answer.status, 200);
    const { id: msgId } = (await answer.json()) as { id: string };
    const result = (await waitUntil('the form workflow', async () => {
      try {
        return await client.workflow.getHandle(msgId).result();
      } catch {
        return null;
      }
    }, 20_000)) as { headers: Record<string, string>; data: string };
    assert.equal(result.headers['content-type'], 'application/x-www-form-urlencoded');
    assert.ok(Buffer.from(result.data, 'base64').equals(body), 'the workflow did not get the exact bytes');
  });

  it('a resend of the same message starts no second workflow (closed or still running) and counts as delivered', async () => {
    const { appId, msgId, plain, queued } = sent;
    for (const endpointId of [plain, queued]) {
      const resend = await relay.api('POST', `/api/v1/app/${appId}/msg/${msgId}/endpoint/${endpointId}/resend`, {});
      assert.equal(resend.status, 202, resend.text);
    }
    for (const [endpointId, id, runId] of [
      [plain, msgId, sent.firstRunId],
      [queued, sent.queuedId, sent.queuedRunId],
    ]) {
      const list = await succeeded(appId, msgId, endpointId, 2);
      assert.equal(list.length, 2);
      assert.deepEqual(JSON.parse(list[1].response), { workflowId: id, runId: null, alreadyStarted: true });
      // Still the one run: a second start would be the latest run of this id.
      assert.equal((await client.workflow.getHandle(id).describe()).runId, runId);
      // Visibility is written asynchronously: wait for the first run to show, then there must be no other.
      const runs = await waitUntil(`the runs of ${id} in visibility`, async () => {
        const found: string[] = [];
        for await (const execution of client.workflow.list({ query: `WorkflowId = '${id}'` })) found.push(execution.runId);
        return found.length > 0 ? found : null;
      });
      assert.deepEqual(runs, [runId]);
    }
  });

  it('keeps the payload exact to the worker: a Python worker reads 820982911946154508 and 1.0, the history holds the bytes as sent (plain and encrypted)', { skip: skipReason(pythonMissing) }, async () => {
    if (pythonMissing) throw new Error(`CI=true and ${pythonMissing}`);
    const pyWorker = await startPythonWorker(server.address, PY_QUEUE);
    try {
      const app = await relay.svix.application.create({ name: 'temporal-exact' });
      const toPython = await endpoint(app.id, { destination: destination({ workflowType: 'exactWebhook', taskQueue: PY_QUEUE, workflowId: 'exact-{messageId}' }) });
      // No worker polls this queue: the test reads what Temporal stored.
      const sealedEndpoint = await endpoint(app.id, { destination: destination({ taskQueue: 'exact-unpolled', workflowId: 'exact-enc-{messageId}', encryption: { keyId: KEY_ID, key: KEY } }) });
      const payload = '{ "id": 820982911946154508, "f": 1.0, "s": "caf\u00e9 \ud83c\udf89", "big": 12345678901234567890 }';
      const sentMessage = await relay.api('POST', `/api/v1/app/${app.id}/msg`, undefined, { rawBody: `{"eventType":"order.created","payload":${payload}}`, headers: { 'content-type': 'application/json' } });
      assert.equal(sentMessage.status, 202, sentMessage.text);
      const msgId = sentMessage.body.id as string;
      await Promise.all([succeeded(app.id, msgId, toPython), succeeded(app.id, msgId, sealedEndpoint)]);

      const read = await client.workflow.getHandle(`exact-${msgId}`).result();
      assert.deepEqual(read, { id: '820982911946154508', idType: 'int', f: '1.0', s: 'café 🎉', webhookId: msgId });

      const [plain] = await startedInput(`exact-${msgId}`);
      assert.ok(text(plain.data).endsWith(`"data":${payload}}`), text(plain.data));
      const [sealed] = await startedInput(`exact-enc-${msgId}`);
      assert.equal(text(sealed.metadata!.encoding), 'binary/encrypted');
      const [opened] = await codecOf({ keyId: KEY_ID, key: KEY }).decode([sealed]);
      assert.equal(text(opened.metadata!.encoding), 'json/plain');
      assert.ok(text(opened.data).endsWith(`"data":${payload}}`), text(opened.data));
    } finally {
      await pyWorker.shutdown();
    }
  });

  it('the same signed Shopify webhook sent again after the dedupe window starts no second workflow (workflowId from X-Shopify-Webhook-Id)', async () => {
    const secret = 'shpss_' + randomUUID();
    const created = await relay.api('POST', '/ingest/api/v1/source', { name: 'shop-again', type: 'shopify', config: { secret, dedupeWindowSeconds: 1 } });
    assert.equal(created.status, 201, created.text);
    const source = created.body;
    const added = await relay.api('POST', `/ingest/api/v1/source/${source.id}/endpoint`, { destination: destination({ workflowId: 'shopify-{header.x-shopify-webhook-id}' }) });
    assert.equal(added.status, 201, added.text);
    const body = '{"id":820982911946154508,"total_price":"10.50"}';
    const webhookId = randomUUID();
    const send = () =>
      fetch(source.ingestUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-shopify-topic': 'orders/create', 'x-shopify-hmac-sha256': createHmac('sha256', secret).update(body).digest('base64'), 'x-shopify-webhook-id': webhookId },
        body,
      }).then(async (r) => ({ status: r.status, body: (await r.json()) as { id: string; duplicate: boolean } }));

    const first = await send();
    assert.equal(first.status, 200);
    const [firstAttempt] = await succeeded(source.appId, first.body.id, added.body.id);
    const workflowId = `shopify-${webhookId}`;
    assert.equal(JSON.parse(firstAttempt.response).workflowId, workflowId);
    const message = await relay.api('GET', `/api/v1/app/${source.appId}/msg/${first.body.id}`);
    assert.equal(message.body.eventId, webhookId, "the message's eventId is Shopify's webhook id");

    // Shopify sends it again once hookrelay's dedupe window has passed: a new message, but Temporal refuses a second start.
    const again = (await waitUntil('the dedupe window to end', async () => {
      const r = await send();
      return r.body.duplicate === false ? r : null;
    }, 5000, 100))!;
    assert.notEqual(again.body.id, first.body.id);
    const [secondAttempt] = await succeeded(source.appId, again.body.id, added.body.id);
    assert.deepEqual(JSON.parse(secondAttempt.response), { workflowId, runId: null, alreadyStarted: true });
    const runs = await waitUntil(`the runs of ${workflowId} in visibility`, async () => {
      const found: string[] = [];
      for await (const execution of client.workflow.list({ query: `WorkflowId = '${workflowId}'` })) found.push(execution.runId);
      return found.length > 0 ? found : null;
    });
    assert.deepEqual(runs, [JSON.parse(firstAttempt.response).runId]);
  });

  it('a {header.NAME} the message does not carry fails the attempt, naming the header, and parks it (no empty workflow id)', async () => {
    const app = await relay.svix.application.create({ name: 'temporal-missing-header' });
    const ep = await endpoint(app.id, { destination: destination({ workflowId: 'shop-{header.X-Shopify-Webhook-Id}' }) });
    const msg = await relay.svix.message.create(app.id, { eventType: 'order.created', payload: { no: 'headers' } });
    const [attempt] = (await waitUntil('the failed attempt', async () => {
      const list = await attempts(app.id, msg.id, ep);
      return list.length > 0 ? list : null;
    }))!;
    assert.equal(attempt.status, 2);
    assert.match(attempt.response, /workflowId: the message has no header x-shopify-webhook-id/);
    const destinations = await waitUntil('the delivery to be parked', async () => {
      const page = await relay.svix.messageAttempt.listAttemptedDestinations(app.id, msg.id);
      return page.data[0]?.status === 2 ? page : null;
    });
    assert.equal(destinations!.data.length, 1);
    assert.equal((await attempts(app.id, msg.id, ep)).length, 1, 'parked at once, not retried');
  });

  it('an address by host name is resolved and checked by the egress policy, then dialled at the checked address with the name as authority', async () => {
    const app = await relay.svix.application.create({ name: 'temporal-by-name' });
    // `localhost` often resolves to ::1 first while the dev server listens on 127.0.0.1 only: the IPv4 address is dialled.
    const byName = await endpoint(app.id, { destination: destination({ address: server.address.replace('127.0.0.1', 'localhost'), workflowId: 'by-name-{messageId}' }) });
    const msg = await relay.svix.message.create(app.id, { eventType: 'order.created', payload: { by: 'name' } });
    await succeeded(app.id, msg.id, byName);
    assert.deepEqual((await client.workflow.getHandle(`by-name-${msg.id}`).result()).data, { by: 'name' });
  });

  it('while Temporal is down: attempts fail with the reason, /readyz reports it but stays ready; after a restart the delivery succeeds', async () => {
    const target = `temporal://${server.address}/default`;
    const ready = await relay.api('GET', '/readyz');
    assert.equal(ready.status, 200);
    assert.equal(ready.body.destinations[target], 'ok');

    await worker.shutdown();
    await server.stop();
    const down = await relay.api('GET', '/readyz');
    assert.equal(down.status, 200);
    assert.equal(down.body.status, 'ready');
    assert.match(down.body.destinations[target], /UNAVAILABLE|ECONNREFUSED/);

    const app = await relay.svix.application.create({ name: 'temporal-outage' });
    const ep = await endpoint(app.id, { destination: destination() });
    const msg = await relay.svix.message.create(app.id, { eventType: 'order.created', payload: { during: 'outage' } });
    const failed = (await waitUntil('two failed attempts', async () => {
      const list = await attempts(app.id, msg.id, ep);
      return list.length >= 2 ? list : null;
    }, 15_000))!;
    for (const attempt of failed) {
      assert.equal(attempt.status, 2);
      assert.equal(attempt.responseStatusCode, 0);
      assert.match(attempt.response, new RegExp(`temporal ${server.address} namespace default: UNAVAILABLE`));
    }
    const pending = await relay.svix.messageAttempt.listAttemptedDestinations(app.id, msg.id);
    assert.equal(pending.data[0].status, 1, 'the delivery is still pending, not parked');

    await server.start();
    const list = await succeeded(app.id, msg.id, ep);
    const { runId } = JSON.parse(list.at(-1)!.response);
    const described = await client.workflow.getHandle(msg.id).describe();
    assert.equal(described.runId, runId);
    assert.equal(described.status.name, 'RUNNING'); // no worker any more: started, not yet run
    await waitUntil('/readyz to report the destination ok again', async () => (await relay.api('GET', '/readyz')).body.destinations[target] === 'ok', 10_000);
  });
});
