import { createHmac, createPrivateKey, createPublicKey, randomBytes, sign as edSign, timingSafeEqual, type KeyObject } from 'node:crypto';

const PREFIX = 'whsec_';
/** Standard Webhooks' asymmetric key serialisations: base64 of the 32-byte Ed25519 seed / public key. */
const PRIVATE_PREFIX = 'whsk_';
const PUBLIC_PREFIX = 'whpk_';
/** PKCS #8 DER of an Ed25519 private key (RFC 8410) up to the seed, so Node can import a bare seed. */
const ED25519_PKCS8_HEAD = Buffer.from('302e020100300506032b657004220420', 'hex');

/** How an endpoint signs: `hmac` (`v1,`, a shared `whsec_` secret) or `ed25519` (`v1a,`, a `whsk_`/`whpk_` key pair). */
export type SigningScheme = 'hmac' | 'ed25519';

/** The scheme of a stored signing secret, read from its prefix. */
export function schemeOf(secret: string): SigningScheme {
  return secret.startsWith(PRIVATE_PREFIX) ? 'ed25519' : 'hmac';
}

/** A new `whsk_` private key: a random 32-byte Ed25519 seed. */
export function generateSigningKey(): string {
  return PRIVATE_PREFIX + randomBytes(32).toString('base64');
}

/** A new signing secret of the scheme. */
export function generateFor(scheme: SigningScheme): string {
  return scheme === 'ed25519' ? generateSigningKey() : generateSecret();
}

/** The Ed25519 private key of a `whsk_` secret; null when it is not base64 of a 32-byte seed. */
export function ed25519Key(secret: string): KeyObject | null {
  if (!secret.startsWith(PRIVATE_PREFIX)) return null;
  const body = secret.slice(PRIVATE_PREFIX.length);
  if (!/^[A-Za-z0-9+/]{43}=$/.test(body)) return null;
  return createPrivateKey({ key: Buffer.concat([ED25519_PKCS8_HEAD, Buffer.from(body, 'base64')]), format: 'der', type: 'pkcs8' });
}

/** The `whpk_` public key that verifies what a `whsk_` secret signs. */
export function publicKeyOf(secret: string): string {
  const key = ed25519Key(secret);
  if (!key) throw new Error('not a whsk_ signing key');
  const { x } = createPublicKey(key).export({ format: 'jwk' });
  return PUBLIC_PREFIX + Buffer.from(x!, 'base64url').toString('base64');
}

/** What an API answer may show of a signing secret: an HMAC secret itself, an Ed25519 key pair's public half only. */
export function shownSecret(secret: string): string {
  return schemeOf(secret) === 'ed25519' ? publicKeyOf(secret) : secret;
}

/** A decoded signing key: an HMAC key (Buffer) signs `v1,`; an Ed25519 private key signs `v1a,`. */
export type SigningKey = Buffer | KeyObject;

/** The key of any stored signing secret (`whsec_…` or `whsk_…`); null when it is malformed. */
export function signingKey(secret: string): SigningKey | null {
  return secret.startsWith(PRIVATE_PREFIX) ? ed25519Key(secret) : secretKey(secret);
}

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

/** What a Standard Webhooks signature covers: `${id}.${timestamp}.` followed by the exact payload bytes. */
function signatureHead(id: string, timestampSec: number): string {
  return `${id}.${timestampSec}.`;
}

export function sign(key: SigningKey, id: string, timestampSec: number, payload: Uint8Array): string {
  return signContent(key, signatureHead(id, timestampSec), payload);
}

/** An HMAC reads the head and the payload in turn; only Ed25519, which signs one buffer, gets them joined. */
function signContent(key: SigningKey, head: string, payload: Uint8Array): string {
  if (Buffer.isBuffer(key)) return 'v1,' + createHmac('sha256', key).update(head).update(payload).digest('base64');
  return 'v1a,' + edSign(null, Buffer.concat([Buffer.from(head), payload]), key).toString('base64');
}

/**
 * Which names the id, timestamp and signature headers go by: Standard Webhooks' `webhook-*`, Svix's `svix-*` (what
 * Svix sends by default, and what receivers written against Svix read), or both with the same values.
 */
export type SignatureHeaderSet = 'both' | 'webhook' | 'svix';

const WEBHOOK_NAMES = ['webhook-id', 'webhook-timestamp', 'webhook-signature'] as const;
const SVIX_NAMES = ['svix-id', 'svix-timestamp', 'svix-signature'] as const;
const HEADER_NAMES: Record<SignatureHeaderSet, readonly (typeof WEBHOOK_NAMES | typeof SVIX_NAMES)[]> = {
  both: [WEBHOOK_NAMES, SVIX_NAMES],
  webhook: [WEBHOOK_NAMES],
  svix: [SVIX_NAMES],
};

/**
 * The signature headers for one message, with one signature per valid key (rotation overlap): `v1,` for an HMAC key,
 * `v1a,` for an Ed25519 one, space-separated in one header as the spec lists them.
 */
export function signatureHeaders(keys: SigningKey[], id: string, timestampSec: number, payload: Uint8Array, set: SignatureHeaderSet = 'both'): Record<string, string> {
  const head = signatureHead(id, timestampSec);
  const signature = keys.map((key) => signContent(key, head, payload)).join(' ');
  const timestamp = String(timestampSec);
  const headers: Record<string, string> = {};
  for (const [idName, timestampName, signatureName] of HEADER_NAMES[set]) {
    headers[idName] = id;
    headers[timestampName] = timestamp;
    headers[signatureName] = signature;
  }
  return headers;
}

/** Constant-time string comparison that does not throw on a length mismatch. */
export function constantTimeEqual(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}
