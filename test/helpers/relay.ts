import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Svix } from 'svix';
import { Svix as Svix1 } from 'svix1';
import { loadSettings, type RawSettings, type Settings } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { startHookrelay, type Hookrelay } from '../../src/server.js';
import { freshDatabase, type TestDatabase } from './postgres.js';

export const ADMIN_TOKEN = 'test_admin_token_0123456789abcdef';
/** A PostgreSQL store needs a configured master key (SQLite generates one beside its file). */
export const TEST_MASTER_KEY = Buffer.alloc(32, 7).toString('base64');

export interface TestRelay extends Hookrelay {
  /** The svix 2.x SDK, with the admin token. */
  svix: Svix;
  /** The svix 1.x SDK, with the admin token. */
  svix1: Svix1;
  dir: string;
  /** Raw HTTP against the API with the admin token (or `token`). Returns status, headers and parsed JSON (or text). */
  api(method: string, path: string, body?: unknown, init?: { token?: string | null; headers?: Record<string, string>; rawBody?: string | Buffer }): Promise<ApiResponse>;
}

export interface ApiResponse {
  status: number;
  headers: Headers;
  body: any;
  text: string;
}

export type TestStoreKind = 'sqlite' | 'postgres';

/** The store `startRelay` uses: SQLite, or PostgreSQL when the suite runs with HOOKRELAY_TEST_STORE=postgres. */
export function testStoreKind(): TestStoreKind {
  const kind = process.env.HOOKRELAY_TEST_STORE ?? 'sqlite';
  if (kind !== 'sqlite' && kind !== 'postgres') throw new Error(`HOOKRELAY_TEST_STORE must be sqlite or postgres, not ${JSON.stringify(kind)}`);
  return kind;
}

/** Test receivers listen on loopback, which deliveries may not reach unless allowed; `allowNetworks: ''` turns this off. */
export const LOOPBACK = '127.0.0.0/8,::1/128';

/**
 * Starts hookrelay in this process on a free loopback port, on a fresh store (an SQLite file in a temp dir, or a
 * fresh database on the test PostgreSQL when HOOKRELAY_TEST_STORE=postgres), with a short retry schedule so that
 * retry behaviour is observable within a test, and loopback allowed as a delivery target.
 */
export function startRelay(flags: RawSettings = {}, env: Record<string, string> = {}, overrides: Partial<Settings> = {}): Promise<TestRelay> {
  return startRelayOn(testStoreKind(), flags, env, overrides);
}

/** `startRelay` on a given store, whatever HOOKRELAY_TEST_STORE says. */
export async function startRelayOn(kind: TestStoreKind, flags: RawSettings = {}, env: Record<string, string> = {}, overrides: Partial<Settings> = {}): Promise<TestRelay> {
  const dir = mkdtempSync(join(tmpdir(), 'hookrelay-test-'));
  let database: TestDatabase | null = null;
  const cleanUp = async () => {
    await database?.drop();
    rmSync(dir, { recursive: true, force: true });
  };
  let relay: Hookrelay;
  try {
    if (kind === 'postgres' && flags.db === undefined) database = await freshDatabase();
    const settings = loadSettings(
      { port: '0', host: '127.0.0.1', db: database?.url ?? join(dir, 'hookrelay.db'), logLevel: 'silent', retrySchedule: '0,100ms,200ms', shutdownGrace: '2s', allowNetworks: LOOPBACK, ...flags },
      { HOOKRELAY_ADMIN_TOKEN: ADMIN_TOKEN, ...(database || /^postgres(ql)?:\/\//i.test(flags.db ?? '') ? { HOOKRELAY_MASTER_KEY: TEST_MASTER_KEY } : {}), ...env },
    );
    relay = await startHookrelay({ ...settings, pollMs: 200, ...overrides }, createLogger(settings.logLevel));
  } catch (error) {
    await cleanUp();
    throw error;
  }
  const svix = new Svix(relay.adminToken, { serverUrl: relay.url });
  const close = relay.close;
  return {
    ...relay,
    svix,
    svix1: new Svix1(relay.adminToken, { serverUrl: relay.url }),
    dir,
    close: async () => {
      await close();
      await cleanUp();
    },
    async api(method, path, body, init = {}) {
      const headers: Record<string, string> = { ...(init.headers ?? {}) };
      const token = init.token === undefined ? relay.adminToken : init.token;
      if (token !== null) headers.authorization = `Bearer ${token}`;
      let payload: string | Buffer | undefined = init.rawBody;
      if (payload === undefined && body !== undefined) {
        payload = JSON.stringify(body);
        headers['content-type'] ??= 'application/json';
      }
      const response = await fetch(relay.url + path, { method, headers, body: payload });
      const text = await response.text();
      let parsed: unknown = text;
      try {
        parsed = text ? JSON.parse(text) : null;
      } catch {
        /* not JSON: keep the text */
      }
      return { status: response.status, headers: response.headers, body: parsed, text };
    },
  };
}
