import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

const PREFIX = 'whsec_';

/** A new `whsec_` secret: 24 random bytes, as the svix server generates. */
export function generateSecret(): string {
  return PREFIX + randomBytes(24).toString('base64');
}

/** The HMAC key of a secret, with or without the `whsec_` prefix; null when it is not base64 of 24–64 bytes. */
export function secretKey(secret: string): Buffer | null {
  const body = secret.startsWith(PREFIX) ? secret.slice(PREFIX.length) : secret;
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(body)) return null;
  const key = Buffer.from(body, 'base64');
  return key.length >= 24 && key.length <= 64 ? key : null;
}

/** The bytes a Standard Webhooks signature covers: `${id}.${timestamp}.` followed by the exact payload bytes. */
function signedContent(id: string, timestampSec: number, payload: Uint8Array): Buffer {
  const head = Buffer.from(`${id}.${timestampSec}.`);
  return Buffer.concat([head, payload]);
}

export function sign(key: Buffer, id: string, timestampSec: number, payload: Uint8Array): string {
  return 'v1,' + createHmac('sha256', key).update(signedContent(id, timestampSec, payload)).digest('base64');
}

/**
 * Which names the id, timestamp and signature headers go by: Standard Webhooks' `webhook-*`, Svix's `svix-*` (what
 * Svix sends by default, and what receivers written against Svix read), or both with the same values.
 */
export type SignatureHeaderSet = 'both' | 'webhook' | 'svix';

/** The signature headers for one message, with one `v1,` signature per valid key (rotation overlap). */
export function signatureHeaders(keys: Buffer[], id: string, timestampSec: number, payload: Uint8Array, set: SignatureHeaderSet = 'both'): Record<string, string> {
  const content = signedContent(id, timestampSec, payload);
  const signature = keys.map((key) => 'v1,' + createHmac('sha256', key).update(content).digest('base64')).join(' ');
  const headers: Record<string, string> = {};
  for (const prefix of set === 'both' ? ['webhook', 'svix'] : [set]) {
    headers[`${prefix}-id`] = id;
    headers[`${prefix}-timestamp`] = String(timestampSec);
    headers[`${prefix}-signature`] = signature;
  }
  return headers;
}

/** Constant-time string comparison that does not throw on a length mismatch. */
export function constantTimeEqual(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}
