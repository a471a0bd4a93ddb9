import { z } from 'zod';
import { invalid, notFound } from '../../domain/errors.js';
import type { ApiKey } from '../../domain/types.js';
import type { ApiKeys } from '../api-keys.js';
import { principalOf, requireAdmin } from '../auth.js';
import { appOf, type ApiContext } from '../context.js';
import { presentPage } from '../present.js';
import type { Router } from '../router.js';
import { listOf, PageQuery } from '../schemas.js';
import { parse } from '../validation.js';

const ApiKeyIn = z.strictObject({
  name: z.string().min(1).max(256).nullish(),
  expiresAt: z.iso
    .datetime({ offset: true })
    .transform((s) => Date.parse(s))
    .nullish()
    .describe('When the key stops working; never when absent'),
});

const ApiKeyOut = z.object({
  id: z.string(),
  name: z.string().nullable(),
  prefix: z.string().describe('The start of the key, to recognise it; the key itself is shown only at creation'),
  appId: z.string(),
  createdAt: z.string(),
  expiresAt: z.string().nullable(),
});

const ApiKeyCreatedOut = ApiKeyOut.extend({ key: z.string().describe('The key: send it as `Authorization: Bearer <key>`. Shown only in this answer') });

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

const present = (k: ApiKey) => ({ id: k.id, name: k.name, prefix: k.prefix, appId: k.appId, createdAt: iso(k.createdAt)!, expiresAt: iso(k.expiresAt) });

/**
 * hookrelay extension: keys that act for one application. Only the operator (admin token) manages them, so a key can
 * neither mint another key nor outlive its revocation; deleting the application deletes its keys.
 */
export function apiKeyRoutes(router: Router, ctx: ApiContext, keys: ApiKeys): void {
  const tag = 'ApiKey';
  const base = '/api/v1/app/:app_id/api-key';

  router.add({ method: 'GET', url: base, summary: 'List API keys', tag, status: 200, query: PageQuery, response: listOf(ApiKeyOut) }, async (request) => {
    const app = await appOf(ctx, request);
    requireAdmin(principalOf(request));
    return presentPage(await keys.list(app.id, parse(PageQuery, request.query, 'query')), present);
  });

  router.add({ method: 'POST', url: base, summary: 'Create API key', tag, status: 201, body: ApiKeyIn, response: ApiKeyCreatedOut }, async (request) => {
    const app = await appOf(ctx, request);
    requireAdmin(principalOf(request));
    const body = parse(ApiKeyIn, request.body ?? {}, 'body');
    const expiresAt = body.expiresAt ?? null;
    if (expiresAt !== null && expiresAt <= ctx.now()) throw invalid(['body', 'expiresAt'], 'must be in the future');
    const { apiKey, key } = await keys.create(app.id, body.name ?? null, expiresAt);
    return { ...present(apiKey), key };
  });

  router.add({ method: 'DELETE', url: `${base}/:key_id`, summary: 'Revoke API key', tag, status: 204 }, async (request) => {
    const app = await appOf(ctx, request);
    requireAdmin(principalOf(request));
    const id = (request.params as { key_id: string }).key_id;
    if (!(await keys.revoke(app.id, id))) throw notFound('API key', id);
  });
}
