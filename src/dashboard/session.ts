import { createHmac, randomBytes } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { constantTimeEqual } from '../signing/standard-webhooks.js';

/**
 * Dashboard sign-in: the operator gives the admin token once; the browser then holds an HttpOnly, SameSite=Strict
 * session cookie, never the token, and never in a URL. The cookie is stateless — `<expiry ms>.<nonce>.<MAC>` under a
 * key derived from the admin token — so every hookrelay process sharing the token accepts it, and changing the admin
 * token signs every session out.
 *
 * CSRF: the cookie authenticates an API request only together with the `x-hookrelay-csrf` header, a MAC of the
 * session that the page reads from `GET /ui/session` (same origin only: no CORS). A cross-site form or script can
 * neither send the cookie (SameSite=Strict) nor set the header.
 */
export const SESSION_COOKIE = 'hookrelay_session';
export const CSRF_HEADER = 'x-hookrelay-csrf';
export const SESSION_TTL_MS = 12 * 3_600_000;

export class DashboardSessions {
  private readonly key: Buffer;

  constructor(
    private readonly adminToken: string,
    private readonly now: () => number,
    private readonly secure: boolean,
  ) {
    this.key = createHmac('sha256', adminToken).update('hookrelay dashboard session v1').digest();
  }

  /** The cookie value of a new session, if `token` is the admin token. */
  signIn(token: string): string | null {
    if (!constantTimeEqual(token, this.adminToken)) return null;
    const body = `${this.now() + SESSION_TTL_MS}.${randomBytes(16).toString('base64url')}`;
    return `${body}.${this.mac('session', body)}`;
  }

  /** The session's CSRF token, if the request carries a live session cookie. */
  csrfOf(request: FastifyRequest): string | null {
    const session = this.sessionOf(request);
    return session === null ? null : this.mac('csrf', session);
  }

  /** Whether the request is the operator's: a live session cookie and its CSRF header. */
  authenticates(request: FastifyRequest): boolean {
    const csrf = request.headers[CSRF_HEADER];
    if (typeof csrf !== 'string') return false;
    const expected = this.csrfOf(request);
    return expected !== null && constantTimeEqual(csrf, expected);
  }

  setCookie(value: string): string {
    return `${SESSION_COOKIE}=${value}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${SESSION_TTL_MS / 1000}${this.secure ? '; Secure' : ''}`;
  }

  clearCookie(): string {
    return `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0${this.secure ? '; Secure' : ''}`;
  }

  private sessionOf(request: FastifyRequest): string | null {
    const value = cookieOf(request.headers.cookie, SESSION_COOKIE);
    const match = value === null ? null : /^(\d{1,15})\.([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{43})$/.exec(value);
    if (!match) return null;
    const body = `${match[1]}.${match[2]}`;
    if (!constantTimeEqual(match[3], this.mac('session', body))) return null;
    return Number(match[1]) > this.now() ? body : null;
  }

  private mac(purpose: string, value: string): string {
    return createHmac('sha256', this.key).update(`${purpose}:${value}`).digest('base64url');
  }
}

function cookieOf(header: string | undefined, name: string): string | null {
  if (!header) return null;
  for (const part of header.split(';')) {
    const at = part.indexOf('=');
    if (at > 0 && part.slice(0, at).trim() === name) return part.slice(at + 1).trim();
  }
  return null;
}
