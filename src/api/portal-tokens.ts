import type { ApiKeys } from './api-keys.js';

/**
 * App portal tokens: expiring keys of one application with a scope, minted by `POST /api/v1/auth/app-portal-access`.
 *
 * A token is `hrp_<key id>_<scope>_<secret>`, stored like any API key (a SHA-256 digest of the whole token in the
 * api_key table, so the operator lists and revokes it with the app's keys). The scope — capabilities and feature
 * flags — travels inside the token in base64url JSON; the digest covers it, so a changed scope is a wrong key.
 */

/** Svix's capability names. `ViewBase` is always required. */
export const CAPABILITIES = ['ViewBase', 'ViewEndpointSecret', 'ManageEndpointSecret', 'ManageTransformations', 'CreateAttempts', 'ManageEndpoint'] as const;
export type Capability = (typeof CAPABILITIES)[number];

export interface PortalScope {
  capabilities: ReadonlySet<Capability>;
  /** Event types behind another feature flag are hidden from the token. */
  featureFlags: ReadonlySet<string>;
}

const FORMAT = /^hrp_(key_[0-9A-Za-z]{25})_([A-Za-z0-9_-]{1,8192})_([A-Za-z0-9_-]{43})$/;

function encodeScope(capabilities: readonly Capability[], featureFlags: readonly string[]): string {
  const bits = capabilities.reduce((sum, c) => sum | (1 << CAPABILITIES.indexOf(c)), 0);
  return Buffer.from(JSON.stringify({ c: bits, f: featureFlags })).toString('base64url');
}

function decodeScope(text: string): PortalScope | null {
  try {
    const { c, f } = JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) as { c: number; f: string[] };
    return { capabilities: new Set(CAPABILITIES.filter((_, i) => (c & (1 << i)) !== 0)), featureFlags: new Set(f) };
  } catch {
    return null;
  }
}

export class PortalTokens {
  constructor(private readonly keys: ApiKeys) {}

  async create(appId: string, name: string, expiresAt: number, capabilities: readonly Capability[], featureFlags: readonly string[]): Promise<{ keyId: string; token: string }> {
    const scope = encodeScope(capabilities, featureFlags);
    const { apiKey, key } = await this.keys.issue(appId, name, expiresAt, (id, secret) => ({ key: `hrp_${id}_${scope}_${secret}`, prefix: `hrp_${id}` }));
    return { keyId: apiKey.id, token: key };
  }

  /** The app, key id and scope of a live portal token, or null. */
  async authenticate(token: string): Promise<{ appId: string; keyId: string; scope: PortalScope } | null> {
    const match = FORMAT.exec(token);
    if (!match) return null;
    const apiKey = await this.keys.verify(match[1], token);
    if (!apiKey) return null;
    const scope = decodeScope(match[2]);
    return scope ? { appId: apiKey.appId, keyId: apiKey.id, scope } : null;
  }

  revoke(appId: string, keyId: string): Promise<boolean> {
    return this.keys.revoke(appId, keyId);
  }
}

const APP = '/api/v1/app/:app_id';
const ENDPOINT = `${APP}/endpoint/:endpoint_id`;

/**
 * What each capability allows, by route (Fastify's path pattern). A route listed nowhere is refused to every portal
 * token, so a route added later stays closed to the portal until it is classified here. Tenancy is checked by the
 * routes themselves, as for any key of the app.
 */
const GRANTS: Record<Capability, readonly string[]> = {
  ViewBase: [
    'GET /api/v1/app',
    `GET ${APP}`,
    'GET /api/v1/event-type',
    'GET /api/v1/event-type/:event_type_name',
    `GET ${APP}/endpoint`,
    `GET ${ENDPOINT}`,
    `GET ${ENDPOINT}/headers`,
    `GET ${ENDPOINT}/encryption-key`,
    `GET ${ENDPOINT}/msg`,
    `GET ${APP}/msg`,
    `GET ${APP}/msg/:msg_id`,
    `GET ${APP}/msg/:msg_id/endpoint`,
    `GET ${APP}/msg/:msg_id/attempt/:attempt_id`,
    `GET ${APP}/attempt/endpoint/:endpoint_id`,
    `GET ${APP}/attempt/msg/:msg_id`,
    'POST /api/v1/auth/logout',
  ],
  ViewEndpointSecret: [`GET ${ENDPOINT}/secret`],
  ManageEndpointSecret: [`GET ${ENDPOINT}/secret`, `POST ${ENDPOINT}/secret/rotate`],
  ManageTransformations: [`GET ${ENDPOINT}/transformation`, `PATCH ${ENDPOINT}/transformation`, `POST ${ENDPOINT}/transformation/simulate`],
  CreateAttempts: [`POST ${ENDPOINT}/recover`, `POST ${APP}/msg/:msg_id/endpoint/:endpoint_id/resend`, `POST ${ENDPOINT}/send-example`],
  ManageEndpoint: [
    `POST ${APP}/endpoint`,
    `PUT ${ENDPOINT}`,
    `PATCH ${ENDPOINT}`,
    `DELETE ${ENDPOINT}`,
    `GET ${ENDPOINT}/secret`,
    `POST ${ENDPOINT}/secret/rotate`,
    `PUT ${ENDPOINT}/headers`,
    `PATCH ${ENDPOINT}/headers`,
    `POST ${ENDPOINT}/encryption-key`,
    `DELETE ${ENDPOINT}/encryption-key/:kid`,
    `POST ${ENDPOINT}/verification`,
  ],
};

const ALLOWED = new Map(CAPABILITIES.map((c) => [c, new Set(GRANTS[c])]));

/** Whether a token of this scope may call the route `method url` (url as Fastify's pattern, e.g. `/api/v1/app/:app_id`). */
export function portalMay(scope: PortalScope, method: string, url: string): boolean {
  const route = `${method} ${url}`;
  for (const capability of scope.capabilities) if (ALLOWED.get(capability)!.has(route)) return true;
  return false;
}
