import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import { conflict, HookrelayError, notFound } from '../../domain/errors.js';
import type { App, Endpoint } from '../../domain/types.js';
import { LISTEN_SESSION, type ListenRequest } from '../../pipeline/destinations/listen.js';
import { generateSecret } from '../../signing/standard-webhooks.js';
import type { EndpointInput } from '../../store/store.js';
import { principalOf } from '../auth.js';
import { appOf, type ApiContext } from '../context.js';
import type { Router } from '../router.js';
import { parse } from '../validation.js';

/**
 * `hookrelay listen` (hookrelay extension): a session is a temporary endpoint of the app, uid `listen-<session>`,
 * whose deliveries go down the stream of the CLI connected for it. Reconnecting with the same session keeps the
 * endpoint, its secret and its retrying deliveries; DELETE ends the session and removes the endpoint.
 */

const ListenIn = z.strictObject({
  session: LISTEN_SESSION,
  /** Only these event types, as an endpoint's `filterTypes`; null or absent for all. */
  filterTypes: z.array(z.string().min(1).max(256)).min(1).max(100).nullish(),
});

const ListenAnswerIn = z.strictObject({
  id: z.string().min(1).max(64),
  status: z.number().int().min(100).max(599).optional(),
  body: z.string().max(1_048_576).optional(),
  error: z.string().max(4096).optional(),
});

const ListenEvent = z.object({
  type: z.enum(['ready', 'request', 'ping', 'replaced', 'ended']),
}).describe('One JSON object per line (application/x-ndjson): ready {endpointId, secret, session} first, then request {id, messageId, eventType, headers, body (base64)}, ping every 15 s, replaced when another CLI takes the session over, ended when the session is deleted');

/** Idle proxies cut a silent stream; a ping line every 15 s keeps it open. */
const PING_MS = 15_000;

const uidOf = (session: string) => `listen-${session}`;

/** A portal token is a customer's view: listening is for the operator and the app's own key. */
function refusePortal(request: FastifyRequest): void {
  const principal = principalOf(request);
  if (principal.kind === 'app' && principal.portal) throw new HookrelayError('forbidden', 'a portal token may not listen');
}

async function sessionEndpoint(ctx: ApiContext, app: App, session: string): Promise<Endpoint | null> {
  const endpoint = await ctx.store.getEndpoint(app.id, uidOf(session));
  if (endpoint && endpoint.destination?.type !== 'listen') throw conflict(`the endpoint with uid ${uidOf(session)} is not a listen session's: choose another session name`);
  return endpoint;
}

export function listenRoutes(router: Router, ctx: ApiContext): void {
  const tag = 'Listen';
  const base = '/api/v1/app/:app_id/listen';
  const streams = new Set<() => void>();
  // Open streams would hold a graceful close forever: end them first.
  router.beforeClose(() => {
    for (const end of streams) end();
  });

  router.add(
    { method: 'POST', url: base, summary: 'Listen', tag, status: 200, body: ListenIn, response: ListenEvent, ownIdempotency: true },
    async (request, reply) => {
      refusePortal(request);
      const app = await appOf(ctx, request);
      const body = parse(ListenIn, request.body, 'body');
      const hub = ctx.listeners;
      if (!hub) throw new HookrelayError('unavailable', 'this process does not deliver (--dispatch off): point hookrelay listen at a process that does');
      const existing = await sessionEndpoint(ctx, app, body.session);
      const now = ctx.now();
      const input: EndpointInput = {
        url: `listen://${body.session}`,
        destination: { type: 'listen', session: body.session },
        uid: uidOf(body.session),
        description: `hookrelay listen session ${body.session}`,
        version: 1,
        filterTypes: body.filterTypes ?? null,
        channels: null,
        filter: null,
        headers: {},
        disabled: false,
        rateLimit: null,
        ordering: 'parallel',
        maxInFlight: existing?.maxInFlight ?? ctx.endpointConcurrency,
        metadata: {},
      };
      const endpoint = existing ? await ctx.store.updateEndpoint(app.id, existing.id, input, now) : await ctx.store.createEndpoint(app.id, input, generateSecret(), now);

      reply.hijack();
      const raw = reply.raw;
      raw.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store', 'x-accel-buffering': 'no' });
      const write = (event: Record<string, unknown>) => {
        if (!raw.writableEnded) raw.write(JSON.stringify(event) + '\n');
      };
      const ping = setInterval(() => write({ type: 'ping' }), PING_MS);
      const end = () => {
        clearInterval(ping);
        detach();
        streams.delete(end);
        if (!raw.writableEnded) raw.end();
      };
      const detach = hub.attach(endpoint.id, {
        push: (event: ListenRequest) => write(event as unknown as Record<string, unknown>),
        end: (reason) => {
          write({ type: reason });
          end();
        },
      });
      streams.add(end);
      raw.on('close', end);
      write({ type: 'ready', session: body.session, endpointId: endpoint.id, secret: endpoint.secrets.find((s) => s.expiresAt === null)!.key });
      request.log.info({ appId: app.id, endpointId: endpoint.id, session: body.session }, 'hookrelay listen connected');
      raw.on('close', () => request.log.info({ appId: app.id, endpointId: endpoint.id, session: body.session }, 'hookrelay listen disconnected'));
      // Deliveries that were waiting for a connected listener may be due now.
      ctx.wake();
    },
  );

  router.add(
    { method: 'POST', url: `${base}/:session/answer`, summary: 'Answer a listen request', tag, status: 204, body: ListenAnswerIn, ownIdempotency: true },
    async (request) => {
      refusePortal(request);
      const app = await appOf(ctx, request);
      const session = (request.params as { session: string }).session;
      const endpoint = await sessionEndpoint(ctx, app, session);
      const body = parse(ListenAnswerIn, request.body, 'body');
      if (!endpoint || !ctx.listeners?.answer(endpoint.id, body.id, body)) throw notFound('listen request', body.id);
    },
  );

  router.add({ method: 'DELETE', url: `${base}/:session`, summary: 'End a listen session', tag, status: 204 }, async (request) => {
    refusePortal(request);
    const app = await appOf(ctx, request);
    const session = (request.params as { session: string }).session;
    const endpoint = await sessionEndpoint(ctx, app, session);
    if (!endpoint) throw notFound('listen session', session);
    await ctx.store.deleteEndpoint(app.id, endpoint.id);
    ctx.listeners?.end(endpoint.id);
  });
}
