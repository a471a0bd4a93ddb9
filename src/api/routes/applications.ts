import { notFound } from '../../domain/errors.js';
import type { AppInput } from '../../store/store.js';
import type { ApiKeys } from '../api-keys.js';
import { principalOf, requireAdmin } from '../auth.js';
import { appOf, type ApiContext } from '../context.js';
import { presentApp, presentPage } from '../present.js';
import type { Router } from '../router.js';
import { ApplicationIn, ApplicationOut, ApplicationPatch, CreateAppQuery, listOf, PageQuery, uidFromPath } from '../schemas.js';
import { parse } from '../validation.js';

const toInput = (body: { name: string; uid?: string | null; metadata?: Record<string, string>; throttleRate?: number | null; rateLimit?: number | null }): AppInput => ({
  name: body.name,
  uid: body.uid ?? null,
  rateLimit: body.throttleRate ?? body.rateLimit ?? null,
  metadata: body.metadata ?? {},
});

export function applicationRoutes(router: Router, ctx: ApiContext, keys: ApiKeys): void {
  const tag = 'Application';

  router.add({ method: 'GET', url: '/api/v1/app', summary: 'List applications', tag, status: 200, query: PageQuery, response: listOf(ApplicationOut) }, async (request) => {
    const principal = principalOf(request);
    const query = parse(PageQuery, request.query, 'query');
    if (principal.kind === 'app') {
      // An app key sees one application, its own: a filtered page of all apps would leak other ids through its cursors.
      const own = await ctx.store.getApp(principal.appId);
      return presentPage({ data: own ? [own] : [], iterator: null, prevIterator: null, done: true }, presentApp);
    }
    return presentPage(await ctx.store.listApps(query), presentApp);
  });

  router.add({ method: 'POST', url: '/api/v1/app', summary: 'Create application', tag, status: 201, body: ApplicationIn, query: CreateAppQuery, response: ApplicationOut }, async (request, reply) => {
    requireAdmin(principalOf(request));
    const body = parse(ApplicationIn, request.body, 'body');
    const { get_if_exists } = parse(CreateAppQuery, request.query, 'query');
    if (get_if_exists && body.uid) {
      const existing = await ctx.store.getApp(body.uid);
      if (existing && existing.uid === body.uid) {
        reply.code(200);
        return presentApp(existing);
      }
    }
    return presentApp(await ctx.store.createApp(toInput(body), ctx.now()));
  });

  router.add({ method: 'GET', url: '/api/v1/app/:app_id', summary: 'Get application', tag, status: 200, response: ApplicationOut }, async (request) => {
    return presentApp(await appOf(ctx, request));
  });

  // An app key reads its application but does not change it: name, uid, rate limit and metadata are the operator's.
  // As Svix's, PUT creates the application (201) when the path names none; its uid is the body's.
  router.add({ method: 'PUT', url: '/api/v1/app/:app_id', summary: 'Update application', tag, status: 200, body: ApplicationIn, response: ApplicationOut }, async (request, reply) => {
    const principal = principalOf(request);
    const path = (request.params as { app_id: string }).app_id;
    const existing = await ctx.store.getApp(path);
    if (existing) await appOf(ctx, request);
    requireAdmin(principal);
    const body = parse(ApplicationIn, request.body, 'body');
    if (!existing) {
      // Created under the path's uid, so that the same PUT again updates it instead of making another.
      const pathUid = uidFromPath(path, 'app');
      if (pathUid === null) throw notFound('application', path);
      reply.code(201);
      return presentApp(await ctx.store.createApp(toInput({ ...body, uid: body.uid ?? pathUid }), ctx.now()));
    }
    return presentApp(await ctx.store.updateApp(existing.id, toInput(body), ctx.now()));
  });

  router.add({ method: 'PATCH', url: '/api/v1/app/:app_id', summary: 'Patch application', tag, status: 200, body: ApplicationPatch, response: ApplicationOut }, async (request) => {
    const app = await appOf(ctx, request);
    requireAdmin(principalOf(request));
    const patch = parse(ApplicationPatch, request.body, 'body');
    const merged = {
      name: patch.name ?? app.name,
      uid: patch.uid === undefined ? app.uid : patch.uid,
      metadata: patch.metadata ?? app.metadata,
      throttleRate: patch.throttleRate === undefined && patch.rateLimit === undefined ? app.rateLimit : (patch.throttleRate ?? patch.rateLimit ?? null),
    };
    return presentApp(await ctx.store.updateApp(app.id, toInput(merged), ctx.now()));
  });

  router.add({ method: 'DELETE', url: '/api/v1/app/:app_id', summary: 'Delete application', tag, status: 204 }, async (request) => {
    const app = await appOf(ctx, request);
    requireAdmin(principalOf(request));
    await ctx.store.deleteApp(app.id);
    keys.forgetApp(app.id);
  });
}
