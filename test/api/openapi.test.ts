import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { Svix } from 'svix';
import { startRelay, type TestRelay } from '../helpers/relay.js';
import { waitUntil } from '../helpers/wait.js';
import { recordingSvix } from './support.js';

/** Every operation the SDK sends in this suite, as the svix OpenAPI names it. */
const SDK_OPERATIONS = [
  'GET /api/v1/app',
  'POST /api/v1/app',
  'GET /api/v1/app/{app_id}',
  'PUT /api/v1/app/{app_id}',
  'PATCH /api/v1/app/{app_id}',
  'DELETE /api/v1/app/{app_id}',
  'GET /api/v1/event-type',
  'POST /api/v1/event-type',
  'GET /api/v1/event-type/{event_type_name}',
  'PUT /api/v1/event-type/{event_type_name}',
  'PATCH /api/v1/event-type/{event_type_name}',
  'DELETE /api/v1/event-type/{event_type_name}',
  'GET /api/v1/app/{app_id}/endpoint',
  'POST /api/v1/app/{app_id}/endpoint',
  'GET /api/v1/app/{app_id}/endpoint/{endpoint_id}',
  'PUT /api/v1/app/{app_id}/endpoint/{endpoint_id}',
  'PATCH /api/v1/app/{app_id}/endpoint/{endpoint_id}',
  'DELETE /api/v1/app/{app_id}/endpoint/{endpoint_id}',
  'GET /api/v1/app/{app_id}/endpoint/{endpoint_id}/secret',
  'POST /api/v1/app/{app_id}/endpoint/{endpoint_id}/secret/rotate',
  'GET /api/v1/app/{app_id}/endpoint/{endpoint_id}/headers',
  'PUT /api/v1/app/{app_id}/endpoint/{endpoint_id}/headers',
  'PATCH /api/v1/app/{app_id}/endpoint/{endpoint_id}/headers',
  'POST /api/v1/app/{app_id}/endpoint/{endpoint_id}/recover',
  'GET /api/v1/app/{app_id}/msg',
  'POST /api/v1/app/{app_id}/msg',
  'GET /api/v1/app/{app_id}/msg/{msg_id}',
  'DELETE /api/v1/app/{app_id}/msg/{msg_id}/content',
  'GET /api/v1/app/{app_id}/attempt/endpoint/{endpoint_id}',
  'GET /api/v1/app/{app_id}/attempt/msg/{msg_id}',
  'GET /api/v1/app/{app_id}/endpoint/{endpoint_id}/msg',
  'GET /api/v1/app/{app_id}/msg/{msg_id}/endpoint',
  'GET /api/v1/app/{app_id}/msg/{msg_id}/attempt/{attempt_id}',
  'POST /api/v1/app/{app_id}/msg/{msg_id}/endpoint/{endpoint_id}/resend',
  'GET /api/v1/health',
];

interface OpenApiDocument {
  openapi: string;
  info: { title: string; version: string };
  paths: Record<string, Record<string, { operationId: string; responses: Record<string, unknown>; parameters: { name: string; in: string }[]; security?: unknown[] }>>;
}

describe('OpenAPI document and health', () => {
  let relay: TestRelay;
  let doc: OpenApiDocument;
  before(async () => {
    relay = await startRelay();
    const response = await relay.api('GET', '/api/v1/openapi.json', undefined, { token: null });
    assert.equal(response.status, 200, response.text);
    doc = response.body;
  });
  after(() => relay.close());

  /** The documented operation a concrete request path matches, e.g. `GET /api/v1/app/{app_id}`. */
  function documented(method: string, path: string): string | null {
    for (const [template, operations] of Object.entries(doc.paths)) {
      const pattern = new RegExp('^' + template.replace(/\{[a-z_]+\}/g, '[^/]+') + '$');
      if (pattern.test(path) && operations[method.toLowerCase()]) return `${method} ${template}`;
    }
    return null;
  }

  it('is an OpenAPI 3.1 document, served without a token', () => {
    assert.match(doc.openapi, /^3\.1\./);
    assert.equal(typeof doc.info.title, 'string');
    assert.equal(typeof doc.info.version, 'string');
    const ids = Object.values(doc.paths).flatMap((ops) => Object.values(ops).map((op) => op.operationId));
    assert.equal(new Set(ids).size, ids.length, 'operationIds are unique');
  });

  it('documents every operation the SDK uses, with its path parameters and error responses', () => {
    for (const operation of SDK_OPERATIONS) {
      const [method, template] = operation.split(' ');
      const op = doc.paths[template]?.[method.toLowerCase()];
      assert.ok(op, `${operation} is missing from the document`);
      const params = [...template.matchAll(/\{([a-z_]+)\}/g)].map((m) => m[1]);
      for (const name of params) assert.ok(op.parameters.some((p) => p.name === name && p.in === 'path'), `${operation} lacks path parameter ${name}`);
      assert.ok(Object.keys(op.responses).some((status) => status.startsWith('2')), `${operation} documents no success response`);
      if (template !== '/api/v1/health') assert.ok(op.responses['401'], `${operation} documents no 401`);
      if (params.length > 0) assert.ok(op.responses['404'], `${operation} documents no 404`);
    }
  });

  it('matches what the SDK actually sends', async () => {
    const { svix, calls } = recordingSvix(relay);
    const app = await svix.application.create({ name: 'doc', uid: 'doc-app' });
    await svix.application.getOrCreate({ name: 'doc', uid: 'doc-app' });
    await svix.application.list({ limit: 1 });
    await svix.application.get('doc-app');
    await svix.application.upsert(app.id, { name: 'doc', uid: 'doc-app' });
    await svix.application.patch(app.id, { name: 'doc2' });
    await svix.eventType.create({ name: 'doc.event', description: 'd' });
    await svix.eventType.list({ includeArchived: true });
    await svix.eventType.get('doc.event');
    await svix.eventType.upsert('doc.event', { description: 'e' });
    await svix.eventType.patch('doc.event', { deprecated: true });
    await svix.eventType.delete('doc.event');
    // Nothing listens on port 9: attempts fail fast with a connection error, which is still an attempt.
    const ep = await svix.endpoint.create(app.id, { url: 'http://127.0.0.1:9/doc' });
    await svix.endpoint.list(app.id);
    await svix.endpoint.get(app.id, ep.id);
    await svix.endpoint.upsert(app.id, ep.id, { url: 'http://127.0.0.1:9/doc2' });
    await svix.endpoint.patch(app.id, ep.id, { description: 'x' });
    await svix.endpoint.getSecret(app.id, ep.id);
    await svix.endpoint.rotateSecret(app.id, ep.id);
    await svix.endpoint.getHeaders(app.id, ep.id);
    await svix.endpoint.setHeaders(app.id, ep.id, { headers: { 'X-A': '1' } });
    await svix.endpoint.patchHeaders(app.id, ep.id, { headers: { 'X-B': '2' } });
    await svix.endpoint.recover(app.id, ep.id, { since: new Date(Date.now() - 60_000) });
    const msg = await svix.message.create(app.id, { eventType: 'doc.event', payload: { a: 1 } });
    await svix.message.list(app.id, { eventTypes: ['doc.event'], before: new Date(Date.now() + 1000) });
    await svix.message.get(app.id, msg.id, { withContent: false });
    const attempt = await waitUntil('a first attempt', async () => (await svix.messageAttempt.listByEndpoint(app.id, ep.id, { withMsg: true })).data[0]);
    assert.equal(attempt.responseStatusCode, 0);
    await svix.messageAttempt.get(app.id, msg.id, attempt.id);
    await svix.messageAttempt.listByMsg(app.id, msg.id);
    await svix.messageAttempt.listAttemptedMessages(app.id, ep.id);
    await svix.messageAttempt.listAttemptedDestinations(app.id, msg.id);
    await svix.messageAttempt.resend(app.id, msg.id, ep.id);
    await svix.message.expungeContent(app.id, msg.id);
    await svix.health.get();
    await svix.endpoint.delete(app.id, ep.id);
    await svix.application.delete(app.id);

    const seen = new Set<string>();
    for (const call of calls) {
      assert.ok(call.status >= 200 && call.status < 300, `${call.method} ${call.path} → ${call.status}`);
      const operation = documented(call.method, call.path);
      assert.ok(operation, `${call.method} ${call.path} is not in the document`);
      seen.add(operation);
    }
    assert.deepEqual([...seen].sort(), [...SDK_OPERATIONS].sort(), 'the SDK sent exactly the listed operations');
  });

  it('serves the health routes without a token, and the SDK health check resolves', async () => {
    const live = await relay.api('GET', '/healthz', undefined, { token: null });
    assert.equal(live.status, 200);
    assert.equal(live.body.status, 'ok');
    const ready = await relay.api('GET', '/readyz', undefined, { token: null });
    assert.equal(ready.status, 200);
    assert.equal(ready.body.status, 'ready');
    assert.equal(ready.body.checks.store, 'ok');
    const health = await relay.api('GET', '/api/v1/health', undefined, { token: null });
    assert.equal(health.status, 204);
    assert.equal(health.text, '');
    await new Svix('no-token-needed-for-health', { serverUrl: relay.url }).health.get();
    for (const path of ['/healthz', '/readyz', '/api/v1/health', '/api/v1/openapi.json']) {
      const op = doc.paths[path]?.get;
      assert.ok(op, `${path} is documented`);
      assert.deepEqual(op.security, [], `${path} is documented as public`);
    }
  });

  it("gives a source's config per type, secrets write-only, and the shapes hold what the server takes and returns", async () => {
    const schemas = (doc as unknown as { components: { schemas: Record<string, any> } }).components.schemas;
    const create = doc.paths['/ingest/api/v1/source'].post as unknown as { requestBody: { content: Record<string, { schema: unknown }> } };
    assert.deepEqual(create.requestBody.content['application/json'].schema, { $ref: '#/components/schemas/IngestSourceIn' });
    const union = schemas.IngestSourceIn;
    assert.equal(union.discriminator.propertyName, 'type');
    assert.equal(union.oneOf.length, Object.keys(union.discriminator.mapping).length);
    for (const type of ['github', 'stripe', 'hmac', 'basic-auth', 'discord', 'generic-webhook']) assert.ok(union.discriminator.mapping[type], `${type} is a variant`);
    const github = schemas.IngestSourceConfigGithub;
    assert.deepEqual(github.required, ['secret']);
    assert.equal(github.properties.secret.writeOnly, true);
    assert.equal(github.properties.allowSha1.default, false);
    assert.equal(github.properties.maxBodyBytes.default, 1048576, 'the settings every source has are in each type');
    const basic = schemas.IngestSourceConfigBasicAuth;
    assert.equal(basic.properties.password.writeOnly, true);
    assert.equal(basic.properties.username.writeOnly, undefined, 'a user name is not a secret');
    assert.equal(schemas.IngestSourceOutGithub.properties.config.properties.secret, undefined, 'a returned config has no secret');

    // The document's schemas accept what the server accepts and describe what it returns.
    const ajv = new Ajv2020({ strict: false, validateFormats: false });
    ajv.addSchema({ $id: 'hookrelay-openapi', components: { schemas } });
    const sourceIn = ajv.getSchema('hookrelay-openapi#/components/schemas/IngestSourceIn')!;
    const sourceOut = ajv.getSchema('hookrelay-openapi#/components/schemas/IngestSourceOut')!;
    const body = { name: 'doc hmac', type: 'hmac', config: { secret: 'doc-secret', header: 'x-signature', prefix: 'sha256=', rateLimit: 50 } };
    assert.ok(sourceIn(body), JSON.stringify(sourceIn.errors));
    const created = await relay.api('POST', '/ingest/api/v1/source', body);
    assert.equal(created.status, 201, created.text);
    assert.ok(sourceOut(created.body), JSON.stringify(sourceOut.errors));
    assert.ok(!sourceIn({ ...body, config: { header: 'x-signature' } }), 'hmac without its secret is refused by the schema');
    assert.equal((await relay.api('POST', '/ingest/api/v1/source', { ...body, config: { header: 'x-signature' } })).status, 422, 'and by the server');
    assert.ok(!sourceIn({ ...body, config: { ...body.config, allowSha1: true } }), 'a field of another type is refused by the schema');
    assert.equal((await relay.api('POST', '/ingest/api/v1/source', { ...body, config: { ...body.config, allowSha1: true } })).status, 422, 'and by the server');
  });

  it('works with a serverUrl that ends in a slash', async () => {
    const svix = new Svix(relay.adminToken, { serverUrl: relay.url + '/' });
    const app = await svix.application.create({ name: 'slash' });
    assert.equal((await svix.application.get(app.id)).name, 'slash');
  });
});
