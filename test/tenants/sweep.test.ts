import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { startRelay, type ApiResponse, type TestRelay } from '../helpers/relay.js';
import { waitUntil } from '../helpers/wait.js';

/**
 * Tenant isolation, route by route. The routes come from the server's own OpenAPI document (generated from the route
 * table), so a route added later is swept too — and fails this test until it is classified below.
 *
 * Tenant B's key calls every route with tenant A's real ids: A's app in the path, and also B's own app with A's
 * endpoint, message, attempt or key in the path. Each call must be refused (403/404), leak none of A's ids or secrets,
 * and change nothing of A's. Then the same calls with A's own credentials must succeed, which proves the ids and bodies
 * were valid, so B was refused because of who it is, not because of a bad request.
 */

type Access =
  /** Reachable without a token. */
  | 'public'
  /** Global data any key may read (event types). */
  | 'global-read'
  /** The list of applications: an app key sees its own only. */
  | 'own-list'
  /** Scoped to `{app_id}`: the app's key may, another app's key gets 404. */
  | 'tenant'
  /** Operator only: every app key gets 403 (or 404 for another app's `{app_id}`). */
  | 'admin'
  /** Acts on the calling portal token itself (logout): any other token gets 403. */
  | 'self';

interface Route {
  access: Access;
  body?: unknown;
  /** The owner's successful call is tested elsewhere (a stream that stays open, an answer to a pending request). */
  ownerTestedIn?: string;
}

/** A public P-256 key (RFC 7515 appendix A.3's example point), registered on A's endpoints as an encryption key. */
const SWEEP_JWK = { kty: 'EC', crv: 'P-256', x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU', y: 'x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0' };

const ENDPOINT_ROUTES = (prefix: string, access: Access): Record<string, Route> => ({
  [`GET ${prefix}/endpoint`]: { access },
  [`POST ${prefix}/endpoint`]: { access, body: { url: 'http://127.0.0.1:9/new', description: 'made in the sweep' } },
  [`GET ${prefix}/endpoint/{endpoint_id}`]: { access },
  [`PUT ${prefix}/endpoint/{endpoint_id}`]: { access, body: { url: 'http://127.0.0.1:9/replaced' } },
  [`PATCH ${prefix}/endpoint/{endpoint_id}`]: { access, body: { description: 'patched' } },
  [`DELETE ${prefix}/endpoint/{endpoint_id}`]: { access },
  [`GET ${prefix}/endpoint/{endpoint_id}/secret`]: { access },
  [`POST ${prefix}/endpoint/{endpoint_id}/secret/rotate`]: { access, body: {} },
  [`GET ${prefix}/endpoint/{endpoint_id}/headers`]: { access },
  [`PUT ${prefix}/endpoint/{endpoint_id}/headers`]: { access, body: { headers: { 'x-sweep': '1' } } },
  [`PATCH ${prefix}/endpoint/{endpoint_id}/headers`]: { access, body: { headers: { 'x-sweep': '2' } } },
  [`POST ${prefix}/endpoint/{endpoint_id}/recover`]: { access, body: { since: new Date(Date.now() - 3_600_000).toISOString() } },
  // A's endpoints have no handshake (the re-trigger answers 409 for them); the owner's 202 is tested there.
  [`POST ${prefix}/endpoint/{endpoint_id}/verification`]: { access, ownerTestedIn: 'test/pipeline/handshake.test.ts' },
  [`GET ${prefix}/endpoint/{endpoint_id}/encryption-key`]: { access },
  [`POST ${prefix}/endpoint/{endpoint_id}/encryption-key`]: { access, body: { ...SWEEP_JWK, kid: 'added-in-the-sweep' } },
  [`DELETE ${prefix}/endpoint/{endpoint_id}/encryption-key/{kid}`]: { access },
  [`GET ${prefix}/endpoint/{endpoint_id}/transformation`]: { access },
  [`PATCH ${prefix}/endpoint/{endpoint_id}/transformation`]: { access, body: { code: 'function handler(w) { return w; }', enabled: false } },
});

const ROUTES: Record<string, Route> = {
  'GET /api/v1/health': { access: 'public' },
  'GET /healthz': { access: 'public' },
  'GET /readyz': { access: 'public' },
  'GET /api/v1/openapi.json': { access: 'public' },

  'GET /api/v1/app': { access: 'own-list' },
  'POST /api/v1/app': { access: 'admin', body: { name: 'made in the sweep' } },
  'GET /api/v1/app/{app_id}': { access: 'tenant' },
  'PUT /api/v1/app/{app_id}': { access: 'admin', body: { name: 'renamed', uid: 'tenant-a' } },
  'PATCH /api/v1/app/{app_id}': { access: 'admin', body: { name: 'patched' } },
  'DELETE /api/v1/app/{app_id}': { access: 'admin' },

  'POST /api/v1/auth/app-portal-access/{app_id}': { access: 'admin', body: { expiry: 3600 } },
  'POST /api/v1/auth/logout': { access: 'self' },
  'GET /api/v1/stats/overview': { access: 'admin' },

  'GET /api/v1/app/{app_id}/api-key': { access: 'admin' },
  'POST /api/v1/app/{app_id}/api-key': { access: 'admin', body: { name: 'minted in the sweep' } },
  'DELETE /api/v1/app/{app_id}/api-key/{key_id}': { access: 'admin' },

  'GET /api/v1/event-type': { access: 'global-read' },
  'POST /api/v1/event-type': { access: 'admin', body: { name: 'sweep.created', description: 'x' } },
  'GET /api/v1/event-type/{event_type_name}': { access: 'global-read' },
  'PUT /api/v1/event-type/{event_type_name}': { access: 'admin', body: { description: 'changed' } },
  'PATCH /api/v1/event-type/{event_type_name}': { access: 'admin', body: { description: 'patched' } },
  'DELETE /api/v1/event-type/{event_type_name}': { access: 'admin' },

  ...ENDPOINT_ROUTES('/api/v1/app/{app_id}', 'tenant'),
  'POST /api/v1/app/{app_id}/endpoint/{endpoint_id}/transformation/simulate': { access: 'tenant', body: { code: 'function handler(w) { return w; }', eventType: 'sweep.event', payload: {} } },

  'GET /api/v1/app/{app_id}/msg': { access: 'tenant' },
  'POST /api/v1/app/{app_id}/msg': { access: 'tenant', body: { eventType: 'sweep.event', payload: { n: 2 } } },
  'GET /api/v1/app/{app_id}/msg/{msg_id}': { access: 'tenant' },
  'DELETE /api/v1/app/{app_id}/msg/{msg_id}/content': { access: 'tenant' },
  'GET /api/v1/app/{app_id}/attempt/endpoint/{endpoint_id}': { access: 'tenant' },
  'GET /api/v1/app/{app_id}/attempt/msg/{msg_id}': { access: 'tenant' },
  'GET /api/v1/app/{app_id}/msg/{msg_id}/attempt/{attempt_id}': { access: 'tenant' },
  'DELETE /api/v1/app/{app_id}/msg/{msg_id}/attempt/{attempt_id}/content': { access: 'tenant' },
  'GET /api/v1/app/{app_id}/endpoint/{endpoint_id}/stats': { access: 'tenant' },
  'POST /api/v1/app/{app_id}/endpoint/{endpoint_id}/send-example': { access: 'tenant', body: { eventType: 'sweep.event' } },
  'POST /api/v1/app/{app_id}/endpoint/{endpoint_id}/replay-missing': { access: 'tenant', body: { since: new Date(Date.now() - 3_600_000).toISOString() } },
  'GET /api/v1/app/{app_id}/endpoint/{endpoint_id}/msg': { access: 'tenant' },
  'GET /api/v1/app/{app_id}/msg/{msg_id}/endpoint': { access: 'tenant' },
  'POST /api/v1/app/{app_id}/msg/{msg_id}/endpoint/{endpoint_id}/resend': { access: 'tenant' },

  // `hookrelay listen`: an app's key listens to its own app only (its stream and answers: test/cli/listen-command.test.ts).
  'POST /api/v1/app/{app_id}/listen': { access: 'tenant', body: { session: 'b-session' }, ownerTestedIn: 'test/cli/listen-command.test.ts' },
  'POST /api/v1/app/{app_id}/listen/{session}/answer': { access: 'tenant', body: { id: 'some-request', status: 200 }, ownerTestedIn: 'test/cli/listen-command.test.ts' },
  'DELETE /api/v1/app/{app_id}/listen/{session}': { access: 'tenant' },

  // Sources belong to the operator: a source creates its own application, and its verifier secrets are the operator's.
  // A key of a source's application reaches that application's endpoints and messages through /api/v1/app/… instead.
  'GET /ingest/api/v1/source': { access: 'admin' },
  'POST /ingest/api/v1/source': { access: 'admin', body: { name: 'sweep source', type: 'github', config: { secret: 'made-in-the-sweep' } } },
  'GET /ingest/api/v1/source/{source_id}': { access: 'admin' },
  'PUT /ingest/api/v1/source/{source_id}': { access: 'admin', body: { name: 'renamed', type: 'github', config: { secret: 'a-source-secret-xyz' } } },
  'DELETE /ingest/api/v1/source/{source_id}': { access: 'admin' },
  'POST /ingest/api/v1/source/{source_id}/token/rotate': { access: 'admin' },
  'GET /ingest/api/v1/source/{source_id}/verification-failures': { access: 'admin' },
  ...ENDPOINT_ROUTES('/ingest/api/v1/source/{source_id}', 'admin'),

  // Operational webhooks are the operator's: events about every tenant go there.
  'GET /api/v1/operational-webhook/endpoint': { access: 'admin' },
  'POST /api/v1/operational-webhook/endpoint': { access: 'admin', body: { url: 'http://127.0.0.1:9/ops-new' } },
  'GET /api/v1/operational-webhook/endpoint/{endpoint_id}': { access: 'admin' },
  'PUT /api/v1/operational-webhook/endpoint/{endpoint_id}': { access: 'admin', body: { url: 'http://127.0.0.1:9/ops-replaced' } },
  'DELETE /api/v1/operational-webhook/endpoint/{endpoint_id}': { access: 'admin' },
  'GET /api/v1/operational-webhook/endpoint/{endpoint_id}/secret': { access: 'admin' },
  'POST /api/v1/operational-webhook/endpoint/{endpoint_id}/secret/rotate': { access: 'admin', body: {} },
  'GET /api/v1/operational-webhook/endpoint/{endpoint_id}/headers': { access: 'admin' },
  'PUT /api/v1/operational-webhook/endpoint/{endpoint_id}/headers': { access: 'admin', body: { headers: { 'x-sweep': '1' } } },
};

const A_ENDPOINT_SECRET = 'whsec_' + Buffer.from('tenant-a-endpoint-secret-000001').toString('base64');
const A_SOURCE_SECRET = 'a-source-secret-xyz';

describe('tenant isolation: an API sweep with another tenant’s key', () => {
  let relay: TestRelay;
  let receiver: Receiver;
  /** A's ids by path parameter; `endpoint_id` under /ingest is the source's endpoint. */
  const a: Record<string, string> = {};
  let aKey = '';
  let bKey = '';
  let bPortal = '';
  let bApp = '';
  let operations: { method: string; path: string }[] = [];
  let listening: AbortController | undefined;

  before(async () => {
    relay = await startRelay();
    receiver = await startReceiver();
    const admin = async (method: string, path: string, body?: unknown) => {
      const response = await relay.api(method, path, body);
      assert.ok(response.status < 300, `${method} ${path}: ${response.status} ${response.text}`);
      return response.body;
    };
    await admin('POST', '/api/v1/event-type', { name: 'sweep.event', description: 'sweep' });
    a.app_id = (await admin('POST', '/api/v1/app', { name: 'tenant A', uid: 'tenant-a' })).id;
    a.endpoint_id = (await admin('POST', `/api/v1/app/${a.app_id}/endpoint`, { url: receiver.url, secret: A_ENDPOINT_SECRET, uid: 'a-endpoint' })).id;
    await admin('PUT', `/api/v1/app/${a.app_id}/endpoint/${a.endpoint_id}/headers`, { headers: { 'x-tenant': 'a' } });
    a.msg_id = (await admin('POST', `/api/v1/app/${a.app_id}/msg`, { eventType: 'sweep.event', eventId: 'a-event-1', payload: { secret: 'a-payload' } })).id;
    const attempts = await waitUntil('A’s first attempt', async () => {
      const { data } = await admin('GET', `/api/v1/app/${a.app_id}/attempt/msg/${a.msg_id}`);
      return data.length > 0 ? data : null;
    });
    a.attempt_id = attempts[0].id;
    a.event_type_name = 'sweep.event';
    const source = await admin('POST', '/ingest/api/v1/source', { name: 'A source', type: 'github', config: { secret: A_SOURCE_SECRET } });
    a.source_id = source.id;
    a.source_app = source.appId;
    a.ingest_token = source.ingestUrl.split('/').pop();
    a.source_endpoint = (await admin('POST', `/ingest/api/v1/source/${a.source_id}/endpoint`, { url: receiver.url })).id;
    // Port 9 (discard): its deliveries fail, so none reaches the receiver the sweep counts.
    a.kid = 'a-key';
    for (const path of [`/api/v1/app/${a.app_id}/endpoint/${a.endpoint_id}`, `/ingest/api/v1/source/${a.source_id}/endpoint/${a.source_endpoint}`]) {
      await admin('POST', `${path}/encryption-key`, { ...SWEEP_JWK, kid: a.kid });
    }
    a.operational_endpoint = (await admin('POST', '/api/v1/operational-webhook/endpoint', { url: 'http://127.0.0.1:9/ops' })).id;
    const createdA = await admin('POST', `/api/v1/app/${a.app_id}/api-key`, { name: 'A' });
    a.key_id = createdA.id;
    aKey = createdA.key;
    // A listens (for an event type nobody sends, so that nothing is delivered through it during the sweep).
    listening = new AbortController();
    const stream = await fetch(`${relay.url}/api/v1/app/${a.app_id}/listen`, {
      method: 'POST',
      headers: { authorization: `Bearer ${aKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ session: 'a-session', filterTypes: ['sweep.never'] }),
      signal: listening.signal,
    });
    assert.equal(stream.status, 200);
    await stream.body!.getReader().read();
    a.session = 'a-session';

    bApp = (await admin('POST', '/api/v1/app', { name: 'tenant B', uid: 'tenant-b' })).id;
    bKey = (await admin('POST', `/api/v1/app/${bApp}/api-key`, { name: 'B' })).key;
    bPortal = (await admin('POST', `/api/v1/auth/app-portal-access/${bApp}`, {})).token;

    const document = (await relay.api('GET', '/api/v1/openapi.json', undefined, { token: null })).body;
    operations = Object.entries(document.paths as Record<string, Record<string, unknown>>).flatMap(([path, methods]) =>
      Object.keys(methods).map((method) => ({ method: method.toUpperCase(), path })),
    );
  });

  after(async () => {
    listening?.abort();
    await relay?.close();
    await receiver?.close();
  });

  const routeOf = (op: { method: string; path: string }) => ROUTES[`${op.method} ${op.path}`];

  /** A's path with its ids (and `app_id` replaced when given). */
  const fill = (path: string, appId?: string) =>
    path.replace(/\{([a-z_]+)\}/g, (_, name: string) => {
      if (name === 'app_id' && appId) return appId;
      if (name === 'endpoint_id' && path.startsWith('/ingest/')) return a.source_endpoint;
      if (name === 'endpoint_id' && path.startsWith('/api/v1/operational-webhook/')) return a.operational_endpoint;
      const value = a[name];
      assert.ok(value, `the sweep has no value for {${name}} in ${path}: add one to the fixture`);
      return value;
    });

  /** What B must never see: A's secrets anywhere, and A's ids unless B itself sent them. */
  function assertNoLeak(response: ApiResponse, sent: string, what: string) {
    for (const secret of [A_ENDPOINT_SECRET, A_SOURCE_SECRET, aKey, a.ingest_token, 'a-payload']) {
      assert.ok(!response.text.includes(secret), `${what} leaked a secret of A: ${response.text}`);
    }
    for (const id of [a.app_id, 'tenant-a', a.endpoint_id, 'a-endpoint', a.msg_id, 'a-event-1', a.attempt_id, a.source_id, a.source_app, a.source_endpoint, a.key_id]) {
      if (!sent.includes(id)) assert.ok(!response.text.includes(id), `${what} leaked A's id ${id}: ${response.text}`);
    }
  }

  /** What an admin sees of A (and of the global state B must not change either). */
  async function snapshotOfA() {
    const get = async (path: string) => (await relay.api('GET', path)).body;
    const endpoints = [a.endpoint_id, a.source_endpoint];
    return {
      apps: await get('/api/v1/app?limit=250'),
      app: await get(`/api/v1/app/${a.app_id}`),
      endpoints: await get(`/api/v1/app/${a.app_id}/endpoint`),
      secrets: await Promise.all(endpoints.map((id) => get(`/api/v1/app/${id === a.endpoint_id ? a.app_id : a.source_app}/endpoint/${id}/secret`))),
      headers: await get(`/api/v1/app/${a.app_id}/endpoint/${a.endpoint_id}/headers`),
      encryptionKeys: await get(`/api/v1/app/${a.app_id}/endpoint/${a.endpoint_id}/encryption-key`),
      messages: await get(`/api/v1/app/${a.app_id}/msg`),
      attempts: await get(`/api/v1/app/${a.app_id}/attempt/msg/${a.msg_id}`),
      sources: await get('/ingest/api/v1/source'),
      sourceEndpoints: await get(`/ingest/api/v1/source/${a.source_id}/endpoint`),
      keys: await get(`/api/v1/app/${a.app_id}/api-key`),
      operational: await get('/api/v1/operational-webhook/endpoint'),
      eventTypes: await get('/api/v1/event-type?include_archived=true'),
    };
  }

  it('classifies every route the server documents (a new route must be added to the sweep)', () => {
    assert.ok(operations.length >= 50, `only ${operations.length} operations in the OpenAPI document`);
    const unclassified = operations.filter((op) => !routeOf(op)).map((op) => `${op.method} ${op.path}`);
    assert.deepEqual(unclassified, [], 'routes missing from the tenant sweep');
    const documented = new Set(operations.map((op) => `${op.method} ${op.path}`));
    assert.deepEqual(Object.keys(ROUTES).filter((key) => !documented.has(key)), [], 'the sweep lists routes the server does not serve');
  });

  /**
   * Every route with one of B's tokens. A portal token is also refused (403) on the routes its capabilities do not
   * grant, before the route looks for A's resource, so it may see 403 where an app key sees 404.
   */
  async function sweepAs(token: string, kind: 'key' | 'portal') {
    const before = await snapshotOfA();
    const delivered = receiver.received.length;
    let calls = 0;
    for (const op of operations) {
      const route = routeOf(op);
      const what = `${op.method} ${op.path} with B's ${kind}`;
      if (route.access === 'self') {
        // B's portal token would log itself out, which is its right (test/tenants/portal-access.test.ts).
        if (kind === 'portal') continue;
        const response = await relay.api(op.method, op.path, route.body, { token });
        calls++;
        assert.equal(response.status, 403, `${what}: ${response.text}`);
        continue;
      }
      if (route.access === 'public' || route.access === 'global-read') {
        const response = await relay.api(op.method, fill(op.path), undefined, { token });
        calls++;
        assert.equal(response.status < 300, true, `${what}: ${response.status} ${response.text}`);
        assertNoLeak(response, '', what);
        continue;
      }
      if (route.access === 'own-list') {
        const response = await relay.api(op.method, op.path, undefined, { token });
        calls++;
        assert.equal(response.status, 200, `${what}: ${response.text}`);
        assert.deepEqual(response.body.data.map((app: { id: string }) => app.id), [bApp]);
        assert.equal(response.body.iterator, null);
        assertNoLeak(response, '', what);
        continue;
      }
      // A's app by id and by uid; then B's own app with A's other ids, or, on operator routes, B's own app itself.
      const variants = [fill(op.path), fill(op.path, 'tenant-a')];
      if (op.path.includes('{app_id}') && (route.access === 'admin' || /\{(?!app_id)[a-z_]+\}/.test(op.path))) variants.push(fill(op.path, bApp));
      if (!op.path.includes('{app_id}') && route.access === 'tenant') assert.fail(`${op.method} ${op.path} is tenant-scoped but has no {app_id}`);
      for (const path of [...new Set(variants)]) {
        const response = await relay.api(op.method, path, route.body, { token });
        calls++;
        const expected = route.access === 'admin' || kind === 'portal' ? [403, 404] : [404];
        assert.ok(expected.includes(response.status), `${op.method} ${path} with B's ${kind} answered ${response.status}: ${response.text}`);
        assertNoLeak(response, path + JSON.stringify(route.body ?? ''), `${op.method} ${path}`);
      }
    }
    assert.ok(calls > 100, `only ${calls} calls`);
    assert.deepEqual(await snapshotOfA(), before, 'B changed something of A (or of the operator’s global state)');
    assert.equal(receiver.received.length, delivered, 'B made something be delivered to A’s endpoint');
  }

  it('refuses B’s key on every route that touches A, leaks nothing of A and changes nothing of A', () => sweepAs(bKey, 'key'));

  it('refuses B’s app portal token the same way', () => sweepAs(bPortal, 'portal'));

  it('the same calls with A’s own key (or, for operator routes, the admin token) succeed: the refusals were about tenancy', async () => {
    // Deletions last, deepest path first, then A's key, then A's app, so each call still finds what it names.
    const weight = (op: { method: string; path: string }) =>
      op.method !== 'DELETE' ? 0 : op.path === '/api/v1/app/{app_id}' ? 1000 : op.path.includes('/api-key/') ? 900 : 100 - op.path.split('/').length;
    const ordered = operations.filter((op) => ['tenant', 'admin'].includes(routeOf(op).access) && !routeOf(op).ownerTestedIn).sort((x, y) => weight(x) - weight(y));
    for (const op of ordered) {
      const route = routeOf(op);
      const path = fill(op.path);
      const response = await relay.api(op.method, path, route.body, { token: route.access === 'admin' ? relay.adminToken : aKey });
      assert.ok(response.status >= 200 && response.status < 300, `${op.method} ${path} as its owner answered ${response.status}: ${response.text}`);
    }
  });
});
