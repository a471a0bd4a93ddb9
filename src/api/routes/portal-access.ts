import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import { HookrelayError, invalid, notFound } from '../../domain/errors.js';
import type { App } from '../../domain/types.js';
import { principalOf, requireAdmin } from '../auth.js';
import type { ApiContext } from '../context.js';
import { CAPABILITIES, type PortalTokens } from '../portal-tokens.js';
import type { Router } from '../router.js';
import { ApplicationIn, uid } from '../schemas.js';
import { parse } from '../validation.js';

/** Svix's bounds: between one hour and seven days, seven days by default. */
export const PORTAL_EXPIRY_MIN_S = 3_600;
export const PORTAL_EXPIRY_MAX_S = 7 * 24 * 3_600;

const featureFlag = z
  .string()
  .min(1)
  .max(256)
  .regex(/^[a-zA-Z0-9\-_.]+$/, 'letters, digits, "-", "_" and "." only');

const AppPortalAccessIn = z.strictObject({
  application: ApplicationIn.nullish().describe('Creates the application (with the path id as its uid) when it does not exist yet; ignored when it does'),
  readOnly: z.boolean().nullish().describe('The same as capabilities ["ViewBase"]'),
  capabilities: z
    .array(z.enum(CAPABILITIES))
    .max(CAPABILITIES.length)
    .nullish()
    .describe('What the token may do; "ViewBase" is required. All capabilities when absent'),
  featureFlags: z.array(featureFlag).max(16).optional().describe('Event types behind a feature flag the token lacks are hidden from it'),
  expiry: z.number().int().min(PORTAL_EXPIRY_MIN_S).max(PORTAL_EXPIRY_MAX_S).nullish().describe('Lifetime in seconds; 7 days when absent'),
  sessionId: z.string().min(1).max(256).nullish().describe('Recorded as the name of the token in the application’s API key list'),
});

const AppPortalAccessOut = z.object({
  url: z.string().describe('hookrelay’s portal for the application, signed in with the token (carried in the URL fragment)'),
  token: z.string().describe('A bearer token for the application’s API routes its capabilities allow'),
});

const baseUrlOf = (request: FastifyRequest) => `${request.protocol}://${request.headers.host ?? request.hostname}`;

/**
 * Consumer portal access, as in Svix: the operator mints a short-lived token scoped to one application; the portal (or
 * the svix SDK, or svix-react) uses it as a bearer token; `logout` revokes it.
 */
export function portalAccessRoutes(router: Router, ctx: ApiContext, tokens: PortalTokens): void {
  const tag = 'Authentication';

  router.add(
    { method: 'POST', url: '/api/v1/auth/app-portal-access/:app_id', summary: 'App portal access', tag, status: 200, body: AppPortalAccessIn, response: AppPortalAccessOut },
    async (request) => {
      requireAdmin(principalOf(request));
      const body = parse(AppPortalAccessIn, request.body ?? {}, 'body');
      const id = (request.params as { app_id: string }).app_id;
      const app = (await ctx.store.getApp(id)) ?? (await createFromBody(ctx, id, body.application ?? null));
      if (body.readOnly && body.capabilities) throw invalid(['body', 'capabilities'], 'give readOnly or capabilities, not both');
      const capabilities = body.readOnly ? (['ViewBase'] as const) : (body.capabilities ?? CAPABILITIES);
      if (!capabilities.includes('ViewBase')) throw invalid(['body', 'capabilities'], 'must include "ViewBase"');
      const expiresAt = ctx.now() + (body.expiry ?? PORTAL_EXPIRY_MAX_S) * 1000;
      const name = body.sessionId ? `app portal (session ${body.sessionId})` : 'app portal';
      const { token } = await tokens.create(app.id, name, expiresAt, [...new Set(capabilities)], [...new Set(body.featureFlags ?? [])]);
      return { url: `${baseUrlOf(request)}/portal#token=${token}`, token };
    },
  );

  router.add({ method: 'POST', url: '/api/v1/auth/logout', summary: 'Logout', tag, status: 204 }, async (request) => {
    const principal = principalOf(request);
    if (principal.kind !== 'app' || !principal.portal) {
      throw new HookrelayError('forbidden', 'only an app portal token logs out; revoke an API key with DELETE /api/v1/app/{app_id}/api-key/{key_id}');
    }
    await tokens.revoke(principal.appId, principal.portal.keyId);
  });
}

async function createFromBody(ctx: ApiContext, id: string, body: z.infer<typeof ApplicationIn> | null): Promise<App> {
  if (!body) throw notFound('application', id);
  parse(z.object({ app_id: uid('app') }), { app_id: id }, 'path');
  if (body.uid && body.uid !== id) throw invalid(['body', 'application', 'uid'], 'must be the application id of the path, or absent');
  return ctx.store.createApp(
    { name: body.name, uid: id, rateLimit: body.throttleRate ?? body.rateLimit ?? null, metadata: body.metadata ?? {} },
    ctx.now(),
  );
}
