import Fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { ERRORS, HookrelayError } from '../domain/errors.js';
import { ApiKeys } from './api-keys.js';
import { Authenticator, requireGranted } from './auth.js';
import { PortalTokens } from './portal-tokens.js';
import { portalAccessRoutes } from './routes/portal-access.js';
import { listenRoutes } from './routes/listen.js';
import { statsRoutes } from './routes/stats.js';
import { apiKeyRoutes } from './routes/api-keys.js';
import type { ApiContext } from './context.js';
import { applicationRoutes } from './routes/applications.js';
import { attemptRoutes } from './routes/attempts.js';
import { endpointRoutes } from './routes/endpoints.js';
import { transformationRoutes, transformationSimulateRoute } from './routes/transformations.js';
import { endpointTaskRoutes } from './routes/endpoint-tasks.js';
import { unservedSvixRoutes } from './routes/unserved.js';
import { eventTypeRoutes } from './routes/event-types.js';
import { healthRoutes, type Readiness } from './routes/health.js';
import { ingestDoor, ingestRoute } from './routes/ingest.js';
import { problemOf } from './problem.js';
import { messageRoutes } from './routes/messages.js';
import { metricsRoute, type MetricsAccess } from './routes/metrics.js';
import { operationalWebhookRoutes } from '../operational/routes.js';
import { sourceRoutes } from './routes/sources.js';
import { registerIdempotency } from './idempotency.js';
import {
  checkRequestShape,
  clientErrorHandler,
  DEFAULT_HTTP_LIMITS,
  frameworkErrorHandler,
  KEEP_ALIVE_TIMEOUT_MS,
  MAX_PARAM_LENGTH,
  refuseNulInPath,
  serverOptions,
  type HttpLimits,
} from './http-limits.js';
import { parseJsonBody } from './json-body.js';
import { serializeJson } from './raw-json.js';
import { Router } from './router.js';
import type { RequestSpan, Tracing } from '../observability/tracing.js';
import { uiRoutes, type UiOptions } from '../dashboard/serve.js';
import { DashboardSessions } from '../dashboard/session.js';

export interface ApiOptions {
  adminToken: string;
  maxPayloadBytes: number;
  logger: Logger;
  version: string;
  readiness: Readiness;
  https?: { cert: string; key: string } | null;
  /** Header, URL, connection and timeout limits of the HTTP server. */
  limits?: HttpLimits;
  /** One log line per request (`--request-log on`). @default false */
  requestLog?: boolean;
  /** Serves `GET /metrics` to the admin token or the metrics token. */
  metrics?: Omit<MetricsAccess, 'adminToken'>;
  /** The customer portal's pages (src/dashboard). */
  ui?: UiOptions;
  /** A span per request (src/observability/tracing.ts); absent when tracing is off. */
  tracing?: Tracing | null;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    public?: boolean;
  }
  interface FastifyRequest {
    /** The JSON body as received, for values kept byte for byte (a message's payload). */
    rawBody: Buffer | null;
    /** This request's span when tracing is on: its traceparent is stored with the message it accepts. */
    trace: RequestSpan | null;
  }
}

/** Fastify's own client errors, translated at this one boundary into hookrelay's codes. */
const FASTIFY_ERRORS: Record<string, [keyof typeof ERRORS, string]> = {
  FST_ERR_CTP_BODY_TOO_LARGE: ['payload_too_large', 'the request body exceeds the limit of {limit} bytes'],
  FST_ERR_CTP_INVALID_MEDIA_TYPE: ['unsupported_media_type', 'the request body must be sent as application/json'],
  FST_ERR_CTP_EMPTY_JSON_BODY: ['invalid_json', 'the request body is empty but content-type is application/json'],
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: ['invalid_json', 'the content-length header does not match the body'],
  FST_ERR_CTP_INVALID_JSON_BODY: ['invalid_json', 'the request body is not valid JSON'],
};

/**
 * Refused before its body arrived (too large, unauthorized, unknown route or source): the rest is not worth reading, and
 * a slow sender would otherwise keep the connection until the request timeout, then get a second answer (408).
 */
function closeIfUnread(request: FastifyRequest, reply: FastifyReply): void {
  if (!request.raw.complete) reply.header('connection', 'close');
}

export function buildApi(ctx: ApiContext, options: ApiOptions): { app: FastifyInstance; router: Router } {
  const limits = options.limits ?? DEFAULT_HTTP_LIMITS;
  const fastifyOptions: FastifyServerOptions & { https?: unknown; http?: unknown } = {
    loggerInstance: options.logger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: options.maxPayloadBytes,
    routerOptions: { ignoreTrailingSlash: true, ignoreDuplicateSlashes: true, maxParamLength: MAX_PARAM_LENGTH },
    return503OnClosing: true,
    // Fastify copies these onto node's server after creating it; the rest of the limits are creation options.
    requestTimeout: limits.requestTimeoutMs,
    connectionTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
    http: serverOptions(limits),
    clientErrorHandler: clientErrorHandler(limits),
    frameworkErrors: frameworkErrorHandler,
  };
  if (options.https) fastifyOptions.https = { ...options.https, ...serverOptions(limits) };
  const app = Fastify(fastifyOptions as FastifyServerOptions) as unknown as FastifyInstance;
  app.server.maxHeadersCount = limits.maxHeaders + 1;
  app.server.maxConnections = limits.maxConnections;
  // Providers' requests to /ingest/{token} are served before Fastify (routes/ingest.ts); Fastify gets the rest.
  const door = ingestDoor(ctx.ingest, { now: () => ctx.now(), limits, logger: options.logger, requestLog: Boolean(options.requestLog), tracing: options.tracing ?? null });
  const [fastifyHandler] = app.server.listeners('request') as ((req: IncomingMessage, res: ServerResponse) => void)[];
  app.server.removeListener('request', fastifyHandler);
  app.server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    if (!door.serve(req, res)) fastifyHandler(req, res);
  });
  app.addHook('preClose', (done) => {
    door.close();
    done();
  });
  const keys = new ApiKeys(() => ctx.store, () => ctx.now());
  const portalTokens = new PortalTokens(keys);
  const auth = new Authenticator(options.adminToken, keys, portalTokens);
  const sessions = new DashboardSessions(options.adminToken, () => ctx.now(), Boolean(options.https));

  app.decorateRequest('principal', null);
  app.decorateRequest('rawBody', null);
  app.decorateRequest('trace', null);
  const tracing = options.tracing;
  if (tracing) {
    // First of all hooks, so refusals are traced too; named by route pattern (an ingest URL carries its source's token).
    app.addHook('onRequest', async (request, reply) => {
      const route = request.routeOptions.url ?? 'unmatched';
      const span = tracing.request(request.method, route, request.headers, route.startsWith('/ingest/') ? { 'hookrelay.ingest': 'true' } : {});
      request.trace = span;
      // 'close' also comes for streams (hookrelay listen) and aborted requests, which onResponse would miss.
      reply.raw.once('close', () => span.end(reply.raw.statusCode));
    });
  }
  app.setReplySerializer((payload) => serializeJson(payload));
  app.removeAllContentTypeParsers();
  // application/json and the structured +json types (application/vnd.api+json, …); a string pattern would be taken literally.
  app.addContentTypeParser(/^application\/(?:[\w!#$&^.-]+\+)?json(?:\s*;|$)/i, { parseAs: 'buffer' }, (request, body, done) => {
    try {
      request.rawBody = body as Buffer;
      done(null, parseJsonBody(body as Buffer, request.headers['content-type']));
    } catch (error) {
      done(error as Error, undefined);
    }
  });

  app.addHook('onRequest', checkRequestShape(limits));
  app.addHook('onRequest', async (request) => {
    if (request.routeOptions.config?.public) return;
    request.principal = await auth.authenticate(request.headers.authorization);
    // The dashboard's session cookie counts only with its CSRF header, and never beside a bearer token.
    if (!request.principal && !request.headers.authorization && sessions.authenticates(request)) request.principal = { kind: 'admin' };
    if (!request.principal) throw new HookrelayError('unauthorized', 'missing or invalid bearer token (send "Authorization: Bearer <token>")');
    requireGranted(request.principal, request.method, request.routeOptions.url);
  });
  app.addHook('onRequest', refuseNulInPath);
  if (options.requestLog) {
    // The route pattern, not the URL: an ingest URL carries its source's token, a query string anything.
    app.addHook('onResponse', async (request, reply) => {
      const principal = request.principal;
      request.log.info(
        {
          method: request.method,
          route: request.routeOptions.url ?? null,
          status: reply.statusCode,
          durationMs: Math.round(reply.elapsedTime * 10) / 10,
          caller: principal === null ? null : principal.kind === 'admin' ? 'admin' : principal.appId,
        },
        'request',
      );
    });
  }

  const noRoute = (request: FastifyRequest) => new HookrelayError('not_found', `no route ${request.method} ${request.url.split('?')[0]}`);
  // Answered before the body is read (Fastify would read it first), like every other refusal.
  app.addHook('onRequest', async (request) => {
    if (request.is404) throw noRoute(request);
  });
  app.setNotFoundHandler(async (request) => {
    throw noRoute(request);
  });

  app.setErrorHandler((error, request, reply) => {
    closeIfUnread(request, reply);
    if (error instanceof HookrelayError) {
      const problem = problemOf(error);
      return reply.code(problem.status).headers(problem.headers).send(problem.body);
    }
    const err = error as { code?: string; statusCode?: number; message: string };
    const known = err.code ? FASTIFY_ERRORS[err.code] : undefined;
    if (known) {
      const [code, text] = known;
      return reply.code(ERRORS[code].status).send({ code, detail: text.replace('{limit}', String(options.maxPayloadBytes)) });
    }
    if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) {
      return reply.code(err.statusCode).send({ code: err.statusCode === 404 ? 'not_found' : 'bad_request', detail: err.message });
    }
    request.log.error({ err: error, method: request.method, route: request.routeOptions.url }, 'unhandled error');
    return reply.code(500).send({ code: 'internal', detail: 'internal server error' });
  });

  registerIdempotency(app, ctx.store, ctx.now, ctx.idempotencyTtlMs);
  const router = new Router(app);
  healthRoutes(router, options.readiness, () => router.openapi({ version: options.version }));
  applicationRoutes(router, ctx, keys);
  apiKeyRoutes(router, ctx, keys);
  eventTypeRoutes(router, ctx);
  endpointRoutes(router, ctx);
  transformationRoutes(router, ctx);
  transformationSimulateRoute(router, ctx);
  endpointTaskRoutes(router, ctx);
  messageRoutes(router, ctx);
  attemptRoutes(router, ctx);
  sourceRoutes(router, ctx, keys);
  operationalWebhookRoutes(router, ctx);
  portalAccessRoutes(router, ctx, portalTokens);
  statsRoutes(router, ctx);
  listenRoutes(router, ctx);
  ingestRoute(app, ctx.ingest, ctx.now);
  uiRoutes(app, options.ui ?? { portalFrameAncestors: [] }, sessions);
  if (options.metrics) metricsRoute(app, { ...options.metrics, adminToken: options.adminToken });
  unservedSvixRoutes(app);
  return { app, router };
}
