import { notFound } from '../../domain/errors.js';
import type { Attempt } from '../../domain/types.js';
import type { AttemptFilter } from '../../store/store.js';
import { appOf, endpointOf, messageOf, type ApiContext } from '../context.js';
import { presentAttempt, presentEndpointMessage, presentMessageEndpoint, presentPage } from '../present.js';
import type { Router } from '../router.js';
import { AttemptListQuery, EndpointMessageOut, listOf, MessageAttemptOut, MessageEndpointOut, PageQuery } from '../schemas.js';
import { parse } from '../validation.js';
import { z } from 'zod';

type Query = z.output<typeof AttemptListQuery>;

function attemptFilter(query: Query): AttemptFilter {
  return {
    eventTypes: query.event_types,
    channel: query.channel,
    tag: query.tag,
    before: query.before,
    after: query.after,
    succeeded: query.status === 0 ? true : query.status === 2 ? false : undefined,
  };
}

/** Attempts are recorded only once finished, so "pending"/"sending" filters match none; status codes filter by class. */
function keep(query: Query) {
  return (attempt: Attempt) => {
    if (query.status === 1 || query.status === 3 || query.status === 4) return false;
    if (query.status_code_class === undefined) return true;
    return query.status_code_class === 0 ? attempt.statusCode === 0 : Math.floor(attempt.statusCode / 100) * 100 === query.status_code_class;
  };
}

const DELIVERY_STATUS = { 0: 'succeeded', 1: 'pending', 2: 'failed', 3: 'in_flight' } as const;

export function attemptRoutes(router: Router, ctx: ApiContext): void {
  const tag = 'MessageAttempt';

  router.add({ method: 'GET', url: '/api/v1/app/:app_id/attempt/endpoint/:endpoint_id', summary: 'List attempts by endpoint', tag, status: 200, query: AttemptListQuery, response: listOf(MessageAttemptOut) }, async (request) => {
    const app = await appOf(ctx, request);
    const endpoint = await endpointOf(ctx, app, request);
    const query = parse(AttemptListQuery, request.query, 'query');
    const page = await ctx.store.listAttemptsByEndpoint(app.id, endpoint.id, attemptFilter(query), query);
    page.data = page.data.filter(keep(query));
    const messages = query.with_msg ? new Map(await Promise.all(page.data.map(async (a) => [a.messageId, await ctx.store.getMessage(app.id, a.messageId)] as const))) : null;
    return presentPage(page, (a) => presentAttempt(a, messages ? (messages.get(a.messageId) ?? null) : undefined));
  });

  router.add({ method: 'GET', url: '/api/v1/app/:app_id/attempt/msg/:msg_id', summary: 'List attempts by message', tag, status: 200, query: AttemptListQuery, response: listOf(MessageAttemptOut) }, async (request) => {
    const app = await appOf(ctx, request);
    const message = await messageOf(ctx, app, request);
    const query = parse(AttemptListQuery, request.query, 'query');
    let endpointId: string | undefined;
    if (query.endpoint_id) {
      const endpoint = await ctx.store.getEndpoint(app.id, query.endpoint_id);
      if (!endpoint) throw notFound('endpoint', query.endpoint_id);
      endpointId = endpoint.id;
    }
    const page = await ctx.store.listAttemptsByMessage(app.id, message.id, { ...attemptFilter(query), endpointId }, query);
    page.data = page.data.filter(keep(query));
    return presentPage(page, (a) => presentAttempt(a));
  });

  router.add({ method: 'GET', url: '/api/v1/app/:app_id/msg/:msg_id/attempt/:attempt_id', summary: 'Get attempt', tag, status: 200, response: MessageAttemptOut }, async (request) => {
    const app = await appOf(ctx, request);
    const message = await messageOf(ctx, app, request);
    const id = (request.params as { attempt_id: string }).attempt_id;
    const attempt = await ctx.store.getAttempt(app.id, message.id, id);
    if (!attempt) throw notFound('attempt', id);
    return presentAttempt(attempt);
  });

  router.add({ method: 'DELETE', url: '/api/v1/app/:app_id/msg/:msg_id/attempt/:attempt_id/content', summary: 'Delete attempt response body', tag, status: 204 }, async (request) => {
    const app = await appOf(ctx, request);
    const message = await messageOf(ctx, app, request);
    const id = (request.params as { attempt_id: string }).attempt_id;
    if (!(await ctx.store.expungeAttemptContent(app.id, message.id, id))) throw notFound('attempt', id);
  });

  router.add({ method: 'GET', url: '/api/v1/app/:app_id/endpoint/:endpoint_id/msg', summary: 'List attempted messages', tag, status: 200, query: AttemptListQuery, response: listOf(EndpointMessageOut) }, async (request) => {
    const app = await appOf(ctx, request);
    const endpoint = await endpointOf(ctx, app, request);
    const query = parse(AttemptListQuery, request.query, 'query');
    const status = query.status === undefined || query.status === 4 ? undefined : DELIVERY_STATUS[query.status as 0 | 1 | 2 | 3];
    const page = await ctx.store.listDeliveriesByEndpoint(app.id, endpoint.id, { ...attemptFilter(query), status }, query);
    return presentPage(page, (v) => presentEndpointMessage(v, query.with_content ?? true));
  });

  router.add({ method: 'GET', url: '/api/v1/app/:app_id/msg/:msg_id/endpoint', summary: 'List attempted destinations', tag, status: 200, query: PageQuery, response: listOf(MessageEndpointOut) }, async (request) => {
    const app = await appOf(ctx, request);
    const message = await messageOf(ctx, app, request);
    const page = await ctx.store.listDeliveriesByMessage(app.id, message.id, parse(PageQuery, request.query, 'query'));
    return presentPage(page, presentMessageEndpoint);
  });

  router.add({ method: 'POST', url: '/api/v1/app/:app_id/msg/:msg_id/endpoint/:endpoint_id/resend', summary: 'Resend message to endpoint', tag, status: 202 }, async (request) => {
    const app = await appOf(ctx, request);
    const message = await messageOf(ctx, app, request);
    const endpoint = await endpointOf(ctx, app, request);
    await ctx.store.resend(app.id, message.id, endpoint.id, ctx.now());
    ctx.wake();
    return {};
  });
}
