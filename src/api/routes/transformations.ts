import { z } from 'zod';
import { invalid } from '../../domain/errors.js';
import type { Endpoint } from '../../domain/types.js';
import { MAX_TRANSFORMATION_CODE, parsedPayload, transform } from '../../transform/transformation.js';
import { appOf as appOfPath, endpointOf, type ApiContext } from '../context.js';
import type { Router } from '../router.js';
import { parse } from '../validation.js';
import { APP_ENDPOINTS, type EndpointScope } from './endpoints.js';

const code = z.string().min(1).max(MAX_TRANSFORMATION_CODE);

/** Svix's `EndpointTransformationPatch` (and the older `EndpointTransformationIn`). */
export const EndpointTransformationPatch = z.strictObject({
  code: code.nullish(),
  enabled: z.boolean().optional(),
  // Svix's transformation variables are not supported; an empty object or null is accepted for SDK compatibility.
  variables: z.record(z.string(), z.string()).refine((v) => Object.keys(v).length === 0, 'transformation variables are not supported').nullish(),
});

export const EndpointTransformationOut = z.object({
  code: z.string().nullable(),
  enabled: z.boolean(),
  variables: z.record(z.string(), z.string()).nullable(),
  updatedAt: z.string().nullable(),
});

/** Svix's `EndpointTransformationSimulateIn`. */
export const EndpointTransformationSimulateIn = z.strictObject({
  code,
  eventType: z.string().min(1).max(256),
  payload: z.unknown(),
  channels: z.array(z.string()).nullish(),
});

/** Svix's `TransformationSimulateOut` (`payload` is the body as it would be sent), with `headers` and `cancel`. */
export const TransformationSimulateOut = z.object({
  method: z.string().nullable(),
  url: z.string().nullable(),
  payload: z.string().nullable(),
  headers: z.record(z.string(), z.string()).nullable(),
  cancel: z.boolean(),
});

const presentTransformation = (e: Endpoint) => ({
  code: e.transformation?.code ?? null,
  enabled: e.transformation?.enabled ?? false,
  variables: null,
  updatedAt: e.transformation ? new Date(e.transformation.updatedAt).toISOString() : null,
});

/** Refuses code that does not run or does not define `handler` (422 with the exception), checked in the sandbox. */
async function checkCode(ctx: ApiContext, source: string, loc: string[]): Promise<void> {
  const checked = await ctx.sandbox.check(source);
  if (!checked.ok) throw invalid(loc, checked.error);
}

export function transformationRoutes(router: Router, ctx: ApiContext, scope: EndpointScope = APP_ENDPOINTS): void {
  const { base, tag, appOf } = scope;

  router.add({ method: 'GET', url: `${base}/:endpoint_id/transformation`, summary: 'Get endpoint transformation', tag, status: 200, response: EndpointTransformationOut }, async (request) => {
    const app = await appOf(ctx, request);
    return presentTransformation(await endpointOf(ctx, app, request));
  });

  router.add({ method: 'PATCH', url: `${base}/:endpoint_id/transformation`, summary: 'Patch endpoint transformation', tag, status: 204, body: EndpointTransformationPatch }, async (request) => {
    const app = await appOf(ctx, request);
    const endpoint = await endpointOf(ctx, app, request);
    const body = parse(EndpointTransformationPatch, request.body ?? {}, 'body');
    const current = endpoint.transformation ?? { code: null, enabled: false, updatedAt: 0 };
    const next = { code: body.code === undefined ? current.code : body.code, enabled: body.enabled ?? current.enabled };
    if (body.code) await checkCode(ctx, body.code, ['body', 'code']);
    if (next.enabled && !next.code) throw invalid(['body', 'enabled'], 'a transformation without code cannot be enabled');
    if (next.code === current.code && next.enabled === current.enabled && endpoint.transformation) return;
    const { id: _id, appId: _app, disabledReason: _r, secrets: _s, health: _h, nextSendAt: _n, createdAt: _c, updatedAt: _u, ...input } = endpoint;
    const now = ctx.now();
    await ctx.store.updateEndpoint(app.id, endpoint.id, { ...input, transformation: { ...next, updatedAt: now } }, now);
  });
}

/** Svix's simulate route (application endpoints only): runs code on a sample without saving or sending anything. */
export function transformationSimulateRoute(router: Router, ctx: ApiContext): void {
  router.add(
    { method: 'POST', url: `${APP_ENDPOINTS.base}/:endpoint_id/transformation/simulate`, summary: 'Simulate transformation', tag: 'Endpoint', status: 200, body: EndpointTransformationSimulateIn, response: TransformationSimulateOut },
    async (request) => {
      const app = await appOfPath(ctx, request);
      const endpoint = await endpointOf(ctx, app, request);
      const body = parse(EndpointTransformationSimulateIn, request.body, 'body');
      const payload = Buffer.from(JSON.stringify(body.payload ?? null));
      const outcome = await transform(ctx.sandbox, body.code, { method: 'POST', url: endpoint.url, headers: { ...endpoint.headers }, payload: parsedPayload(payload), eventType: body.eventType }, payload);
      if (outcome.kind === 'failed') throw invalid(['body', 'code'], outcome.error);
      if (outcome.kind === 'cancel') return { method: null, url: null, payload: null, headers: null, cancel: true };
      const { webhook } = outcome;
      // The URL a delivery would dial is held to the egress policy here too, as it would be when sent.
      const refusal = ctx.egress.refuseHost(new URL(webhook.url).hostname);
      if (refusal) throw invalid(['body', 'code'], `transformation returned url ${JSON.stringify(webhook.url)}: ${refusal}`);
      return { method: webhook.method, url: webhook.url, payload: Buffer.from(webhook.body).toString('utf8'), headers: webhook.headers, cancel: false };
    },
  );
}
