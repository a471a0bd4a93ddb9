import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { STATUS_CODES, type IncomingMessage, type ServerOptions } from 'node:http';
import type { Duplex } from 'node:stream';
import { ERRORS, HookrelayError, type ErrorCode } from '../domain/errors.js';

/** What a client may send the server (API and ingest alike), and how slowly. */
export interface HttpLimits {
  /** The whole request, headers and body, must arrive within this. */
  requestTimeoutMs: number;
  /** The request line and headers must arrive within this. */
  headersTimeoutMs: number;
  /** Request line plus headers, in bytes. */
  maxHeaderBytes: number;
  maxHeaders: number;
  /** Request target (path and query), in bytes. */
  maxUrlBytes: number;
  maxConnections: number;
}

export const DEFAULT_HTTP_LIMITS: Readonly<HttpLimits> = {
  requestTimeoutMs: 30_000,
  headersTimeoutMs: 10_000,
  maxHeaderBytes: 16 * 1024,
  maxHeaders: 100,
  maxUrlBytes: 8 * 1024,
  maxConnections: 10_000,
};

/** An idle keep-alive connection is kept longer than the 60 s idle timeout of common load balancers, so that they close first. */
export const KEEP_ALIVE_TIMEOUT_MS = 65_000;

/** Longest path segment the router matches; ids and uids are at most 256 characters. */
export const MAX_PARAM_LENGTH = 512;

/**
 * Options of node's HTTP server. Node enforces both timeouts itself, but only when it sweeps its connections,
 * every `connectionsCheckingInterval` (30 s by default): sweeping more often bounds how long a slow client lingers.
 */
export function serverOptions(limits: HttpLimits): ServerOptions {
  return {
    maxHeaderSize: limits.maxHeaderBytes,
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    connectionsCheckingInterval: Math.min(1000, Math.max(25, Math.floor(limits.headersTimeoutMs / 4))),
    keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
  };
}

function clientError(error: Error & { code?: string; reason?: string }, limits: HttpLimits): [ErrorCode, string] {
  switch (error.code) {
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return ['request_timeout', `the request did not arrive in time (headers within ${limits.headersTimeoutMs} ms, all of it within ${limits.requestTimeoutMs} ms)`];
    case 'HPE_HEADER_OVERFLOW':
      return ['headers_too_large', `the request line and headers exceed ${limits.maxHeaderBytes} bytes`];
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return ['payload_too_large', 'the chunk extensions of the request body are too large'];
    default:
      return ['bad_request', `malformed HTTP request: ${error.reason ?? error.code ?? 'unparseable'}`];
  }
}

/**
 * Node's `clientError`: what never became a request (malformed, a header block over the limit, too slow) is
 * answered in the API's `{code, detail}` shape on the raw socket, which is then closed, as node itself does.
 */
export function clientErrorHandler(limits: HttpLimits) {
  return (error: Error & { code?: string; reason?: string }, socket: Duplex): void => {
    if (error.code === 'ECONNRESET' || socket.destroyed) return;
    const [code, detail] = clientError(error, limits);
    const status = ERRORS[code].status;
    const body = JSON.stringify({ code, detail });
    // As node does: no answer in the middle of one already being written on this connection.
    const inFlight = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
    if (socket.writable && !inFlight?.headersSent) {
      socket.write(
        `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nconnection: close\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      );
    }
    socket.destroy();
  };
}

/** Fastify's routing errors, in the API's shape. */
export function frameworkErrorHandler(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  if (error.code === 'FST_ERR_MAX_PARAM_LENGTH') {
    reply.code(414).send({ code: 'uri_too_long', detail: `a path segment is longer than ${MAX_PARAM_LENGTH} characters` });
  } else if (error.code === 'FST_ERR_BAD_URL') {
    reply.code(400).send({ code: 'bad_request', detail: 'the URL path is not valid percent-encoded UTF-8' });
  } else {
    request.log.error({ err: error }, 'routing failed');
    reply.code(500).send({ code: 'internal', detail: 'internal server error' });
  }
}

/** A URL or header list over the limit, whatever the route; null when the request is within them. */
export function requestShapeProblem(raw: IncomingMessage, limits: HttpLimits): HookrelayError | null {
  if ((raw.url ?? '').length > limits.maxUrlBytes) return new HookrelayError('uri_too_long', `the request URL exceeds ${limits.maxUrlBytes} bytes`);
  // node keeps at most maxHeadersCount headers (set to the limit + 1), so one over the limit is visible here.
  if (raw.rawHeaders.length / 2 > limits.maxHeaders) return new HookrelayError('headers_too_large', `the request has more than ${limits.maxHeaders} headers`);
  return null;
}

/** Before authentication: a URL or header list over the limit is refused whatever the route. */
export function checkRequestShape(limits: HttpLimits) {
  return async (request: FastifyRequest): Promise<void> => {
    const problem = requestShapeProblem(request.raw, limits);
    if (problem) throw problem;
  };
}

/** No id, uid or name contains NUL (and PostgreSQL cannot even compare one): such a path names nothing. */
export async function refuseNulInPath(request: FastifyRequest): Promise<void> {
  for (const value of Object.values((request.params ?? {}) as Record<string, string>)) {
    if (typeof value === 'string' && value.includes('\u0000')) throw new HookrelayError('not_found', 'no resource has an id containing a NUL character');
  }
}
