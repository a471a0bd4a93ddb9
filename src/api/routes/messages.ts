import { conflict } from '../../domain/errors.js';
import { idempotencyKeyOf } from '../idempotency.js';
import { appOf, messageOf, type ApiContext } from '../context.js';
import { presentMessage, presentPage } from '../present.js';
import type { Router } from '../router.js';
import { listOf, MessageIn, MessageListQuery, MessageOut, WithContentQuery } from '../schemas.js';
import { parse } from '../validation.js';

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
    const app = await appOf(ctx, request);
    const idempotencyKey = idempotencyKeyOf(request);
    const body = parse(MessageIn, request.body, 'body', ['payload']);
    const { with_content } = parse(WithContentQuery, request.query, 'query');
    // The payload as parsed, not as zod rebuilt it: zod's copy drops a "__proto__" key, and the payload is kept as sent.
    const payload = (request.body as { payload: unknown }).payload;
    await ctx.intake.schemas.enforce(body.eventType, payload);
    const result = await ctx.intake.accept({
      appId: app.id,
      eventType: body.eventType,
      eventId: body.eventId ?? null,
      payload: Buffer.from(JSON.stringify(payload)),
      contentType: 'application/json',
      channels: body.channels ?? null,
      tags: body.tags ?? null,
      idempotencyKey,
      idempotencyTtlMs: ctx.idempotencyTtlMs,
      now: ctx.now(),
    });
    if (result.kind === 'event_id_conflict') throw conflict(`a message with eventId ${JSON.stringify(result.eventId)} already exists`);
    return presentMessage(result.message, with_content ?? true);
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
