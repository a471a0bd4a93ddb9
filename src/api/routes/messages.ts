import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import { conflict, HookrelayError, invalid } from '../../domain/errors.js';
import { isJsonContentType } from '../../domain/json-text.js';
import type { App } from '../../domain/types.js';
import { mayAccess, principalOf, requireAdmin } from '../auth.js';
import { idempotencyKeyOf } from '../idempotency.js';
import { memberBytes } from '../json-body.js';
import { appOf, messageOf, type ApiContext } from '../context.js';
import { presentMessage, presentPage } from '../present.js';
import type { Router } from '../router.js';
import { listOf, MAX_DELIVER_AHEAD_MS, MessageIn, MessageListQuery, MessageOut, WithContentQuery } from '../schemas.js';
import { parse } from '../validation.js';

type Body = z.output<typeof MessageIn>;

/**
 * The app of the path; when it names none and the body carries `application`, that app is created first, as Svix
 * does (its uid must be the path's, so that a retry finds it). Creating an app takes the admin token.
 */
async function appForMessage(ctx: ApiContext, request: FastifyRequest, application: Body['application']): Promise<App> {
  const id = (request.params as { app_id: string }).app_id;
  if (!application) return appOf(ctx, request);
  const found = await ctx.store.getApp(id);
  if (found) return appOf(ctx, request);
  requireAdmin(principalOf(request));
  if (application.uid !== id) throw invalid(['body', 'application', 'uid'], 'must be set to the app id or uid in the path to create the application with the message');
  try {
    return await ctx.store.createApp({ name: application.name, uid: id, rateLimit: application.throttleRate ?? application.rateLimit ?? null, metadata: application.metadata ?? {} }, ctx.now());
  } catch (error) {
    // Created by a concurrent request in the meantime: use it.
    const raced = error instanceof HookrelayError && error.code === 'conflict' ? await ctx.store.getApp(id) : null;
    if (raced && mayAccess(principalOf(request), raced)) return raced;
    throw error;
  }
}

const JSON_TYPE = /^application\/(?:[\w!#$&^.-]+\+)?json(?:\s*;|$)/i;

/** `transformationsParams.rawPayload`: the body to deliver instead of `payload`, byte for byte, with its content type. */
function rawPayloadOf(params: Body['transformationsParams']): { bytes: Buffer; contentType: string } | null {
  const raw = params?.rawPayload;
  if (raw === undefined || raw === null) return null;
  const given = Object.entries(params?.headers ?? {}).find(([name]) => name.toLowerCase() === 'content-type')?.[1];
  let json = true;
  try {
    JSON.parse(raw);
  } catch {
    json = false;
  }
  const contentType = given ?? (json ? 'application/json' : 'text/plain; charset=utf-8');
  if (JSON_TYPE.test(contentType) && !json) throw invalid(['body', 'transformationsParams', 'rawPayload'], `is not valid JSON, but its content-type is ${contentType}`);
  return { bytes: Buffer.from(raw, 'utf8'), contentType };
}

export function messageRoutes(router: Router, ctx: ApiContext): void {
  const tag = 'Message';
  const base = '/api/v1/app/:app_id/msg';

  router.add({ method: 'GET', url: base, summary: 'List messages', tag, status: 200, query: MessageListQuery, response: listOf(MessageOut) }, async (request) => {
    const app = await appOf(ctx, request);
    const query = parse(MessageListQuery, request.query, 'query');
    const page = await ctx.store.listMessages(app.id, { eventTypes: query.event_types, channel: query.channel, tag: query.tag, before: query.before, after: query.after }, query);
    return presentPage(page, (m) => presentMessage(m, query.with_content ?? true));
  });

  router.add({ method: 'POST', url: base, summary: 'Create message', tag, status: 202, ownIdempotency: true, body: MessageIn, query: WithContentQuery, response: MessageOut }, async (request) => {
    const body = parse(MessageIn, request.body, 'body', ['payload']);
    const app = await appForMessage(ctx, request, body.application);
    const idempotencyKey = idempotencyKeyOf(request);
    const { with_content } = parse(WithContentQuery, request.query, 'query');
    const now = ctx.now();
    const deliverAt = body.deliverAt ?? null;
    if (deliverAt !== null && deliverAt > now + MAX_DELIVER_AHEAD_MS) throw invalid(['body', 'deliverAt'], 'must be at most 24 hours ahead');
    const raw = rawPayloadOf(body.transformationsParams);
    // Schema validation reads a parsed copy (zod's would drop a "__proto__" key); what is stored is the bytes sent.
    const checked = raw === null ? (request.body as { payload: unknown }).payload : isJsonContentType(raw.contentType) ? JSON.parse(raw.bytes.toString('utf8')) : undefined;
    if (checked !== undefined) await ctx.intake.schemas.enforce(body.eventType, checked);
    const result = await ctx.intake.accept({
      appId: app.id,
      eventType: body.eventType,
      eventId: body.eventId ?? null,
      // The payload exactly as sent: no digit of a big integer, no `1.0`, escape or space is lost to re-serialising.
      payload: raw?.bytes ?? memberBytes(request.rawBody!, 'payload')!,
      contentType: raw?.contentType ?? 'application/json',
      channels: body.channels ?? null,
      tags: body.tags ?? null,
      orderingKey: body.orderingKey ?? null,
      idempotencyKey,
      idempotencyTtlMs: ctx.idempotencyTtlMs,
      now,
      deliverAt,
      traceContext: request.trace?.traceparent ?? null,
    });
    if (result.kind === 'event_id_conflict') throw conflict(`a message with eventId ${JSON.stringify(result.eventId)} already exists`);
    // Just validated as a JSON object: written into the answer without parsing it again (a raw payload may be any text).
    return presentMessage(result.message, with_content ?? true, result.kind === 'accepted' && raw === null);
  });

  router.add({ method: 'GET', url: `${base}/:msg_id`, summary: 'Get message', tag, status: 200, query: WithContentQuery, response: MessageOut }, async (request) => {
    const app = await appOf(ctx, request);
    const { with_content } = parse(WithContentQuery, request.query, 'query');
    return presentMessage(await messageOf(ctx, app, request), with_content ?? true);
  });

  router.add({ method: 'DELETE', url: `${base}/:msg_id/content`, summary: 'Delete message payload', tag, status: 204 }, async (request) => {
    const app = await appOf(ctx, request);
    const message = await messageOf(ctx, app, request);
    await ctx.store.expungeMessageContent(app.id, message.id);
  });
}
