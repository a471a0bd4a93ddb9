import type { Router } from '../router.js';

/**
 * `checks`: what requests depend on (the store); each is `ok` or the problem, and any problem makes the answer 503.
 * `destinations`: connectivity of non-HTTP destinations (Temporal, …), reported but not gating readiness: deliveries
 * to a destination that is down are kept and retried, so the gateway itself stays ready.
 */
export type Readiness = () => Promise<{ checks: Record<string, string>; destinations: Record<string, string> }>;

export function healthRoutes(router: Router, readiness: Readiness, openapi: () => unknown): void {
  const tag = 'Health';
  let document: unknown = null;

  router.add({ method: 'GET', url: '/api/v1/health', summary: 'Health', tag, status: 204, public: true }, async () => undefined);

  router.add({ method: 'GET', url: '/healthz', summary: 'Liveness', tag, status: 200, public: true }, async () => ({ status: 'ok' }));

  router.add({ method: 'GET', url: '/readyz', summary: 'Readiness', tag, status: 200, public: true }, async (_request, reply) => {
    const { checks, destinations } = await readiness();
    const ready = Object.values(checks).every((v) => v === 'ok');
    if (!ready) reply.code(503);
    return { status: ready ? 'ready' : 'not_ready', checks, destinations };
  });

  router.add({ method: 'GET', url: '/api/v1/openapi.json', summary: 'OpenAPI document', tag, status: 200, public: true }, async () => (document ??= openapi()));
}
