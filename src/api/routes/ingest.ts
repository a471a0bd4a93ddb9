import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Readable } from 'node:stream';
import { HookrelayError } from '../../domain/errors.js';
import type { Source } from '../../domain/types.js';
import type { Ingest } from '../../inbound/ingest.js';
import type { CompiledSource } from '../../inbound/source-config.js';

declare module 'fastify' {
  interface FastifyRequest {
    inbound: { source: Source; compiled: CompiledSource; contentType?: string } | null;
  }
}

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
    stream.on('end', () => resolve(Buffer.concat(chunks)));
    stream.on('error', () => reject(new HookrelayError('bad_request', 'the request body ended early (the connection was closed or reset)')));
  });
}

function headersOf(request: FastifyRequest): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers)) {
    if (value === undefined) continue;
    out[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  if (request.inbound?.contentType !== undefined) out['content-type'] = request.inbound.contentType;
  return out;
}

/**
 * `/ingest/{token}`: where providers post. Runs in its own Fastify scope so that every content type is read
 * as raw bytes (signatures cover the exact bytes) and the size limit is the source's own.
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
      url: '/ingest/:token',
      config: { public: true },
      handler: async (request, reply) => {
        const found = await ingest.source((request.params as { token: string }).token);
        const screened = found && ingest.screen(found.source, found.compiled, { address: request.raw.socket.remoteAddress, headers: request.headers });
        return reply.code(screened ? screened.status : found ? 200 : 404).send();
      },
    });

    scope.route({
      method: ['GET', 'POST', 'PUT', 'PATCH'],
      url: '/ingest/:token',
      config: { public: true },
      // HEAD must not store a message: providers probe URLs with it, unsigned.
      exposeHeadRoute: false,
      bodyLimit: 64 * 1024 * 1024,
      onRequest: async (request, reply) => {
        const found = await ingest.source((request.params as { token: string }).token);
        if (!found) throw new HookrelayError('not_found', 'no source has this ingest URL');
        const screened = ingest.screen(found.source, found.compiled, { address: request.raw.socket.remoteAddress, headers: request.headers });
        if (screened) {
          reply.code(screened.status).type(screened.contentType);
          return reply.send(screened.body);
        }
        // Every body is read as bytes, whatever its type; Fastify would refuse a malformed content-type ("json", "") with
        // 415 before reading it, so the provider's value is set aside for verification and the stored message.
        const contentType = request.headers['content-type'];
        if (contentType !== undefined) request.raw.headers['content-type'] = 'application/octet-stream';
        request.inbound = { ...found, contentType };
        const declared = Number(request.headers['content-length'] ?? 0);
        if (declared > found.compiled.common.maxBodyBytes) {
          throw new HookrelayError('payload_too_large', `the request body exceeds this source's limit of ${found.compiled.common.maxBodyBytes} bytes`);
        }
        const refused = ingest.admit(found.source, found.compiled, now());
        if (refused) {
          reply.code(refused.status).headers(refused.headers ?? {}).type(refused.contentType);
          return reply.send(refused.body);
        }
      },
      handler: async (request, reply) => {
        const { source, compiled } = request.inbound!;
        // The query is per request (Twilio's bodySHA256, HubSpot's parameters): publicUrl names only where the provider calls.
        const query = request.url.includes('?') ? request.url.slice(request.url.indexOf('?')) : '';
        const publicUrl = compiled.common.publicUrl;
        const url = publicUrl ? (query ? publicUrl.split('?')[0] + query : publicUrl) : `${request.protocol}://${request.headers.host ?? request.hostname}${request.url}`;
        const body = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
        const answer = await ingest.receive(source, compiled, { method: request.method, url, headers: headersOf(request), body }, now(), request.trace?.traceparent ?? null);
        reply.code(answer.status).headers(answer.headers ?? {}).type(answer.contentType);
        return reply.send(answer.body);
      },
    });
  });
}
