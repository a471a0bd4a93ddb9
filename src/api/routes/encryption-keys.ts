import { invalid, notFound } from '../../domain/errors.js';
import type { EncryptionKey, Endpoint } from '../../domain/types.js';
import { currentEncryptionKey, KeyProblem, registrableKey } from '../../pipeline/encryption.js';
import type { ApiContext } from '../context.js';
import { endpointOf } from '../context.js';
import type { Router } from '../router.js';
import { EncryptionKeyIn, EncryptionKeyOut, listOf } from '../schemas.js';
import { parse } from '../validation.js';
import type { EndpointScope } from './endpoints.js';

/** At most this many keys per endpoint: enough for a rotation or two in progress. */
export const MAX_ENCRYPTION_KEYS = 10;

const present = (endpoint: Endpoint) => {
  const current = currentEncryptionKey(endpoint.encryptionKeys);
  return (k: EncryptionKey) => ({ kid: k.kid, alg: k.alg, enc: 'A256GCM' as const, jwk: k.jwk, current: k === current, createdAt: new Date(k.createdAt).toISOString() });
};

/**
 * `…/endpoint/{id}/encryption-key` (hookrelay extension): the public keys an endpoint's owner registers so that its
 * deliveries carry the payload as a JWE only they can read. Deliveries use the newest key; removing a key is how a
 * rotation finishes.
 */
export function encryptionKeyRoutes(router: Router, ctx: ApiContext, scope: EndpointScope): void {
  const { tag } = scope;
  const base = `${scope.base}/:endpoint_id/encryption-key`;

  router.add({ method: 'GET', url: base, summary: 'List endpoint encryption keys', tag, status: 200, response: listOf(EncryptionKeyOut) }, async (request) => {
    const endpoint = await endpointOf(ctx, await scope.appOf(ctx, request), request);
    return { data: [...endpoint.encryptionKeys].reverse().map(present(endpoint)), iterator: null, prevIterator: null, done: true };
  });

  router.add({ method: 'POST', url: base, summary: 'Add endpoint encryption key', tag, status: 201, body: EncryptionKeyIn, response: EncryptionKeyOut }, async (request) => {
    const app = await scope.appOf(ctx, request);
    const endpoint = await endpointOf(ctx, app, request);
    const body = parse(EncryptionKeyIn, request.body, 'body');
    if (endpoint.destination) throw invalid(['body'], `payload encryption applies to HTTP endpoints; this endpoint delivers to a ${endpoint.destination.type} destination`);
    let key: EncryptionKey;
    try {
      key = registrableKey(body, ctx.now());
    } catch (error) {
      if (error instanceof KeyProblem) throw invalid(['body', ...error.path], error.msg);
      throw error;
    }
    const outcome = await ctx.store.addEndpointEncryptionKey(app.id, endpoint.id, key, MAX_ENCRYPTION_KEYS, ctx.now());
    if (outcome === 'duplicate') throw invalid(['body', 'kid'], `the endpoint already has a key with kid ${JSON.stringify(key.kid)}; choose another kid`);
    if (outcome === 'full') throw invalid(['body'], `the endpoint has ${MAX_ENCRYPTION_KEYS} keys, the most it may hold; delete an old one first`);
    return present({ ...endpoint, encryptionKeys: [...endpoint.encryptionKeys, key] })(key);
  });

  router.add({ method: 'DELETE', url: `${base}/:kid`, summary: 'Delete endpoint encryption key', tag, status: 204 }, async (request) => {
    const app = await scope.appOf(ctx, request);
    const endpoint = await endpointOf(ctx, app, request);
    const { kid } = request.params as { kid: string };
    if (!(await ctx.store.deleteEndpointEncryptionKey(app.id, endpoint.id, kid, ctx.now()))) throw notFound('encryption key', kid);
  });
}
