import { createHmac, timingSafeEqual } from 'node:crypto';

/** HMAC helpers over exact bytes. Comparisons are constant-time and never throw on a length mismatch. */

export type Algorithm = 'sha1' | 'sha256' | 'sha512';

export function hmac(algorithm: Algorithm, key: string | Buffer, ...parts: (string | Buffer)[]): Buffer {
  const mac = createHmac(algorithm, key);
  for (const part of parts) mac.update(part);
  return mac.digest();
}

export function bytesEqual(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

// Compiled once: a literal in the function would make a RegExp object per signature checked.
const HEX = /^[0-9a-fA-F]+$/;
const BASE64 = /^[A-Za-z0-9+/_-]+={0,2}$/;

/** Decodes a hex or base64 signature; null when it is not valid in that encoding. */
export function decodeSignature(text: string, encoding: 'hex' | 'base64'): Buffer | null {
  const trimmed = text.trim();
  if (encoding === 'hex') return HEX.test(trimmed) && trimmed.length % 2 === 0 ? Buffer.from(trimmed, 'hex') : null;
  if (!BASE64.test(trimmed)) return null;
  return Buffer.from(trimmed.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
}

/** True when any of `candidates` (decoded signatures) equals the HMAC of `parts` under any of `keys`. */
export function anyHmacMatches(algorithm: Algorithm, keys: (string | Buffer)[], parts: (string | Buffer)[], candidates: (Buffer | null)[]): boolean {
  const valid = candidates.filter((c): c is Buffer => c !== null);
  if (valid.length === 0) return false;
  let matched = false;
  for (const key of keys) {
    const expected = hmac(algorithm, key, ...parts);
    for (const candidate of valid) if (bytesEqual(expected, candidate)) matched = true;
  }
  return matched;
}
