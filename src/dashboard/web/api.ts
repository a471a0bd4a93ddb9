/**
 * The one way the browser code talks to hookrelay: its public v1 API, with the portal token as a bearer token (the
 * portal) or the HttpOnly session cookie plus the CSRF header (the dashboard). Errors keep the API's `{code, detail}`.
 */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    detail: string,
  ) {
    super(detail);
  }
}

export interface Page<T> {
  data: T[];
  iterator: string | null;
  prevIterator: string | null;
  done: boolean;
}

export type Auth = { bearer: string } | { csrf: string };

export class Api {
  constructor(private readonly auth: Auth) {}

  async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    return (await this.callWithText<T>(method, path, body)).value;
  }

  /** The parsed answer and its text as received (to show a field exactly as the API wrote it). */
  async callWithText<T>(method: string, path: string, body?: unknown): Promise<{ value: T; text: string }> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if ('bearer' in this.auth) headers.authorization = `Bearer ${this.auth.bearer}`;
    else headers['x-hookrelay-csrf'] = this.auth.csrf;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'same-origin' });
    const text = await response.text();
    const parsed = text ? safeJson(text) : null;
    if (!response.ok) throw new ApiError(response.status, errorCode(parsed), errorDetail(response.status, parsed, text));
    return { value: parsed as T, text };
  }

  get = <T>(path: string) => this.call<T>('GET', path);
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function errorCode(body: unknown): string {
  return typeof body === 'object' && body !== null && typeof (body as { code?: unknown }).code === 'string' ? (body as { code: string }).code : 'error';
}

function errorDetail(status: number, body: unknown, text: string): string {
  if (typeof body === 'object' && body !== null) {
    const detail = (body as { detail?: unknown }).detail;
    if (typeof detail === 'string') return detail;
    if (Array.isArray(detail)) return detail.map((d: { loc?: unknown[]; msg?: string }) => `${(d.loc ?? []).slice(1).join('.')}: ${d.msg}`).join('; ');
  }
  return `HTTP ${status}${text ? `: ${text.slice(0, 200)}` : ''}`;
}

/**
 * The text of a top-level field's value in a JSON object's text, exactly as written (null when absent): a message's
 * payload is shown as the API returned it, not re-serialised. Scans strings (with escapes) and nesting only.
 */
export function rawField(text: string, key: string): string | null {
  let depth = 0;
  let i = 0;
  const skipString = (at: number) => {
    let j = at + 1;
    while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
    return j + 1;
  };
  while (i < text.length) {
    const c = text[i];
    if (c === '"') {
      const end = skipString(i);
      if (depth === 1 && JSON.parse(text.slice(i, end)) === key && /^\s*:/.test(text.slice(end))) {
        let start = text.indexOf(':', end) + 1;
        while (/\s/.test(text[start])) start++;
        let j = start;
        let level = 0;
        do {
          const d = text[j];
          if (d === '"') j = skipString(j);
          else {
            if (d === '{' || d === '[') level++;
            else if (d === '}' || d === ']') level--;
            j++;
          }
        } while (j < text.length && (level > 0 || !/[,}]/.test(text[j])));
        return text.slice(start, j).trimEnd();
      }
      i = end;
      continue;
    }
    if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') depth--;
    i++;
  }
  return null;
}

export const q = (params: Record<string, string | number | null | undefined>) => {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) if (value !== null && value !== undefined && value !== '') search.set(key, String(value));
  const text = search.toString();
  return text ? `?${text}` : '';
};

export const enc = encodeURIComponent;

export interface Endpoint {
  id: string;
  uid: string | null;
  url: string;
  description: string;
  filterTypes: string[] | null;
  channels: string[] | null;
  disabled: boolean;
  disabledReason: string | null;
  rateLimit: number | null;
  circuit: { state: 'closed' | 'open' | 'half-open'; openUntil: string | null; consecutiveFailures: number; failingSince: string | null; parkedMessages: number };
  createdAt: string;
}

export interface Message {
  id: string;
  eventType: string;
  eventId: string | null;
  payload: unknown;
  channels: string[] | null;
  tags: string[] | null;
  timestamp: string;
}

export interface Attempt {
  id: string;
  msgId: string;
  endpointId: string;
  url: string;
  response: string;
  responseStatusCode: number;
  responseDurationMs: number;
  status: number;
  statusText: string;
  triggerType: number;
  timestamp: string;
  error?: string | null;
  /** hookrelay extension: the method and headers sent, in order; null when no HTTP request was recorded. */
  request?: SentRequest | null;
}

export interface SentRequest {
  method: string;
  headers: [name: string, value: string][];
}

export interface EventType {
  name: string;
  description: string;
  archived: boolean;
}

export interface Application {
  id: string;
  uid: string | null;
  name: string;
  metadata: Record<string, string>;
}
