import { z } from 'zod';
import { compileFilter, FilterProblem } from '../../domain/content-filter.js';
import { HookrelayError, invalid, notFound } from '../../domain/errors.js';
import { DESTINATION_KINDS } from '../../pipeline/destinations/index.js';
import { validateDestination } from '../../pipeline/destinations/kinds.js';
import type { Endpoint, VerificationMode } from '../../domain/types.js';
import { pendingVerification, verificationAfter } from '../../domain/verification.js';
import { generateFor, schemeOf, shownSecret, type SigningScheme } from '../../signing/standard-webhooks.js';
import type { EndpointInput } from '../../store/store.js';
import { principalOf } from '../auth.js';
import type { FastifyRequest } from 'fastify';
import type { App } from '../../domain/types.js';
import { appOf, endpointOf, type ApiContext } from '../context.js';
import { currentSecret, presentEndpoint, presentPage } from '../present.js';
import type { Router } from '../router.js';
import {
  EndpointHeadersIn,
  EndpointHeadersOut,
  EndpointHeadersPatchIn,
  EndpointIn,
  EndpointOut,
  EndpointPatch,
  EndpointSecretOut,
  EndpointSecretRotateIn,
  EndpointUpdate,
  headerSetProblem,
  listOf,
  PageQuery,
  RecoverIn,
  RecoverOut,
  uidFromPath,
} from '../schemas.js';
import { parse } from '../validation.js';
import { encryptionKeyRoutes } from './encryption-keys.js';

const DAY_MS = 86_400_000;
const withPrefix = (secret: string) => (secret.startsWith('whsec_') ? secret : `whsec_${secret}`);

type Fields = z.output<typeof EndpointPatch>;

/**
 * The first signing secret of a new endpoint: the one given (HMAC only), else a new one of the scheme asked for.
 * An Ed25519 key pair is always generated here, so its private half is never sent over the API in either direction.
 */
function firstSecret(body: { secret?: string | null; signing?: SigningScheme }): string {
  if (body.signing === 'ed25519' && body.secret) throw invalid(['body', 'secret'], 'an ed25519 endpoint signs with a key pair hookrelay generates; leave secret out');
  return body.secret ? withPrefix(body.secret) : generateFor(body.signing ?? 'hmac');
}

function toInput(body: Partial<Fields>, base: Endpoint | null, defaults: { maxInFlight: number }, headers?: Record<string, string>): EndpointInput {
  const pick = <K extends keyof Fields, V>(key: K, fallback: V) => (body[key] !== undefined ? body[key] : fallback);
  const filterTypes = body.eventTypes !== undefined ? body.eventTypes : body.filterTypes;
  const destination = body.destination === undefined ? (base?.destination ?? null) : body.destination === null ? null : validateDestination(DESTINATION_KINDS, body.destination);
  const described = destination ? DESTINATION_KINDS.get(destination.type)!.describe(destination) : null;
  return {
    url: body.url ?? described ?? base!.url,
    destination,
    uid: pick('uid', base?.uid ?? null) ?? null,
    description: body.description ?? base?.description ?? '',
    version: body.version ?? base?.version ?? 1,
    filterTypes: (filterTypes !== undefined ? filterTypes : (base?.filterTypes ?? null)) ?? null,
    channels: pick('channels', base?.channels ?? null) ?? null,
    filter: body.filter === undefined ? (base?.filter ?? null) : validFilter(body.filter),
    transformation: base?.transformation ?? null,
    headers: headers ?? base?.headers ?? {},
    disabled: body.disabled ?? base?.disabled ?? false,
    rateLimit: body.throttleRate !== undefined ? body.throttleRate : body.rateLimit !== undefined ? body.rateLimit : (base?.rateLimit ?? null),
    ordering: body.ordering ?? base?.ordering ?? 'parallel',
    orderingOnPark: body.orderingOnPark ?? base?.orderingOnPark ?? 'skip',
    maxInFlight: body.maxInFlight ?? base?.maxInFlight ?? defaults.maxInFlight,
    metadata: body.metadata ?? base?.metadata ?? {},
  };
}

/** A content filter as saved: null for none; anything `compileFilter` refuses is a 422 located inside `filter`. */
function validFilter(filter: Record<string, unknown> | null): Record<string, unknown> | null {
  if (filter === null) return null;
  try {
    compileFilter(filter);
  } catch (error) {
    if (error instanceof FilterProblem) throw invalid(['body', 'filter', ...error.path], error.msg);
    throw error;
  }
  return filter;
}

/**
 * Fails fast on a new target that is internal whatever DNS says (an IP literal in any spelling, `localhost`):
 * 422 naming the setting that allows it. Names are not resolved here; every connection checks what it dials.
 */
function refuseInternalTarget(ctx: ApiContext, input: EndpointInput, base: Endpoint | null): EndpointInput {
  if (input.destination) {
    if (base && JSON.stringify(base.destination) === JSON.stringify(input.destination)) return input;
    for (const { field, host } of DESTINATION_KINDS.get(input.destination.type)?.hosts?.(input.destination) ?? []) {
      const refusal = ctx.egress.refuseHost(host);
      // `brokers.1` names the second entry of a list setting.
      if (refusal) throw invalid(['body', 'destination', ...field.split('.').map((part) => (/^\d+$/.test(part) ? Number(part) : part))], refusal);
    }
    return input;
  }
  if (base && base.url === input.url && !base.destination) return input;
  const refusal = ctx.egress.refuseHost(new URL(input.url).hostname);
  if (refusal) throw invalid(['body', 'url'], refusal);
  return input;
}

/**
 * The registration handshake the saved endpoint gets (domain/verification.ts): `challenge` applies to HTTP endpoints,
 * whose URL can answer it; a new challenge starts when asked for or when the URL of a challenged endpoint changes.
 */
function withVerification(input: EndpointInput, mode: VerificationMode | undefined, base: Endpoint | null, now: number): EndpointInput {
  if (input.destination && (mode ?? base?.verification.mode) === 'challenge') {
    throw invalid(['body', 'verification'], 'challenge applies to HTTP endpoints only: set verification to none to deliver to a destination');
  }
  const verification = verificationAfter(base, mode, input.url, input.destination !== null, now);
  return verification ? { ...input, verification } : input;
}

/** Where a family of endpoint routes lives and how it finds its app: apps' endpoints, or a source's. */
export interface EndpointScope {
  base: string;
  tag: string;
  appOf: (ctx: ApiContext, request: FastifyRequest) => Promise<App>;
}

export const APP_ENDPOINTS: EndpointScope = { base: '/api/v1/app/:app_id/endpoint', tag: 'Endpoint', appOf };

export function endpointRoutes(router: Router, ctx: ApiContext, scope: EndpointScope = APP_ENDPOINTS): void {
  const { tag, base } = scope;
  const appOf = scope.appOf;
  const defaults = { maxInFlight: ctx.endpointConcurrency };
  /** Re-enabling an endpoint (or raising its cap) may make waiting deliveries claimable now. */
  const resumed = (before: Endpoint | null, after: Endpoint) => {
    const handshake = after.verification.state === 'pending' && after.verification.attempts === 0;
    const released = before !== null && before.verification.state !== 'verified' && after.verification.state === 'verified';
    if (before === null ? handshake : handshake || released || (before.disabled && !after.disabled) || after.maxInFlight > before.maxInFlight || before.ordering !== after.ordering || before.orderingOnPark !== after.orderingOnPark) ctx.wake();
    return after;
  };

  /**
   * Changing `signing` is a rotation to a new key of the other scheme; the old key keeps signing for a day (the same
   * overlap as a rotation), so receivers can move from the shared secret to the public key without losing a message.
   */
  const switchScheme = async (endpoint: Endpoint, signing: SigningScheme | undefined, now: number): Promise<Endpoint | null> => {
    if (signing === undefined || signing === schemeOf(currentSecret(endpoint))) return null;
    return ctx.store.rotateEndpointSecret(endpoint.appId, endpoint.id, generateFor(signing), now + DAY_MS, now);
  };

  /** Refuses a scheme change that could not rotate, before anything else of the request is saved. */
  const checkSwitch = (endpoint: Endpoint, signing: SigningScheme | undefined) => {
    if (signing !== undefined && signing !== schemeOf(currentSecret(endpoint)) && endpoint.secrets.length > 10) {
      throw invalid(['body', 'signing'], 'too many unexpired old secrets (at most 10); wait for one to expire');
    }
  };

  router.add({ method: 'GET', url: base, summary: 'List endpoints', tag, status: 200, query: PageQuery, response: listOf(EndpointOut) }, async (request) => {
    const app = await appOf(ctx, request);
    return presentPage(await ctx.store.listEndpoints(app.id, parse(PageQuery, request.query, 'query')), presentEndpoint);
  });

  router.add({ method: 'POST', url: base, summary: 'Create endpoint', tag, status: 201, body: EndpointIn, response: EndpointOut }, async (request) => {
    const app = await appOf(ctx, request);
    const body = parse(EndpointIn, request.body, 'body');
    const secret = firstSecret(body);
    const now = ctx.now();
    const input = withVerification(refuseInternalTarget(ctx, toInput(body, null, defaults, body.headers ?? {}), null), body.verification, null, now);
    return presentEndpoint(resumed(null, await ctx.store.createEndpoint(app.id, input, secret, now)));
  });

  router.add({ method: 'GET', url: `${base}/:endpoint_id`, summary: 'Get endpoint', tag, status: 200, response: EndpointOut }, async (request) => {
    const app = await appOf(ctx, request);
    return presentEndpoint(await endpointOf(ctx, app, request));
  });

  // As Svix's: PUT creates the endpoint (201, with a new id and secret) when the path is a uid none of the app's endpoints
  // has; an endpoint id (`ep_…`, which no uid may look like) that the app does not have stays 404.
  router.add({ method: 'PUT', url: `${base}/:endpoint_id`, summary: 'Update endpoint', tag, status: 200, body: EndpointUpdate, response: EndpointOut }, async (request, reply) => {
    const app = await appOf(ctx, request);
    const id = (request.params as { endpoint_id: string }).endpoint_id;
    const existing = await ctx.store.getEndpoint(app.id, id);
    if (!existing && id.startsWith('ep_')) throw notFound('endpoint', id);
    const body = parse(EndpointUpdate, request.body, 'body');
    const replaced = { ...body, eventTypes: undefined, filterTypes: body.eventTypes ?? body.filterTypes ?? null, channels: body.channels ?? null, filter: body.filter ?? null, uid: body.uid ?? null };
    if (!existing) {
      // Created under the path's uid, so that the same PUT again updates it instead of making another.
      const pathUid = uidFromPath(id, 'ep');
      if (pathUid === null) throw notFound('endpoint', id);
      reply.code(201);
      const now = ctx.now();
      const input = withVerification(refuseInternalTarget(ctx, toInput({ ...replaced, uid: body.uid ?? pathUid }, null, defaults, {}), null), body.verification, null, now);
      return presentEndpoint(resumed(null, await ctx.store.createEndpoint(app.id, input, generateFor(body.signing ?? 'hmac'), now)));
    }
    const now = ctx.now();
    checkSwitch(existing, body.signing);
    const input = withVerification(refuseInternalTarget(ctx, toInput(replaced, existing, defaults), existing), body.verification, existing, now);
    const updated = await ctx.store.updateEndpoint(app.id, existing.id, input, now);
    return presentEndpoint(resumed(existing, (await switchScheme(existing, body.signing, now)) ?? updated));
  });

  router.add({ method: 'PATCH', url: `${base}/:endpoint_id`, summary: 'Patch endpoint', tag, status: 200, body: EndpointPatch, response: EndpointOut }, async (request) => {
    const app = await appOf(ctx, request);
    const endpoint = await endpointOf(ctx, app, request);
    const { secret, ...body } = parse(EndpointPatch, request.body, 'body');
    const now = ctx.now();
    // Validate (the destination, the target) and update (a uid may conflict) before rotating, so that a refused patch rotates nothing.
    if (body.signing === 'ed25519' && secret) throw invalid(['body', 'secret'], 'an ed25519 endpoint signs with a key pair hookrelay generates; leave secret out');
    if (secret === undefined) checkSwitch(endpoint, body.signing);
    const input = withVerification(refuseInternalTarget(ctx, toInput(body, endpoint, defaults), endpoint), body.verification, endpoint, now);
    let updated = await ctx.store.updateEndpoint(app.id, endpoint.id, input, now);
    if (secret !== undefined) {
      // Svix's meaning: the old secret stops signing at once. A given secret is an HMAC one; none means a new one of the scheme.
      const scheme = secret ? 'hmac' : (body.signing ?? schemeOf(currentSecret(endpoint)));
      updated = await ctx.store.rotateEndpointSecret(app.id, endpoint.id, secret ? withPrefix(secret) : generateFor(scheme), now, now);
    } else {
      updated = (await switchScheme(endpoint, body.signing, now)) ?? updated;
    }
    return presentEndpoint(resumed(endpoint, updated));
  });

  router.add({ method: 'DELETE', url: `${base}/:endpoint_id`, summary: 'Delete endpoint', tag, status: 204 }, async (request) => {
    const app = await appOf(ctx, request);
    const endpoint = await endpointOf(ctx, app, request);
    await ctx.store.deleteEndpoint(app.id, endpoint.id);
  });

  router.add({ method: 'GET', url: `${base}/:endpoint_id/secret`, summary: 'Get endpoint secret', tag, status: 200, response: EndpointSecretOut }, async (request) => {
    const app = await appOf(ctx, request);
    const endpoint = await endpointOf(ctx, app, request);
    return { key: shownSecret(currentSecret(endpoint)) };
  });

  // 200 with the new secret: the svix 2.x Python SDK reads it (EndpointSecretOut); the JavaScript SDKs ignore the body.
  router.add({ method: 'POST', url: `${base}/:endpoint_id/secret/rotate`, summary: 'Rotate endpoint secret', tag, status: 200, body: EndpointSecretRotateIn, response: EndpointSecretOut }, async (request) => {
    const app = await appOf(ctx, request);
    const endpoint = await endpointOf(ctx, app, request);
    const body = parse(EndpointSecretRotateIn, request.body ?? {}, 'body');
    const now = ctx.now();
    const grace = body.gracePeriodSeconds === null || body.gracePeriodSeconds === undefined ? DAY_MS : body.gracePeriodSeconds * 1000;
    if (endpoint.secrets.length > 10) throw invalid(['body'], 'too many unexpired old secrets (at most 10); wait for one to expire');
    const scheme = schemeOf(currentSecret(endpoint));
    if (scheme === 'ed25519' && body.key) throw invalid(['body', 'key'], 'an ed25519 endpoint signs with a key pair hookrelay generates; leave key out (the answer is the new public key)');
    const key = body.key ? withPrefix(body.key) : generateFor(scheme);
    await ctx.store.rotateEndpointSecret(app.id, endpoint.id, key, now + grace, now);
    return { key: shownSecret(key) };
  });

  router.add({ method: 'GET', url: `${base}/:endpoint_id/headers`, summary: 'Get endpoint headers', tag, status: 200, response: EndpointHeadersOut }, async (request) => {
    const app = await appOf(ctx, request);
    const endpoint = await endpointOf(ctx, app, request);
    return { headers: endpoint.headers, sensitive: [] };
  });

  router.add({ method: 'PUT', url: `${base}/:endpoint_id/headers`, summary: 'Update endpoint headers', tag, status: 204, body: EndpointHeadersIn }, async (request) => {
    const app = await appOf(ctx, request);
    const endpoint = await endpointOf(ctx, app, request);
    const { headers } = parse(EndpointHeadersIn, request.body, 'body');
    await ctx.store.updateEndpoint(app.id, endpoint.id, toInput({}, endpoint, defaults, headers), ctx.now());
  });

  router.add({ method: 'PATCH', url: `${base}/:endpoint_id/headers`, summary: 'Patch endpoint headers', tag, status: 204, body: EndpointHeadersPatchIn }, async (request) => {
    const app = await appOf(ctx, request);
    const endpoint = await endpointOf(ctx, app, request);
    const { headers, deleteHeaders } = parse(EndpointHeadersPatchIn, request.body, 'body');
    const merged = { ...endpoint.headers, ...headers };
    for (const name of deleteHeaders ?? []) delete merged[name];
    const problem = headerSetProblem(merged);
    if (problem) throw invalid(['body', 'headers'], `${problem} once merged with the endpoint's ${Object.keys(endpoint.headers).length} headers`);
    await ctx.store.updateEndpoint(app.id, endpoint.id, toInput({}, endpoint, defaults, merged), ctx.now());
  });

  router.add({ method: 'POST', url: `${base}/:endpoint_id/recover`, summary: 'Recover failed messages', tag, status: 202, body: RecoverIn, response: RecoverOut }, async (request) => {
    principalOf(request);
    const app = await appOf(ctx, request);
    const endpoint = await endpointOf(ctx, app, request);
    const body = parse(RecoverIn, request.body, 'body');
    const now = ctx.now();
    const until = body.until ?? now;
    if (until < body.since) throw invalid(['body', 'until'], 'must not be before since');
    const recovered = await ctx.store.recover(app.id, endpoint.id, body.since, until, now);
    if (recovered > 0) ctx.wake();
    return { id: `rcvr_${endpoint.id}_${now}`, status: 'finished', task: 'endpoint.recover', updatedAt: new Date(now).toISOString(), recovered };
  });

  // Re-triggers the registration handshake: pending again (its deliveries held), the first attempt at once.
  router.add({ method: 'POST', url: `${base}/:endpoint_id/verification`, summary: 'Restart endpoint verification', tag, status: 202, response: EndpointOut }, async (request) => {
    const app = await appOf(ctx, request);
    const endpoint = await endpointOf(ctx, app, request);
    if (endpoint.verification.mode !== 'challenge') {
      throw new HookrelayError('verification_not_enabled', `endpoint ${JSON.stringify(endpoint.id)} has verification "none"; set it to "challenge" to start a handshake`);
    }
    const now = ctx.now();
    const updated = await ctx.store.updateEndpoint(app.id, endpoint.id, { ...toInput({}, endpoint, defaults), verification: pendingVerification(now, endpoint.verification.lastAttemptAt) }, now);
    return presentEndpoint(resumed(endpoint, updated));
  });

  encryptionKeyRoutes(router, ctx, scope);
}
