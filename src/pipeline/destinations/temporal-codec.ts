import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { DataConverter } from '@temporalio/client';
import proto, { type temporal } from '@temporalio/proto';

type Payload = temporal.api.common.v1.IPayload;
export type PayloadCodec = NonNullable<DataConverter['payloadCodecs']>[number];

const { Payload: PayloadMessage } = proto.temporal.api.common.v1;
export const ENCRYPTED_ENCODING = 'binary/encrypted';
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const utf8 = (text: string) => new TextEncoder().encode(text);
const text = (bytes: Uint8Array | null | undefined) => (bytes ? Buffer.from(bytes).toString('utf8') : undefined);

/** A codec failure: the payload cannot be encrypted or decrypted as configured (never worth retrying as is). */
export class CodecError extends Error {
  override readonly name = 'CodecError';
}

/** 64 hex characters → a 256-bit key. */
export function parseHexKey(hex: string): Buffer {
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) throw new CodecError('an AES-256 key is 64 hex characters');
  return Buffer.from(hex, 'hex');
}

/**
 * Temporal's encryption codec, byte-compatible with the Python, TypeScript and Go samples: the whole inner Payload
 * (serialized, not length-delimited) is sealed with AES-256-GCM under a 12-byte random nonce and no AAD, as
 * `nonce ‖ ciphertext ‖ tag`, in a payload marked `encoding: binary/encrypted` and `encryption-key-id: <id>`.
 * Decoding looks the key up by that id, so payloads written under a previous key still read after a rotation.
 */
export class AesGcmPayloadCodec implements PayloadCodec {
  private readonly keys: ReadonlyMap<string, Buffer>;

  constructor(
    private readonly keyId: string,
    keys: ReadonlyMap<string, Buffer> | Record<string, Buffer>,
  ) {
    this.keys = keys instanceof Map ? keys : new Map(Object.entries(keys));
    for (const [id, key] of this.keys) if (key.length !== 32) throw new CodecError(`key ${JSON.stringify(id)} is ${key.length} bytes, not 32`);
    if (!this.keys.has(keyId)) throw new CodecError(`no key for the encryption key id ${JSON.stringify(keyId)}`);
  }

  async encode(payloads: Payload[]): Promise<Payload[]> {
    const key = this.keys.get(this.keyId)!;
    return payloads.map((payload) => ({
      metadata: { encoding: utf8(ENCRYPTED_ENCODING), 'encryption-key-id': utf8(this.keyId) },
      data: seal(key, PayloadMessage.encode(payload).finish()),
    }));
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => {
      if (text(payload.metadata?.encoding) !== ENCRYPTED_ENCODING) return payload;
      const keyId = text(payload.metadata?.['encryption-key-id']);
      if (keyId === undefined) throw new CodecError('an encrypted payload has no encryption-key-id');
      const key = this.keys.get(keyId);
      if (!key) throw new CodecError(`unknown encryption key id ${JSON.stringify(keyId)}: add it to the codec's keys to read this payload`);
      if (!payload.data) throw new CodecError('an encrypted payload has no data');
      return PayloadMessage.decode(open(key, payload.data, keyId));
    });
  }
}

function seal(key: Buffer, plaintext: Uint8Array): Uint8Array {
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES });
  return Buffer.concat([nonce, cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
}

function open(key: Buffer, data: Uint8Array, keyId: string): Buffer {
  if (data.length < NONCE_BYTES + TAG_BYTES) throw new CodecError('an encrypted payload is too short to hold a nonce and a tag');
  const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const decipher = createDecipheriv('aes-256-gcm', key, bytes.subarray(0, NONCE_BYTES), { authTagLength: TAG_BYTES });
  decipher.setAuthTag(bytes.subarray(bytes.length - TAG_BYTES));
  try {
    return Buffer.concat([decipher.update(bytes.subarray(NONCE_BYTES, bytes.length - TAG_BYTES)), decipher.final()]);
  } catch {
    throw new CodecError(`an encrypted payload does not authenticate under key ${JSON.stringify(keyId)}`);
  }
}
