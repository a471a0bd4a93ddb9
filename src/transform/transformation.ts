import type { Sandbox } from './sandbox.js';

/**
 * Transformations: an endpoint's JavaScript `handler(webhook)` that may reshape a delivery before it is sent
 * (docs/routing.md). The shape of `webhook` is Svix's: `{method, url, headers, payload, eventType}`, plus `cancel`.
 */
export interface WebhookIn {
  method: 'POST';
  url: string;
  headers: Record<string, string>;
  /** The payload parsed as JSON; null when the stored payload is not JSON. */
  payload: unknown;
  eventType: string;
}

export interface TransformedWebhook {
  method: TransformMethod;
  url: string;
  headers: Record<string, string>;
  /** The body to send: the stored bytes when the handler left `payload` as it was, else its JSON serialisation. */
  body: Uint8Array;
  /** True when `body` is a re-serialised payload rather than the stored bytes. */
  reserialised: boolean;
}

export type TransformOutcome = { kind: 'send'; webhook: TransformedWebhook } | { kind: 'cancel' } | { kind: 'failed'; error: string };

/** Svix's `TransformationHttpMethod`. */
export const TRANSFORM_METHODS = ['POST', 'PUT', 'PATCH'] as const;
export type TransformMethod = (typeof TRANSFORM_METHODS)[number];

/** Longest transformation code accepted at save. */
export const MAX_TRANSFORMATION_CODE = 51_200;

const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/** The stored payload as the handler sees it: parsed JSON, or null when it is not JSON. */
export function parsedPayload(payload: Uint8Array | null): unknown {
  if (payload === null) return {};
  try {
    return JSON.parse(Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('utf8'));
  } catch {
    return null;
  }
}

/**
 * Runs `code` on a delivery and checks what it returned. `original` is the stored payload: when the handler returns a
 * payload equal to what it was given, the stored bytes are sent unchanged; any other payload is serialised as JSON.
 */
export async function transform(sandbox: Sandbox, code: string, webhook: WebhookIn, original: Uint8Array | null): Promise<TransformOutcome> {
  const inputJson = JSON.stringify(webhook);
  const result = await sandbox.run(code, inputJson);
  if (!result.ok) return { kind: 'failed', error: `transformation failed: ${result.error}` };
  if (result.value === undefined) return { kind: 'failed', error: 'transformation failed: handler must return the webhook object, it returned undefined or a function' };
  return checkReturned(JSON.parse(result.value) as unknown, inputJson, original);
}

function checkReturned(returned: unknown, inputJson: string, original: Uint8Array | null): TransformOutcome {
  const bad = (msg: string): TransformOutcome => ({ kind: 'failed', error: `transformation failed: bad return value: ${msg}` });
  if (returned === null || typeof returned !== 'object' || Array.isArray(returned)) return bad('handler must return the webhook object');
  const out = returned as Record<string, unknown>;
  if (out.cancel !== undefined && typeof out.cancel !== 'boolean') return bad('cancel must be a boolean');
  if (out.cancel === true) return { kind: 'cancel' };
  const method = out.method ?? 'POST';
  if (typeof method !== 'string' || !(TRANSFORM_METHODS as readonly string[]).includes(method.toUpperCase())) return bad(`method must be one of ${TRANSFORM_METHODS.join(', ')}`);
  if (typeof out.url !== 'string') return bad('url must be a string');
  let url: URL;
  try {
    url = new URL(out.url);
  } catch {
    return bad(`url ${JSON.stringify(out.url)} is not a valid URL`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return bad(`url must be http or https, not ${url.protocol}`);
  if (url.username || url.password) return bad('url must not carry credentials');
  const headers = out.headers ?? {};
  if (headers === null || typeof headers !== 'object' || Array.isArray(headers)) return bad('headers must be an object of strings');
  for (const [name, value] of Object.entries(headers)) {
    if (!HEADER_NAME.test(name)) return bad(`header name ${JSON.stringify(name)} is not a valid HTTP header name`);
    if (typeof value !== 'string' || !HEADER_VALUE.test(value)) return bad(`header ${JSON.stringify(name)} must be a string without control characters`);
  }
  if (!('payload' in out)) return bad('payload is missing (return the webhook object with its payload)');
  const input = JSON.parse(inputJson) as WebhookIn;
  const unchanged = original !== null && JSON.stringify(out.payload) === JSON.stringify(input.payload);
  const body = unchanged ? original : Buffer.from(JSON.stringify(out.payload ?? null));
  return { kind: 'send', webhook: { method: method.toUpperCase() as TransformMethod, url: out.url, headers: headers as Record<string, string>, body, reserialised: !unchanged } };
}
