import type { FastifyInstance } from 'fastify';
import { HookrelayError } from '../../domain/errors.js';
import type { Metrics } from '../../observability/metrics.js';
import { constantTimeEqual } from '../../signing/standard-webhooks.js';

export interface MetricsAccess {
  metrics: Metrics;
  adminToken: string;
  /** A token that may read the metrics and nothing else (HOOKRELAY_METRICS_TOKEN). */
  metricsToken: string | null;
}

/**
 * `GET /metrics`, the Prometheus exposition. Outside the REST API and its OpenAPI document: it serves no tenant's data
 * (no per-app label), and a scraper gets a token of its own instead of one that can change things.
 */
export function metricsRoute(app: FastifyInstance, access: MetricsAccess): void {
  app.get('/metrics', { config: { public: true } }, async (request, reply) => {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.authorization ?? '');
    const token = match?.[1];
    const allowed = token !== undefined && (constantTimeEqual(token, access.adminToken) || (access.metricsToken !== null && constantTimeEqual(token, access.metricsToken)));
    if (!allowed) throw new HookrelayError('unauthorized', 'GET /metrics needs the metrics token (HOOKRELAY_METRICS_TOKEN) or the admin token as "Authorization: Bearer <token>"');
    const text = await access.metrics.scrape((error) => request.log.warn({ err: error }, 'metrics: reading the backlog and endpoint gauges from the store failed'));
    reply.header('content-type', access.metrics.contentType);
    return text;
  });
}
