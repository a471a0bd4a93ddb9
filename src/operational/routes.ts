import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import { invalid, notFound } from '../domain/errors.js';
import type { App, Endpoint } from '../domain/types.js';
import { requireAdmin, principalOf } from '../api/auth.js';
import type { ApiContext } from '../api/context.js';
import { presentPage } from '../api/present.js';
import type { Router } from '../api/router.js';
import { EndpointHeadersIn, EndpointHeadersOut, EndpointSecretOut, EndpointSecretRotateIn, headers, listOf, metadata, PageQuery, secret, uid } from '../api/schemas.js';
import { parse } from '../api/validation.js';
import { generateSecret } from '../signing/standard-webhooks.js';
import type { EndpointInput } from '../store/store.js';
import { OPERATIONAL_EVENT_TYPES } from './events.js';

/**
 * `/api/v1/operational-webhook/endpoint`: the operator's operational-webhook endpoints, with the paths and shapes of
 * Svix's API so that `svix.operationalWebhookEndpoint.*` works unchanged. Operator only (the admin token). The event
 * filter is `filterTypes` (svix SDK 1.x) or `eventTypes` (2.x); both are accepted and both are returned.
 */

const DAY_MS = 86_400_000;
const withPrefix = (key: string) => (key.startsWith('whsec_') ? key : `whsec_${key}`);

const url = z
  .string()
  .max(2048)
  .refine((value) => {
    try {
      const parsed = new URL(value);
      return (parsed.protocol === 'https:' || parsed.protocol === 'http:') && parsed.hostname !== '';
    } catch {
      return false;
    }
  }, 'must be an absolute http:// or https:// URL');
const eventTypes = z
  .array(z.enum(OPERATIONAL_EVENT_TYPES, { error: `must be one of ${OPERATIONAL_EVENT_TYPES.join(', ')}` }))
  .min(1)
  .max(OPERATIONAL_EVENT_TYPES.length)
  .nullish();
const rate = z.number().int().min(1).max(1_000_000).nullish();

const fields = {
  url,
  description: z.string().max(8192).optional(),
  uid: uid('ep').nullish(),
  disabled: z.boolean().optional(),
  filterTypes: eventTypes,
  eventTypes,
  throttleRate: rate,
  rateLimit: rate,
  metadata: metadata.optional(),
};
export const OperationalEndpointIn = z.strictObject({ ...fields, secret: secret.nullish(), headers: headers.nullish() });
export const OperationalEndpointUpdate = z.strictObject(fields);

const date = z.string().describe('RFC 3339 date-time, UTC');
export const OperationalEndpointOut = z.object({
  id: z.string(),
  uid: z.string().nullable(),
  url: z.string(),
  description: z.string(),
  disabled: z.boolean(),
  filterTypes: z.array(z.string()).nullable(),
  eventTypes: z.array(z.string()).nullable(),
  throttleRate: z.number().nullable(),
  rateLimit: z.number().nullable(),
  metadata,
  createdAt: date,
  updatedAt: date,
});

const present = (e: Endpoint): z.output<typeof OperationalEndpointOut> => ({
  id: e.id,
  uid: e.uid,
  url: e.url,
  description: e.description,
  disabled: e.disabled,
  filterTypes: e.filterTypes,
  eventTypes: e.filterTypes,
  throttleRate: e.rateLimit,
  rateLimit: e.rateLimit,
  metadata: e.metadata,
  createdAt: new Date(e.createdAt).toISOString(),
  updatedAt: new Date(e.updatedAt).toISOString(),
});

type Fields = z.output<typeof OperationalEndpointUpdate>;

function toInput(body: Fields, base: Endpoint | null, maxInFlight: number, endpointHeaders: Record<string, string>): EndpointInput {
  if (body.filterTypes && body.eventTypes && JSON.stringify(body.filterTypes) !== JSON.stringify(body.eventTypes)) {
    throw invalid(['body', 'eventTypes'], 'filterTypes and eventTypes are the same field: send one, or the same list in both');
  }
  return {
    uid: body.uid ?? null,
    url: body.url,
    description: body.description ?? '',
    version: 1,
    filterTypes: body.eventTypes ?? body.filterTypes ?? null,
    channels: null,
    filter: null,
    headers: endpointHeaders,
    disabled: body.disabled ?? false,
    rateLimit: body.throttleRate ?? body.rateLimit ?? null,
    ordering: 'parallel',
    maxInFlight: base?.maxInFlight ?? maxInFlight,
    metadata: body.metadata ?? {},
    destination: null,
  };
}

export function operationalWebhookRoutes(router: Router, ctx: ApiContext): void {
  const tag = 'Operational webhook endpoint';
  const base = '/api/v1/operational-webhook/endpoint';
  const admin = (request: FastifyRequest) => requireAdmin(principalOf(request));
  /** Internal targets fail fast, as for any endpoint (the egress policy checks every connection anyway). */
  const checkTarget = (input: EndpointInput) => {
    const refusal = ctx.egress.refuseHost(new URL(input.url).hostname);
    if (refusal) throw invalid(['body', 'url'], refusal);
    return input;
  };
  const endpointOf = async (request: FastifyRequest): Promise<{ app: App; endpoint: Endpoint }> => {
    const id = (request.params as Record<string, string>).endpoint_id;
    const app = await ctx.operational.app(false);
    const endpoint = app ? await ctx.store.getEndpoint(app.id, id) : null;
    if (!app || !endpoint) throw notFound('operational webhook endpoint', id);
    return { app, endpoint };
  };

  router.add({ method: 'GET', url: base, summary: 'List operational webhook endpoints', tag, status: 200, query: PageQuery, response: listOf(OperationalEndpointOut) }, async (request) => {
    admin(request);
    const page = parse(PageQuery, request.query, 'query');
    const app = await ctx.operational.app(false);
    if (!app) return { data: [], iterator: null, prevIterator: null, done: true };
    return presentPage(await ctx.store.listEndpoints(app.id, page), present);
  });

  router.add({ method: 'POST', url: base, summary: 'Create operational webhook endpoint', tag, status: 201, body: OperationalEndpointIn, response: OperationalEndpointOut }, async (request) => {
    admin(request);
    const { secret: key, headers: endpointHeaders, ...body } = parse(OperationalEndpointIn, request.body, 'body');
    const input = checkTarget(toInput(body, null, ctx.endpointConcurrency, endpointHeaders ?? {}));
    const app = (await ctx.operational.app(true))!;
    const endpoint = await ctx.store.createEndpoint(app.id, input, key ? withPrefix(key) : generateSecret(), ctx.now());
    ctx.operational.endpointsChanged();
    return present(endpoint);
  });

  router.add({ method: 'GET', url: `${base}/:endpoint_id`, summary: 'Get operational webhook endpoint', tag, status: 200, response: OperationalEndpointOut }, async (request) => {
    admin(request);
    return present((await endpointOf(request)).endpoint);
  });

  router.add({ method: 'PUT', url: `${base}/:endpoint_id`, summary: 'Update operational webhook endpoint', tag, status: 200, body: OperationalEndpointUpdate, response: OperationalEndpointOut }, async (request) => {
    admin(request);
    const body = parse(OperationalEndpointUpdate, request.body, 'body');
    const { app, endpoint } = await endpointOf(request);
    const updated = await ctx.store.updateEndpoint(app.id, endpoint.id, checkTarget(toInput(body, endpoint, ctx.endpointConcurrency, endpoint.headers)), ctx.now());
    // Re-enabled: its waiting events are due again.
    if (endpoint.disabled && !updated.disabled) ctx.wake();
    ctx.operational.endpointsChanged();
    return present(updated);
  });

  router.add({ method: 'DELETE', url: `${base}/:endpoint_id`, summary: 'Delete operational webhook endpoint', tag, status: 204 }, async (request) => {
    admin(request);
    const { app, endpoint } = await endpointOf(request);
    await ctx.store.deleteEndpoint(app.id, endpoint.id);
    ctx.operational.endpointsChanged();
  });

  router.add({ method: 'GET', url: `${base}/:endpoint_id/secret`, summary: 'Get operational webhook endpoint secret', tag, status: 200, response: EndpointSecretOut }, async (request) => {
    admin(request);
    const { endpoint } = await endpointOf(request);
    return { key: endpoint.secrets.find((s) => s.expiresAt === null)!.key };
  });

  router.add(
    { method: 'POST', url: `${base}/:endpoint_id/secret/rotate`, summary: 'Rotate operational webhook endpoint secret', tag, status: 204, body: EndpointSecretRotateIn },
    async (request) => {
      admin(request);
      const body = parse(EndpointSecretRotateIn, request.body ?? {}, 'body');
      const { app, endpoint } = await endpointOf(request);
      if (endpoint.secrets.length > 10) throw invalid(['body'], 'too many unexpired old secrets (at most 10); wait for one to expire');
      const now = ctx.now();
      const grace = body.gracePeriodSeconds === null || body.gracePeriodSeconds === undefined ? DAY_MS : body.gracePeriodSeconds * 1000;
      await ctx.store.rotateEndpointSecret(app.id, endpoint.id, body.key ? withPrefix(body.key) : generateSecret(), now + grace, now);
    },
  );

  router.add({ method: 'GET', url: `${base}/:endpoint_id/headers`, summary: 'Get operational webhook endpoint headers', tag, status: 200, response: EndpointHeadersOut }, async (request) => {
    admin(request);
    return { headers: (await endpointOf(request)).endpoint.headers, sensitive: [] };
  });

  router.add({ method: 'PUT', url: `${base}/:endpoint_id/headers`, summary: 'Update operational webhook endpoint headers', tag, status: 204, body: EndpointHeadersIn }, async (request) => {
    admin(request);
    const { headers: replaced } = parse(EndpointHeadersIn, request.body, 'body');
    const { app, endpoint } = await endpointOf(request);
    const current: Fields = { url: endpoint.url, description: endpoint.description, uid: endpoint.uid, disabled: endpoint.disabled, filterTypes: endpoint.filterTypes as Fields['filterTypes'], rateLimit: endpoint.rateLimit, metadata: endpoint.metadata };
    await ctx.store.updateEndpoint(app.id, endpoint.id, toInput(current, endpoint, ctx.endpointConcurrency, replaced), ctx.now());
  });
}
