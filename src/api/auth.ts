import type { FastifyRequest } from 'fastify';
import { HookrelayError } from '../domain/errors.js';
import type { App } from '../domain/types.js';
import { constantTimeEqual } from '../signing/standard-webhooks.js';
import type { ApiKeys } from './api-keys.js';
import { portalMay, type PortalScope, type PortalTokens } from './portal-tokens.js';

/**
 * Who is calling: the operator (admin token), or an application's API key, which may touch that application only. A
 * portal token is a key of its app whose `portal` scope further limits the routes it may call.
 */
export type Principal = { kind: 'admin' } | { kind: 'app'; appId: string; portal?: { keyId: string; scope: PortalScope } };

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
  }
}

export class Authenticator {
  constructor(
    private readonly adminToken: string,
    private readonly keys: ApiKeys,
    private readonly portalTokens: PortalTokens,
  ) {}

  async authenticate(header: string | undefined): Promise<Principal | null> {
    if (!header) return null;
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match) return null;
    if (constantTimeEqual(match[1], this.adminToken)) return { kind: 'admin' };
    if (match[1].startsWith('hrp_')) {
      const portal = await this.portalTokens.authenticate(match[1]);
      return portal === null ? null : { kind: 'app', appId: portal.appId, portal: { keyId: portal.keyId, scope: portal.scope } };
    }
    const appId = await this.keys.authenticate(match[1]);
    return appId === null ? null : { kind: 'app', appId };
  }
}

export function principalOf(request: FastifyRequest): Principal {
  if (!request.principal) throw new HookrelayError('unauthorized', 'missing or invalid bearer token');
  return request.principal;
}

/** Tenant isolation: an app principal sees only its own app, and another app looks like it does not exist. */
export function mayAccess(principal: Principal, app: App): boolean {
  return principal.kind === 'admin' || principal.appId === app.id;
}

export function requireAdmin(principal: Principal): void {
  if (principal.kind !== 'admin') throw new HookrelayError('forbidden', 'this operation needs the admin token');
}

/** A portal token calls only the routes its capabilities grant (`method` and Fastify's `url` pattern of the route). */
export function requireGranted(principal: Principal, method: string, url: string | undefined): void {
  if (principal.kind !== 'app' || !principal.portal || url === undefined) return;
  if (!portalMay(principal.portal.scope, method === 'HEAD' ? 'GET' : method, url)) throw new HookrelayError('forbidden', `this portal token may not call ${method} ${url}`);
}
