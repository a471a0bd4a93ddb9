import { existsSync, readFileSync } from 'node:fs';
import { adminTokenFile } from '../admin-token-file.js';

/** Talking to a running hookrelay's API from the CLI (`hookrelay source …`, `hookrelay app-key …`). */

export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}

export const CONNECTION_USAGE = `Connection (flags or environment):
  --server <url>   HOOKRELAY_URL          the running hookrelay (default http://127.0.0.1:8080)
  --token <token>  HOOKRELAY_ADMIN_TOKEN  admin token (default: read from the token file beside --db)
  --db <path>      HOOKRELAY_DB           where the server keeps its database (default ./hookrelay.db)
`;

export const CONNECTION_OPTIONS = {
  server: { type: 'string' },
  token: { type: 'string' },
  db: { type: 'string' },
} as const;

/** The running server's base URL, without a trailing slash. */
export const serverOf = (values: { server?: string }) => (values.server ?? process.env.HOOKRELAY_URL ?? 'http://127.0.0.1:8080').replace(/\/+$/, '');

export function tokenOf(flag: string | undefined, db: string): string {
  const token = flag ?? process.env.HOOKRELAY_ADMIN_TOKEN;
  if (token) return token;
  const file = adminTokenFile(db);
  if (file && existsSync(file)) return readFileSync(file, 'utf8').trim();
  throw new CliError(`no admin token: pass --token, set HOOKRELAY_ADMIN_TOKEN, or run next to the server's ${file ?? 'database'}`, 2);
}

export type Call = (method: string, path: string, body?: unknown, headers?: Record<string, string>) => Promise<any>;

/** A function calling the API with the admin token; a 4xx answer becomes a CliError with exit code 2, anything else 1. */
export function apiClient(values: { server?: string; token?: string; db?: string }): Call {
  const server = serverOf(values);
  const token = tokenOf(values.token, values.db ?? process.env.HOOKRELAY_DB ?? './hookrelay.db');
  return async (method, path, body, extraHeaders) => {
    let response: Response;
    try {
      response = await fetch(server + path, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...extraHeaders },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (error) {
      throw new CliError(`cannot reach hookrelay at ${server}: ${(error as Error & { cause?: Error }).cause?.message ?? (error as Error).message}`, 1);
    }
    const text = await response.text();
    const json = text ? JSON.parse(text) : null;
    if (!response.ok) {
      const detail = Array.isArray(json?.detail) ? json.detail.map((d: { loc: string[]; msg: string }) => `${d.loc.join('.')}: ${d.msg}`).join('; ') : (json?.detail ?? text);
      throw new CliError(`${method} ${path} failed (${response.status}): ${detail}`, response.status >= 500 ? 1 : 2);
    }
    return json;
  };
}
