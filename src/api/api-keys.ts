import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { ID_PREFIX, newId } from '../domain/ids.js';
import type { ApiKey } from '../domain/types.js';
import type { Page, PageRequest, Store } from '../store/store.js';

/**
 * Per-application API keys: `hrk_<key id>_<secret>`, 256 random bits of secret. Only a SHA-256 digest is stored — a
 * slow password hash buys nothing for a random key of this length, and the digest keeps authentication cheap. The key
 * names its row, so authenticating reads one row by id and compares digests in constant time.
 *
 * Rows are cached for `ttlMs` on the request path. A key revoked through this process stops working at once; through
 * another process sharing the database, within `ttlMs`.
 */
export const API_KEY_CACHE_MS = 5_000;

const FORMAT = /^hrk_(key_[0-9A-Za-z]{25})_([A-Za-z0-9_-]{43})$/;
const CACHE_LIMIT = 10_000;

const digest = (key: string) => createHash('sha256').update(key).digest();

export class ApiKeys {
  private readonly cache = new Map<string, { until: number; key: Promise<ApiKey | null>; appId?: string }>();

  constructor(
    private readonly store: () => Store,
    private readonly now: () => number,
    private readonly ttlMs = API_KEY_CACHE_MS,
  ) {}

  /** Creates a key of the app; the returned `key` is the only time anyone sees it. */
  create(appId: string, name: string | null, expiresAt: number | null): Promise<{ apiKey: ApiKey; key: string }> {
    return this.issue(appId, name, expiresAt, (id, secret) => ({ key: `hrk_${id}_${secret}`, prefix: `hrk_${id}_${secret.slice(0, 4)}` }));
  }

  /**
   * Stores a new key row whose token `format` builds from its id and a fresh secret. The digest covers the whole
   * token, so anything else `format` writes into it (a portal token's scope) cannot be altered without the key failing.
   */
  async issue(
    appId: string,
    name: string | null,
    expiresAt: number | null,
    format: (id: string, secret: string) => { key: string; prefix: string },
  ): Promise<{ apiKey: ApiKey; key: string }> {
    const now = this.now();
    const id = newId(ID_PREFIX.apiKey, now);
    const { key, prefix } = format(id, randomBytes(32).toString('base64url'));
    const apiKey = await this.store().createApiKey({ id, appId, name, prefix, hash: digest(key).toString('hex'), createdAt: now, expiresAt });
    return { apiKey, key };
  }

  list(appId: string, page: PageRequest): Promise<Page<ApiKey>> {
    return this.store().listApiKeys(appId, page);
  }

  async revoke(appId: string, id: string): Promise<boolean> {
    const deleted = await this.store().deleteApiKey(appId, id);
    this.cache.delete(id);
    return deleted;
  }

  /** The app was deleted (with its keys): stop honouring them in this process now rather than after `ttlMs`. */
  forgetApp(appId: string): void {
    for (const [id, entry] of this.cache) if (entry.appId === undefined || entry.appId === appId) this.cache.delete(id);
  }

  /** The app a bearer token is a live key of, or null. */
  async authenticate(token: string): Promise<string | null> {
    const match = FORMAT.exec(token);
    if (!match) return null;
    return (await this.verify(match[1], token))?.appId ?? null;
  }

  /** The live key row `id` if `token` is its token (digest compared in constant time, expiry checked), else null. */
  async verify(id: string, token: string): Promise<ApiKey | null> {
    const apiKey = await this.lookup(id);
    if (!apiKey) return null;
    const stored = Buffer.from(apiKey.hash, 'hex');
    const presented = digest(token);
    if (stored.length !== presented.length || !timingSafeEqual(stored, presented)) return null;
    if (apiKey.expiresAt !== null && apiKey.expiresAt <= this.now()) return null;
    return apiKey;
  }

  /** One read per key id per `ttlMs`, shared by the requests that arrive meanwhile (unknown ids included). */
  private lookup(id: string): Promise<ApiKey | null> {
    const now = performance.now();
    const cached = this.cache.get(id);
    if (cached && cached.until > now) return cached.key;
    if (cached) this.cache.delete(id);
    if (this.cache.size >= CACHE_LIMIT) this.cache.delete(this.cache.keys().next().value!);
    const key = this.store().getApiKey(id);
    const entry: { until: number; key: Promise<ApiKey | null>; appId?: string } = { until: now + this.ttlMs, key };
    this.cache.set(id, entry);
    key.then(
      (found) => void (entry.appId = found?.appId ?? ''),
      () => {
        if (this.cache.get(id) === entry) this.cache.delete(id);
      },
    );
    return key;
  }
}
