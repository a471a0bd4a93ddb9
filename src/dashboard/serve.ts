import { existsSync, readFileSync } from 'node:fs';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import { HookrelayError } from '../domain/errors.js';
import { parse } from '../api/validation.js';
import type { DashboardSessions } from './session.js';

/**
 * Serves the operator dashboard (`/ui`) and the customer portal (`/portal`) from the files `npm run build` compiles into ./static (scripts/build-ui.mjs):
 * same port, no CDN. The pages run only their own scripts (a strict Content-Security-Policy without 'unsafe-inline')
 * and call the public API only.
 */
export interface UiOptions {
  /** Origins allowed to show the portal in an iframe (CSP frame-ancestors); none: it cannot be framed. */
  portalFrameAncestors: readonly string[];
}

const STATIC = new URL('./static/', import.meta.url);
const TYPES: Record<string, string> = { js: 'text/javascript; charset=utf-8', css: 'text/css; charset=utf-8', html: 'text/html; charset=utf-8' };
const ASSETS = ['dashboard.js', 'portal.js', 'ui.css'];
const SignIn = z.strictObject({ token: z.string().min(1).max(4096) });

export function contentSecurityPolicy(frameAncestors: readonly string[]): string {
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    // The portal shows the operator's logo (portal.logo metadata), an https: URL.
    "img-src 'self' https: data:",
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    `frame-ancestors ${frameAncestors.length ? frameAncestors.join(' ') : "'none'"}`,
  ].join('; ');
}

export function uiRoutes(app: FastifyInstance, options: UiOptions, sessions: DashboardSessions): void {
  const files = new Map<string, Buffer>();
  const read = (name: string) => {
    let body = files.get(name);
    if (!body) {
      const url = new URL(name, STATIC);
      if (!existsSync(url)) throw new HookrelayError('not_found', `the UI was not built (${name} is missing): run npm run build`);
      body = readFileSync(url);
      files.set(name, body);
    }
    return body;
  };
  const send = (reply: FastifyReply, name: string, frameAncestors: readonly string[]) =>
    reply
      .header('content-type', TYPES[name.split('.').pop()!])
      .header('content-security-policy', contentSecurityPolicy(frameAncestors))
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      .header('cache-control', 'no-cache')
      .send(read(name));

  const config = { public: true };
  app.route({ method: 'GET', url: '/ui', config, handler: async (_request, reply) => send(reply, 'dashboard.html', []) });
  // Sign-in and sign-out of the dashboard. The answers are JSON like the API's; the admin token travels in the body only.
  app.route({
    method: 'POST',
    url: '/ui/session',
    config,
    handler: async (request, reply) => {
      const { token } = parse(SignIn, request.body, 'body');
      const session = sessions.signIn(token);
      if (session === null) throw new HookrelayError('unauthorized', 'that is not the admin token');
      reply.header('set-cookie', sessions.setCookie(session)).header('cache-control', 'no-store');
      return reply.code(204).send();
    },
  });
  app.route({
    method: 'GET',
    url: '/ui/session',
    config,
    handler: async (request, reply) => {
      const csrf = sessions.csrfOf(request);
      if (csrf === null) throw new HookrelayError('unauthorized', 'not signed in');
      return reply.header('cache-control', 'no-store').send({ csrf });
    },
  });
  app.route({
    method: 'DELETE',
    url: '/ui/session',
    config,
    handler: async (request, reply) => {
      if (!sessions.authenticates(request)) throw new HookrelayError('unauthorized', 'not signed in');
      return reply.code(204).header('set-cookie', sessions.clearCookie()).send();
    },
  });
  app.route({ method: 'GET', url: '/portal', config, handler: async (_request, reply) => send(reply, 'portal.html', options.portalFrameAncestors) });
  app.route({
    method: 'GET',
    url: '/ui/assets/:file',
    config,
    handler: async (request, reply) => {
      const { file } = request.params as { file: string };
      if (!ASSETS.includes(file)) throw new HookrelayError('not_found', `no UI asset ${JSON.stringify(file)}`);
      return send(reply, file, []);
    },
  });
}
