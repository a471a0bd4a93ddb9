import type { FastifyInstance, FastifyRequest } from 'fastify';
import { HookrelayError } from '../domain/errors.js';
import type { Store } from '../store/store.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** `own`: the route keeps idempotency inside its own transaction (message create). */
    idempotency?: 'replay' | 'own';
  }
  interface FastifyRequest {
    idempotencyScope: string | null;
  }
}

const KEY = /^[\x21-\x7e]{1,256}$/;

/** The request's `idempotency-key`, validated; null when absent. */
export function idempotencyKeyOf(request: FastifyRequest): string | null {
  const raw = request.headers['idempotency-key'];
  if (raw === undefined) return null;
  if (typeof raw !== 'string' || !KEY.test(raw)) {
    throw new HookrelayError('validation', 'header idempotency-key: must be 1 to 256 printable ASCII characters', [
      { loc: ['header', 'idempotency-key'], msg: 'must be 1 to 256 printable ASCII characters', type: 'value_error' },
    ]);
  }
  return raw;
}

/**
 * A POST retried with the same `idempotency-key` (the svix SDK sends one with every POST and reuses it on retries)
 * gets the first answer again instead of creating a second resource. Successful answers are kept for `ttlMs`.
 */
export function registerIdempotency(app: FastifyInstance, store: Store, now: () => number, ttlMs: number): void {
  app.decorateRequest('idempotencyScope', null);

  app.addHook('preHandler', async (request, reply) => {
    if (request.method !== 'POST' || request.routeOptions.config?.idempotency !== 'replay') return;
    const key = idempotencyKeyOf(request);
    if (key === null) return;
    const principal = request.principal;
    const scope = `${principal?.kind === 'app' ? principal.appId : 'admin'} ${request.routeOptions.url} ${request.url.split('?')[0]}`;
    const stored = await store.getIdempotentResponse(scope, key, now());
    if (stored) {
      reply.code(stored.status).header('content-type', 'application/json; charset=utf-8').header('idempotent-replayed', 'true');
      return reply.send(stored.body);
    }
    request.idempotencyScope = scope;
  });

  app.addHook('onSend', async (request, reply, payload) => {
    if (request.idempotencyScope === null || reply.statusCode < 200 || reply.statusCode >= 300) return payload;
    const key = request.headers['idempotency-key'] as string;
    await store.putIdempotentResponse(request.idempotencyScope, key, { status: reply.statusCode, body: typeof payload === 'string' ? payload : '' }, now() + ttlMs);
    return payload;
  });
}
