import { invalid, notFound } from '../../domain/errors.js';
import { PayloadSchemas, SchemaProblem } from '../../pipeline/payload-schemas.js';
import type { EventType } from '../../domain/types.js';
import type { EventTypeInput } from '../../store/store.js';
import { principalOf, requireAdmin, type Principal } from '../auth.js';
import type { ApiContext } from '../context.js';
import { presentEventType, presentPage } from '../present.js';
import type { Router } from '../router.js';
import { DeleteEventTypeQuery, EventTypeIn, EventTypeListQuery, EventTypeOut, EventTypePatch, EventTypeUpdate, eventTypeName, listOf } from '../schemas.js';
import { parse } from '../validation.js';

/** A portal token does not see event types behind a feature flag it was not given (as in Svix). */
const visibleTo = (principal: Principal, e: EventType) =>
  e.featureFlag === null || principal.kind !== 'app' || !principal.portal || principal.portal.scope.featureFlags.has(e.featureFlag);

type Body = Partial<Omit<EventTypeInput, 'name'>> & { featureFlags?: string[] | null; description?: string };

function toInput(name: string, body: Body, base?: EventType): EventTypeInput {
  const featureFlag = body.featureFlag !== undefined ? body.featureFlag : body.featureFlags !== undefined ? (body.featureFlags?.[0] ?? null) : (base?.featureFlag ?? null);
  return {
    name,
    description: body.description ?? base?.description ?? '',
    archived: body.archived ?? base?.archived ?? false,
    deprecated: body.deprecated ?? base?.deprecated ?? false,
    featureFlag,
    groupName: body.groupName !== undefined ? body.groupName : (base?.groupName ?? null),
    schemas: body.schemas !== undefined ? body.schemas : (base?.schemas ?? null),
    validatePayloads: body.validatePayloads ?? base?.validatePayloads ?? false,
  };
}

/**
 * Schemas as saved: each version must compile (422 located inside `schemas` otherwise) when they are written or are
 * to judge messages; schemas stored before this check existed do not block an unrelated change.
 */
function checked(input: EventTypeInput, body: Body): EventTypeInput {
  if (input.schemas === null || (body.schemas === undefined && !input.validatePayloads)) return input;
  try {
    PayloadSchemas.check(input.schemas);
  } catch (error) {
    if (error instanceof SchemaProblem) throw invalid(['body', 'schemas', ...error.path], error.msg);
    throw error;
  }
  return input;
}

export function eventTypeRoutes(router: Router, ctx: ApiContext): void {
  const tag = 'EventType';
  const nameOf = (params: unknown) => parse(eventTypeName, (params as { event_type_name: string }).event_type_name, 'path');

  router.add({ method: 'GET', url: '/api/v1/event-type', summary: 'List event types', tag, status: 200, query: EventTypeListQuery, response: listOf(EventTypeOut) }, async (request) => {
    const query = parse(EventTypeListQuery, request.query, 'query');
    const principal = principalOf(request);
    const page = await ctx.store.listEventTypes(query, query.include_archived ?? false);
    return presentPage({ ...page, data: page.data.filter((e) => visibleTo(principal, e)) }, (e) => presentEventType(e, query.with_content ?? true));
  });

  router.add({ method: 'POST', url: '/api/v1/event-type', summary: 'Create event type', tag, status: 201, body: EventTypeIn, response: EventTypeOut }, async (request) => {
    requireAdmin(principalOf(request));
    const body = parse(EventTypeIn, request.body, 'body');
    const created = await ctx.store.createEventType(checked(toInput(body.name, body), body), ctx.now());
    ctx.intake.schemas.forget(created.name);
    return presentEventType(created);
  });

  router.add({ method: 'GET', url: '/api/v1/event-type/:event_type_name', summary: 'Get event type', tag, status: 200, response: EventTypeOut }, async (request) => {
    const principal = principalOf(request);
    const name = nameOf(request.params);
    const found = await ctx.store.getEventType(name);
    if (!found || !visibleTo(principal, found)) throw notFound('event type', name);
    return presentEventType(found);
  });

  router.add({ method: 'PUT', url: '/api/v1/event-type/:event_type_name', summary: 'Update event type', tag, status: 200, body: EventTypeUpdate, response: EventTypeOut }, async (request) => {
    requireAdmin(principalOf(request));
    const name = nameOf(request.params);
    const body = parse(EventTypeUpdate, request.body, 'body');
    const updated = await ctx.store.updateEventType(checked(toInput(name, body), body), ctx.now());
    ctx.intake.schemas.forget(name);
    return presentEventType(updated);
  });

  router.add({ method: 'PATCH', url: '/api/v1/event-type/:event_type_name', summary: 'Patch event type', tag, status: 200, body: EventTypePatch, response: EventTypeOut }, async (request) => {
    requireAdmin(principalOf(request));
    const name = nameOf(request.params);
    const body = parse(EventTypePatch, request.body, 'body');
    const found = await ctx.store.getEventType(name);
    if (!found) throw notFound('event type', name);
    const updated = await ctx.store.updateEventType(checked(toInput(name, body, found), body), ctx.now());
    ctx.intake.schemas.forget(name);
    return presentEventType(updated);
  });

  router.add({ method: 'DELETE', url: '/api/v1/event-type/:event_type_name', summary: 'Delete event type', tag, status: 204, query: DeleteEventTypeQuery }, async (request) => {
    requireAdmin(principalOf(request));
    const name = nameOf(request.params);
    const { expunge } = parse(DeleteEventTypeQuery, request.query, 'query');
    const found = await ctx.store.getEventType(name);
    if (!found) throw notFound('event type', name);
    if (expunge) await ctx.store.deleteEventType(name);
    else await ctx.store.updateEventType({ ...toInput(name, {}, found), archived: true }, ctx.now());
    ctx.intake.schemas.forget(name);
  });
}
