import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { ERRORS } from '../domain/errors.js';
import { ErrorOut, ValidationErrorOut } from './schemas.js';

type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface RouteSpec {
  method: Method;
  /** Fastify path, e.g. `/api/v1/app/:app_id`. */
  url: string;
  summary: string;
  tag: string;
  /** Success status. */
  status: number;
  body?: z.ZodType;
  query?: z.ZodType;
  response?: z.ZodType;
  /** Served without a token (health, OpenAPI). */
  public?: boolean;
  /** The handler keeps `idempotency-key` semantics itself, inside its own transaction. */
  ownIdempotency?: boolean;
  /**
   * JSON Schemas the OpenAPI document shows instead of `body`/`response` where zod cannot say enough (a source's
   * `config` per type), and the named component schemas they refer to. Called when the document is built.
   */
  document?: () => { body?: unknown; response?: unknown; components?: Record<string, unknown> };
}

export type Handler = (request: FastifyRequest, reply: FastifyReply) => Promise<unknown>;

/**
 * Registers routes on Fastify and records each one for the OpenAPI document, so the document
 * cannot list a route the server does not serve, or miss one it does.
 */
export class Router {
  readonly specs: RouteSpec[] = [];

  constructor(private readonly app: FastifyInstance) {}

  add(spec: RouteSpec, handler: Handler): void {
    this.specs.push(spec);
    this.app.route({
      method: spec.method,
      url: spec.url,
      config: { public: spec.public ?? false, idempotency: spec.method === 'POST' ? (spec.ownIdempotency ? 'own' : 'replay') : undefined },
      handler: async (request, reply) => {
        reply.code(spec.status);
        const result = await handler(request, reply);
        return reply.statusCode === 204 ? reply.send() : result;
      },
    });
  }

  /** Runs when the server starts closing, before it waits for open requests (long-lived streams must end first). */
  beforeClose(fn: () => void): void {
    this.app.addHook('preClose', (done) => {
      fn();
      done();
    });
  }

  openapi(info: { version: string }): unknown {
    const paths: Record<string, Record<string, unknown>> = {};
    const schemas: Record<string, unknown> = {};
    for (const spec of this.specs) {
      const documented = spec.document?.() ?? {};
      Object.assign(schemas, documented.components);
      const path = spec.url.replace(/:([a-z_]+)/g, '{$1}');
      const parameters = [...spec.url.matchAll(/:([a-z_]+)/g)].map((m) => ({ name: m[1], in: 'path', required: true, schema: { type: 'string' } }));
      if (spec.query) {
        const shape = (spec.query as z.ZodObject).shape ?? {};
        for (const name of Object.keys(shape)) parameters.push({ name, in: 'query', required: false, schema: { type: 'string' } });
      }
      const responses: Record<string, unknown> = {
        [spec.status]: spec.response
          ? { description: 'Success', content: { 'application/json': { schema: documented.response ?? z.toJSONSchema(spec.response, { io: 'output', unrepresentable: 'any' }) } } }
          : { description: 'Success' },
      };
      if (!spec.public) responses['401'] = errorResponse('unauthorized');
      if (spec.url.includes(':')) responses['404'] = errorResponse('not_found');
      if (spec.body || spec.query) {
        responses['422'] = { description: ERRORS.validation.title, content: { 'application/json': { schema: z.toJSONSchema(ValidationErrorOut) } } };
      }
      paths[path] ??= {};
      paths[path][spec.method.toLowerCase()] = {
        summary: spec.summary,
        tags: [spec.tag],
        operationId: `${spec.tag}.${spec.summary}`.replace(/[^A-Za-z0-9.]+/g, '_'),
        parameters,
        ...(spec.body
          ? { requestBody: { required: true, content: { 'application/json': { schema: documented.body ?? z.toJSONSchema(spec.body, { io: 'input', unrepresentable: 'any' }) } } } }
          : {}),
        responses,
        ...(spec.public ? { security: [] } : {}),
      };
    }
    return {
      openapi: '3.1.0',
      info: { title: 'hookrelay API', version: info.version, description: 'Webhook gateway API, wire-compatible with the svix SDK for the operations it implements.' },
      servers: [{ url: '/' }],
      components: {
        schemas,
        securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'The admin token, or an application API key (hrk_…) that reaches its own application only' } },
      },
      security: [{ bearer: [] }],
      paths,
    };
  }
}

function errorResponse(code: keyof typeof ERRORS) {
  return { description: ERRORS[code].title, content: { 'application/json': { schema: z.toJSONSchema(ErrorOut) } } };
}
