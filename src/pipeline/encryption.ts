import { createPublicKey, type KeyObject } from 'node:crypto';
import { CompactEncrypt } from 'jose';
import type { EncryptionKey } from '../domain/types.js';

/**
 * Payload encryption to the endpoint owner's public key: a JWE compact serialisation (RFC 7516) of the stored payload
 * bytes, made by `jose`. hookrelay holds public keys only; whoever holds the private key reads the payload.
 *
 * Key types and their key management algorithm: RSA (at least 2048 bits) → `RSA-OAEP-256`; EC P-256 and OKP X25519 →
 * `ECDH-ES+A256KW`. Content encryption is always `A256GCM`.
 */

export const JOSE_CONTENT_TYPE = 'application/jose';
export const MIN_RSA_BITS = 2048;

/** Why a JWK cannot be registered: `path` inside the key, and the sentence the 422 carries. */
export class KeyProblem extends Error {
  constructor(
    readonly path: string[],
    readonly msg: string,
  ) {
    super(msg);
  }
}

/** JWK members that belong to a private or symmetric key (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037 §2). */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];
const KID = /^[\x21-\x7e]{1,128}$/;
const B64URL = /^[A-Za-z0-9_-]+$/;

/**
 * The key as stored (public members only, with its algorithm), or a `KeyProblem` saying what is wrong: a private part,
 * an RSA key shorter than 2048 bits, a curve other than P-256 / X25519, a signing-only key, or anything Node's JWK
 * import refuses.
 */
export function registrableKey(input: unknown, now: number): EncryptionKey {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) throw new KeyProblem([], 'must be a JWK object');
  const jwk = input as Record<string, unknown>;
  const secret = PRIVATE_MEMBERS.filter((m) => m in jwk);
  if (secret.length > 0) {
    throw new KeyProblem([secret[0]], `is a private key member (${secret.join(', ')}): register the public key only; hookrelay never holds the private key`);
  }
  if (typeof jwk.kid !== 'string' || !KID.test(jwk.kid)) throw new KeyProblem(['kid'], 'is required: 1 to 128 printable ASCII characters naming the key');
  if (jwk.use !== undefined && jwk.use !== 'enc') throw new KeyProblem(['use'], 'must be "enc" (or absent): this key is for encryption');
  const text = (member: string): string => {
    const value = jwk[member];
    if (typeof value !== 'string' || !B64URL.test(value)) throw new KeyProblem([member], 'is required, as base64url without padding');
    return value;
  };
  let stored: Record<string, string>;
  let alg: EncryptionKey['alg'];
  switch (jwk.kty) {
    case 'RSA':
      stored = { kty: 'RSA', kid: jwk.kid, n: text('n'), e: text('e') };
      alg = 'RSA-OAEP-256';
      break;
    case 'EC':
      if (jwk.crv !== 'P-256') throw new KeyProblem(['crv'], `must be P-256 for an EC key (got ${JSON.stringify(jwk.crv)})`);
      stored = { kty: 'EC', kid: jwk.kid, crv: 'P-256', x: text('x'), y: text('y') };
      alg = 'ECDH-ES+A256KW';
      break;
    case 'OKP':
      if (jwk.crv !== 'X25519') throw new KeyProblem(['crv'], `must be X25519 for an OKP key (got ${JSON.stringify(jwk.crv)}; Ed25519 keys sign, they cannot encrypt)`);
      stored = { kty: 'OKP', kid: jwk.kid, crv: 'X25519', x: text('x') };
      alg = 'ECDH-ES+A256KW';
      break;
    default:
      throw new KeyProblem(['kty'], `must be RSA, EC (P-256) or OKP (X25519) (got ${JSON.stringify(jwk.kty)})`);
  }
  if (jwk.alg !== undefined && jwk.alg !== alg) throw new KeyProblem(['alg'], `must be ${alg} for this key type (or absent)`);
  let key: KeyObject;
  try {
    key = createPublicKey({ key: stored, format: 'jwk' });
  } catch (error) {
    throw new KeyProblem([], `is not a valid ${stored.kty} public key: ${(error as Error).message}`);
  }
  if (stored.kty === 'RSA') {
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < MIN_RSA_BITS) throw new KeyProblem(['n'], `is a ${bits}-bit RSA modulus; at least ${MIN_RSA_BITS} bits are required`);
  }
  return { kid: stored.kid, alg, jwk: stored, createdAt: now };
}

/** The key deliveries are encrypted to: the newest registered; null when there is none. */
export const currentEncryptionKey = (keys: EncryptionKey[]): EncryptionKey | null => keys.at(-1) ?? null;

/** Encrypts payloads; imports each key once while it is in use. */
export class PayloadEncryptor {
  private readonly imported = new Map<string, KeyObject>();

  /** The JWE compact serialisation of exactly `payload`, with `alg`, `enc`, `kid` and `cty` in the protected header. */
  async encrypt(key: EncryptionKey, payload: Uint8Array, contentType: string): Promise<Uint8Array> {
    const jwe = await new CompactEncrypt(payload)
      .setProtectedHeader({ alg: key.alg, enc: 'A256GCM', kid: key.kid, cty: contentType })
      .encrypt(this.publicKey(key));
    return Buffer.from(jwe, 'ascii');
  }

  private publicKey(key: EncryptionKey): KeyObject {
    const cacheKey = JSON.stringify(key.jwk);
    let imported = this.imported.get(cacheKey);
    if (!imported) {
      imported = createPublicKey({ key: key.jwk, format: 'jwk' });
      if (this.imported.size >= 10_000) this.imported.clear();
      this.imported.set(cacheKey, imported);
    }
    return imported;
  }
}
