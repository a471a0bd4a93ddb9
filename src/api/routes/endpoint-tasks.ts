import { invalid, notFound } from '../../domain/errors.js';
import { appOf, endpointOf, type ApiContext } from '../context.js';
import { presentMessage } from '../present.js';
import type { Router } from '../router.js';
import { EndpointStatsOut, EndpointStatsQuery, EventExampleIn, MessageOut, ReplayIn, ReplayOut } from '../schemas.js';
import { parse } from '../validation.js';

/**
 * The example payload of an event type: `examples[index]` of its schema (the newest version's when it has several,
 * Svix keeps them under "1", "2", …), `{}` when the schema lists no examples.
 */
function examplePayload(schemas: Record<string, unknown> | null, index: number): unknown {
  const versions = Object.keys(schemas ?? {}).sort((a, b) => Number(b) - Number(a) || b.localeCompare(a));
  const schema = versions.length > 0 ? (schemas![versions[0]] as { examples?: unknown }) : null;
  const examples = schema && typeof schema === 'object' && Array.isArray(schema.examples) ? schema.examples : null;
  if (!examples || examples.length === 0) return {};
  if (index >= examples.length) throw invalid(['body', 'exampleIndex'], `the event type's schema has ${examples.length} example(s)`);
  return examples[index];
}

/** Svix's endpoint tasks: delivery counts, an example message to one endpoint, and replaying what it never received. */
export function endpointTaskRoutes(router: Router, ctx: ApiContext): void {
  const tag = 'Endpoint';
  const base = '/api/v1/app/:app_id/endpoint/:endpoint_id';

  router.add({ method: 'GET', url: `${base}/stats`, summary: 'Endpoint stats', tag, status: 200, query: EndpointStatsQuery, response: EndpointStatsOut }, async (request) => {
    const app = await appOf(ctx, request);
    const endpoint = await endpointOf(ctx, app, request);
    const { since, until } = parse(EndpointStatsQuery, request.query, 'query');
    const stats = await ctx.store.endpointStats(app.id, endpoint.id, { since, until });
    // hookrelay never cancels a delivery: a message stays pending until it succeeds or is parked (failed).
    return { success: stats.succeeded, pending: stats.pending, sending: stats.in_flight, fail: stats.failed, canceled: 0 };
  });

  router.add({ method: 'POST', url: `${base}/send-example`, summary: 'Send event type example message', tag, status: 202, body: EventExampleIn, response: MessageOut }, async (request) => {
    const app = await appOf(ctx, request);
    const endpoint = await endpointOf(ctx, app, request);
    const body = parse(EventExampleIn, request.body, 'body');
    const eventType = await ctx.store.getEventType(body.eventType);
    if (!eventType) throw notFound('event type', body.eventType);
    const payload = examplePayload(eventType.schemas, body.exampleIndex ?? 0);
    const result = await ctx.intake.accept({
      appId: app.id,
      eventType: eventType.name,
      eventId: null,
      payload: Buffer.from(JSON.stringify(payload)),
      contentType: 'application/json',
      channels: null,
      tags: null,
      idempotencyKey: null,
      idempotencyTtlMs: ctx.idempotencyTtlMs,
      now: ctx.now(),
      endpointId: endpoint.id,
      traceContext: request.trace?.traceparent ?? null,
    });
    if (result.kind === 'event_id_conflict') throw new Error('unreachable: an example message has no eventId');
    return presentMessage(result.message);
  });

  router.add({ method: 'POST', url: `${base}/replay-missing`, summary: 'Replay missing webhooks', tag, status: 202, body: ReplayIn, response: ReplayOut }, async (request) => {
    const app = await appOf(ctx, request);
    const endpoint = await endpointOf(ctx, app, request);
    const body = parse(ReplayIn, request.body, 'body');
    const now = ctx.now();
    const until = body.until ?? now;
    if (until < body.since) throw invalid(['body', 'until'], 'must not be before since');
    const replayed = await ctx.store.replayMissing(app.id, endpoint.id, body.since, until, now);
    if (replayed > 0) ctx.wake();
    return { id: `rply_${endpoint.id}_${now}`, status: 'finished', task: 'endpoint.replay', updatedAt: new Date(now).toISOString(), replayed };
  });
}
