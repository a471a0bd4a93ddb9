import type { Router } from '../router.js';

/** Readiness of the parts a request depends on; each check throws or returns a problem string when not ready. */
export type Readiness = () => Promise<Record<string, string>>;

export function healthRoutes(router: Router, readiness: Readiness, openapi: () => unknown): void {
  const tag = 'Health';
  let document: unknown = null;

  router.add({ method: 'GET', url: '/api/v1/health', summary: 'Health', tag, status: 204, public: true }, async () => undefined);

  router.add({ method: 'GET', url: '/healthz', summary: 'Liveness', tag, status: 200, public: true }, async () => ({ status: 'ok' }));

  router.add({ method: 'GET', url: '/readyz', summary: 'Readiness', tag, status: 200, public: true }, async (_request, reply) => {
    const checks = await readiness();
    const ready = Object.values(checks).every((v) => v === 'ok');
    if (!ready) reply.code(503);
    return { status: ready ? 'ready' : 'not_ready', checks };
  });

  router.add({ method: 'GET', url: '/api/v1/openapi.json', summary: 'OpenAPI document', tag, status: 200, public: true }, async () => (document ??= openapi()));
}
