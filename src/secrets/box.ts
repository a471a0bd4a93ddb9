import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';

/**
 * Secrets at rest: AES-256-GCM under a master key. A sealed value is self-describing,
 * `hrenc:v1:<keyId>:<base64(iv ‖ ciphertext ‖ tag)>`, where the key id is derived from the key itself, so a
 * database can hold values sealed under several keys during a rotation and each finds its key.
 */

const PREFIX = 'hrenc:v1:';
const IV_BYTES = 12;
const TAG_BYTES = 16;

/** A configured master key is missing or wrong for what the database holds. */
export class MasterKeyError extends Error {
  override name = 'MasterKeyError';
}

/** The public name of a 32-byte master key: not reversible, and different keys get different ids. */
export function masterKeyId(key: Buffer): string {
  return createHash('sha256').update('hookrelay master key id\0').update(key).digest('base64url').slice(0, 12);
}

/** Parses a base64 master key (`openssl rand -base64 32`); `where` names it in the error. */
export function parseMasterKey(text: string, where = ''): Buffer {
  const trimmed = text.trim();
  const key = /^[A-Za-z0-9+/_-]+={0,2}$/.test(trimmed) ? Buffer.from(trimmed, 'base64') : Buffer.alloc(0);
  if (key.length !== 32) throw new MasterKeyError(`${where ? `${where}: ` : ''}must be 32 random bytes in base64 (generate a key with: openssl rand -base64 32)`);
  return key;
}

/** The keys of a key file: one base64 key a line, the current one first, then previous ones; `#` starts a comment. */
export function parseKeyFile(text: string, path: string): Buffer[] {
  const lines = text.split(/\r?\n/).map((l) => l.trim());
  const keys = lines.flatMap((line, i) => (line === '' || line.startsWith('#') ? [] : [parseMasterKey(line, `${path} line ${i + 1}`)]));
  if (keys.length === 0) throw new MasterKeyError(`${path} holds no key`);
  return keys;
}

export const isSealed = (value: string): boolean => value.startsWith(PREFIX);

/** The id of the master key a sealed value needs; null for a plain value. */
export function sealedKeyId(value: string): string | null {
  if (!isSealed(value)) return null;
  const end = value.indexOf(':', PREFIX.length);
  return end < 0 ? null : value.slice(PREFIX.length, end);
}

export class SecretBox {
  readonly currentKeyId: string;
  private readonly keys = new Map<string, Buffer>();
  /** Opened values by sealed text: a secret is decrypted once, not on every delivery that signs with it. */
  private readonly opened = new Map<string, string>();
  private static readonly MEMO_LIMIT = 50_000;

  constructor(current: Buffer, previous: Buffer[] = []) {
    this.currentKeyId = masterKeyId(current);
    this.keys.set(this.currentKeyId, current);
    for (const key of previous) if (!this.keys.has(masterKeyId(key))) this.keys.set(masterKeyId(key), key);
  }

  /** Ids of every key this box can open with, the current one first. */
  get keyIds(): string[] {
    return [...this.keys.keys()];
  }

  seal(plaintext: string): string {
    const key = this.keys.get(this.currentKeyId)!;
    const iv = randomBytes(IV_BYTES);
    const header = `${PREFIX}${this.currentKeyId}:`;
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    cipher.setAAD(Buffer.from(header));
    const body = Buffer.concat([iv, cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()]);
    return header + body.toString('base64');
  }

  /**
   * The plaintext of a sealed value; a plain value (stored before encryption at rest) is returned as it is.
   * `remember`: keep it for the next call (secrets read again and again), or not (one-off values).
   */
  open(value: string, remember = true): string {
    if (!isSealed(value)) return value;
    let plaintext = this.opened.get(value);
    if (plaintext === undefined) {
      plaintext = this.decrypt(value);
      if (!remember) return plaintext;
      if (this.opened.size >= SecretBox.MEMO_LIMIT) this.opened.clear();
      this.opened.set(value, plaintext);
    }
    return plaintext;
  }

  /** Whether a stored value should be rewritten: plain, or sealed under another key than the current one. */
  needsReseal(value: string): boolean {
    return sealedKeyId(value) !== this.currentKeyId;
  }

  private decrypt(value: string): string {
    const keyId = sealedKeyId(value);
    const key = keyId === null ? undefined : this.keys.get(keyId);
    if (!key) {
      throw new MasterKeyError(
        `a stored secret is sealed with master key ${keyId ?? '(unreadable)'}, which is not configured (configured: ${this.keyIds.join(', ')}); ` +
          'set the key it was sealed with as HOOKRELAY_MASTER_KEY or in HOOKRELAY_PREVIOUS_MASTER_KEYS',
      );
    }
    const header = `${PREFIX}${keyId}:`;
    const body = Buffer.from(value.slice(header.length), 'base64');
    try {
      if (body.length < IV_BYTES + TAG_BYTES) throw new Error('too short');
      const decipher = createDecipheriv('aes-256-gcm', key, body.subarray(0, IV_BYTES));
      decipher.setAAD(Buffer.from(header));
      decipher.setAuthTag(body.subarray(body.length - TAG_BYTES));
      return Buffer.concat([decipher.update(body.subarray(IV_BYTES, body.length - TAG_BYTES)), decipher.final()]).toString('utf8');
    } catch {
      throw new MasterKeyError(`a stored secret sealed with master key ${keyId} does not decrypt: the value is damaged`);
    }
  }
}
