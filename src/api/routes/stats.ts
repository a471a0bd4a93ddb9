import { z } from 'zod';
import { principalOf, requireAdmin } from '../auth.js';
import type { ApiContext } from '../context.js';
import type { Router } from '../router.js';
import { parse } from '../validation.js';

const MINUTE = 60_000;

const OverviewQuery = z.strictObject({
  minutes: z
    .string()
    .regex(/^\d+$/, 'must be a whole number')
    .transform(Number)
    .pipe(z.number().int().min(5).max(1440))
    .optional()
    .describe('How many minutes back, 5–1440; 60 when absent'),
});

const OverviewOut = z.object({
  since: z.string(),
  until: z.string(),
  perMinute: z.array(z.object({ minute: z.string(), messages: z.number(), attempts: z.number(), failedAttempts: z.number() })),
  failureRate: z.number().nullable().describe('Failed attempts / attempts over the window; null without attempts'),
  pending: z.number().describe('Deliveries waiting, due or scheduled for a retry'),
  inFlight: z.number(),
  oldestDue: z.string().nullable().describe('When the earliest pending delivery of an enabled endpoint is (or was) due'),
});

/** hookrelay extension, operator only: what the dashboard's overview draws, from stored data. */
export function statsRoutes(router: Router, ctx: ApiContext): void {
  router.add(
    { method: 'GET', url: '/api/v1/stats/overview', summary: 'Delivery overview', tag: 'Stats', status: 200, query: OverviewQuery, response: OverviewOut },
    async (request) => {
      requireAdmin(principalOf(request));
      const minutes = parse(OverviewQuery, request.query, 'query').minutes ?? 60;
      const now = ctx.now();
      const since = Math.floor(now / MINUTE) * MINUTE - (minutes - 1) * MINUTE;
      const [stats, oldestDue] = await Promise.all([ctx.store.overview(since, now + 1), ctx.store.nextDueAt()]);
      const messages = new Map(stats.messages.map((m) => [m.minute, m.count]));
      const attempts = new Map(stats.attempts.map((a) => [a.minute, a]));
      const perMinute = Array.from({ length: minutes }, (_, i) => {
        const minute = since + i * MINUTE;
        const a = attempts.get(minute);
        return { minute: new Date(minute).toISOString(), messages: messages.get(minute) ?? 0, attempts: a?.count ?? 0, failedAttempts: a?.failed ?? 0 };
      });
      const total = stats.attempts.reduce((sum, a) => sum + a.count, 0);
      const failed = stats.attempts.reduce((sum, a) => sum + a.failed, 0);
      return {
        since: new Date(since).toISOString(),
        until: new Date(now).toISOString(),
        perMinute,
        failureRate: total === 0 ? null : failed / total,
        pending: stats.pending,
        inFlight: stats.inFlight,
        oldestDue: oldestDue === null ? null : new Date(oldestDue).toISOString(),
      };
    },
  );
}
