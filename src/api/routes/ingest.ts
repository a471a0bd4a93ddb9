import type { FastifyInstance } from 'fastify';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { HookrelayError } from '../../domain/errors.js';
import type { Source } from '../../domain/types.js';
import type { Ingest, IngestAnswer } from '../../inbound/ingest.js';
import type { CompiledSource } from '../../inbound/source-config.js';
import type { Tracing } from '../../observability/tracing.js';
import { requestShapeProblem, MAX_PARAM_LENGTH, type HttpLimits } from '../http-limits.js';
import { problemOf } from '../problem.js';

declare module 'fastify' {
  interface FastifyRequest {
    inbound: { source: Source; compiled: CompiledSource; contentType?: string } | null;
  }
}

/** The route pattern: what spans and request logs name (an ingest URL carries its source's token). */
const ROUTE = '/ingest/:token';
const METHODS = ['GET', 'POST', 'PUT', 'PATCH'];

/** Reads the raw body up to `limit` bytes; a larger one is refused with 413 without reading the rest. */
function readRaw(stream: Readable, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    stream.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        stream.removeAllListeners('data');
        stream.resume();
        reject(new HookrelayError('payload_too_large', `the request body exceeds this source's limit of ${limit} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    stream.on('end', () => resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)));
    stream.on('error', () => reject(new HookrelayError('bad_request', 'the request body ended early (the connection was closed or reset)')));
  });
}

/** Header values as the verifiers read them: one string each; `contentType` is the provider's own value. */
function headersOf(headers: IncomingHttpHeaders, contentType: string | undefined): Record<string, string> {
  // node joins repeated headers into one string, except set-cookie (an array): without it there is nothing to change.
  if (contentType === undefined && headers['set-cookie'] === undefined) return headers as Record<string, string>;
  const out: Record<string, string> = {};
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined) continue;
    out[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  if (contentType !== undefined) out['content-type'] = contentType;
  return out;
}

/** The URL the provider called, for schemes that sign it; the query is per request (Twilio's bodySHA256, HubSpot's parameters). */
function calledUrl(compiled: CompiledSource, protocol: string, host: string, url: string): string {
  const query = url.includes('?') ? url.slice(url.indexOf('?')) : '';
  const publicUrl = compiled.common.publicUrl;
  return publicUrl ? (query ? publicUrl.split('?')[0] + query : publicUrl) : `${protocol}://${host}${url}`;
}

/**
 * `/ingest/{token}` in Fastify: where providers post. Runs in its own scope so that every content type is read as raw
 * bytes (signatures cover the exact bytes) and the size limit is the source's own. Most requests never reach it: the
 * ingest door (`ingestDoor`, below) serves them before Fastify does; this route answers the rest (HEAD probes, a token
 * written with escapes or a trailing slash, requests during shutdown).
 */
export function ingestRoute(app: FastifyInstance, ingest: Ingest, now: () => number): void {
  app.register(async (scope) => {
    scope.decorateRequest('inbound', null);
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', (request, payload, done) => {
      const limit = request.inbound?.compiled.common.maxBodyBytes ?? 0;
      readRaw(payload, limit).then(
        (body) => done(null, body),
        (error) => done(error as Error, undefined),
      );
    });

    // Providers probe an ingest URL with an unsigned HEAD before using it: answer whether it exists, store nothing.
    scope.route({
      method: 'HEAD',
      url: ROUTE,
      config: { public: true },
      handler: async (request, reply) => {
        const found = await ingest.source((request.params as { token: string }).token);
        const screened = found && ingest.screen(found.source, found.compiled, { address: request.raw.socket.remoteAddress, headers: request.headers });
        return reply.code(screened ? screened.status : found ? 200 : 404).send();
      },
    });

    scope.route({
      method: METHODS,
      url: ROUTE,
      config: { public: true },
      // HEAD must not store a message: providers probe URLs with it, unsigned.
      exposeHeadRoute: false,
      bodyLimit: 64 * 1024 * 1024,
      onRequest: async (request, reply) => {
        const token = (request.params as { token: string }).token;
        const peer = { address: request.raw.socket.remoteAddress, headers: request.headers };
        const opened = await ingest.open(token, peer, Number(request.headers['content-length'] ?? 0), now());
        if (opened.kind === 'refused') {
          if (opened.closes && !request.raw.complete) reply.header('connection', 'close');
          return reply.code(opened.answer.status).headers(opened.answer.headers ?? {}).type(opened.answer.contentType).send(opened.answer.body);
        }
        // Every body is read as bytes, whatever its type; Fastify would refuse a malformed content-type ("json", "") with
        // 415 before reading it, so the provider's value is set aside for verification and the stored message.
        const contentType = request.headers['content-type'];
        if (contentType !== undefined) request.raw.headers['content-type'] = 'application/octet-stream';
        request.inbound = { source: opened.source, compiled: opened.compiled, contentType };
      },
      handler: async (request, reply) => {
        const { source, compiled, contentType } = request.inbound!;
        const url = calledUrl(compiled, request.protocol, request.headers.host ?? request.hostname, request.url);
        const body = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
        const inbound = { method: request.method, url, headers: headersOf(request.headers, contentType), body };
        const answer = await ingest.receive(source, compiled, inbound, now(), request.trace?.traceparent ?? null);
        reply.code(answer.status).headers(answer.headers ?? {}).type(answer.contentType);
        return reply.send(answer.body);
      },
    });
  });
}

export interface IngestDoorOptions {
  now: () => number;
  limits: HttpLimits;
  logger: Logger;
  /** One log line per request, as the API's (`--request-log on`). */
  requestLog: boolean;
  tracing: Tracing | null;
}

const JSON_TYPE = /json/i;
const CHARSET = /;\s*charset=/i;
const JSON_UTF8 = 'application/json; charset=utf-8';
const FRAMING = new Set(['connection', 'content-type', 'content-length']);

/** A JSON answer is declared UTF-8, as Fastify declares it. */
const declaredType = (contentType: string) =>
  contentType === JSON_UTF8 || !JSON_TYPE.test(contentType) || CHARSET.test(contentType) ? contentType : `${contentType}; charset=utf-8`;

/** A token as hookrelay makes them (base64url): nothing for a router to decode or normalise. */
const PLAIN_TOKEN = new RegExp(`^[A-Za-z0-9_-]{1,${MAX_PARAM_LENGTH}}$`);

/**
 * The ingest door: `GET|POST|PUT|PATCH /ingest/{token}` served on node's request event, before Fastify. A provider's
 * request needs none of what Fastify adds for the API (routing, authentication, JSON parsing, idempotency) and it is
 * the hot path of a busy source: the same checks, verification and durable accept for less CPU per request.
 * It answers as the route does — the same checks of the request's shape, the same refusals, spans and request log.
 * Returns false for a request it leaves to Fastify: any other path or method, a token the router would decode or
 * normalise, a request without a Host header, and everything once the server is closing (Fastify answers 503).
 */
export function ingestDoor(ingest: Ingest, options: IngestDoorOptions): { serve: (req: IncomingMessage, res: ServerResponse) => boolean; close: () => void } {
  let closing = false;

  /** Written as Fastify writes the route's answers: JSON declared as UTF-8, a 204 with no body and no content headers. */
  const answer = (req: IncomingMessage, res: ServerResponse, { status, headers, contentType, body }: IngestAnswer, closeIfUnread = false) => {
    // Names and values in one list, written by one writeHead (no per-header setHeader bookkeeping).
    const fields: string[] = [];
    // Refused before its body arrived: the rest is not worth reading (a slow sender would keep the connection otherwise).
    if (closeIfUnread && !req.complete) fields.push('connection', 'close');
    // The door's own framing headers win, as setHeader's last value did: one of each goes out.
    if (headers) for (const name in headers) if (!FRAMING.has(name.toLowerCase())) fields.push(name, headers[name]);
    if (status === 204 || status < 200) {
      res.writeHead(status, fields);
      return res.end();
    }
    fields.push('content-type', declaredType(contentType), 'content-length', String(Buffer.byteLength(body)));
    res.writeHead(status, fields);
    res.end(body);
  };

  const failed = (req: IncomingMessage, res: ServerResponse, error: unknown) => {
    if (res.headersSent) return res.destroy();
    // A writeHead that refused a header has already set the reason phrase of the status it was writing.
    res.statusMessage = '';
    if (error instanceof HookrelayError) {
      const problem = problemOf(error);
      return answer(req, res, { status: problem.status, headers: problem.headers, contentType: JSON_UTF8, body: JSON.stringify(problem.body) }, true);
    }
    options.logger.error({ err: error, method: req.method, route: ROUTE }, 'unhandled error');
    answer(req, res, { status: 500, contentType: JSON_UTF8, body: JSON.stringify({ code: 'internal', detail: 'internal server error' }) }, true);
  };

  const receive = async (req: IncomingMessage, res: ServerResponse, token: string, traceparent: string | null) => {
    const shape = requestShapeProblem(req, options.limits);
    if (shape) throw shape;
    const opened = await ingest.open(token, { address: req.socket.remoteAddress, headers: req.headers }, Number(req.headers['content-length'] ?? 0), options.now());
    if (opened.kind === 'refused') return answer(req, res, opened.answer, opened.closes);
    const { source, compiled } = opened;
    // As Fastify does, a GET's body is not read (node drops it).
    const body = req.method === 'GET' ? Buffer.alloc(0) : await readRaw(req, compiled.common.maxBodyBytes);
    const protocol = (req.socket as TLSSocket).encrypted ? 'https' : 'http';
    const url = calledUrl(compiled, protocol, req.headers.host!, req.url!);
    const inbound = { method: req.method!, url, headers: headersOf(req.headers, undefined), body };
    answer(req, res, await ingest.receive(source, compiled, inbound, options.now(), traceparent));
  };

  const serve = (req: IncomingMessage, res: ServerResponse): boolean => {
    const url = req.url ?? '';
    if (closing || !url.startsWith('/ingest/') || !METHODS.includes(req.method ?? '') || req.headers.host === undefined) return false;
    const end = url.indexOf('?');
    const token = end < 0 ? url.slice(8) : url.slice(8, end);
    // The source API lives below /ingest/api.
    if (token === 'api' || !PLAIN_TOKEN.test(token)) return false;

    const started = performance.now();
    const span = options.tracing?.request(req.method!, ROUTE, req.headers, { 'hookrelay.ingest': 'true' }) ?? null;
    // 'close' also comes for aborted requests, which 'finish' would miss.
    if (span) res.once('close', () => span.end(res.statusCode));
    if (options.requestLog) {
      res.once('finish', () => {
        const durationMs = Math.round((performance.now() - started) * 10) / 10;
        options.logger.info({ method: req.method, route: ROUTE, status: res.statusCode, durationMs, caller: null }, 'request');
      });
    }
    receive(req, res, token, span?.traceparent ?? null).catch((error) => failed(req, res, error));
    return true;
  };

  return {
    serve,
    /** From now on every request goes to Fastify, which answers 503 while the server closes. */
    close: () => {
      closing = true;
    },
  };
}
