import type { ClaimedDelivery } from '../../domain/types.js';
import { signingKey, type SignatureHeaderSet, type SigningKey } from '../../signing/standard-webhooks.js';
import { currentEncryptionKey, JOSE_CONTENT_TYPE, PayloadEncryptor } from '../encryption.js';
import { deliveryHeaders } from './delivery-headers.js';
import type { Destination, SendResult } from './destination.js';
import { ABORTED_BY_SHUTDOWN, retry, UndiciTransport, type HttpTransport, type TransportOptions } from './http-transport.js';

export interface HttpDestinationOptions extends TransportOptions {
  userAgent: string;
  /** `webhook-*`, `svix-*` or both. @default 'both' */
  signatureHeaders?: SignatureHeaderSet;
}

/**
 * POSTs a delivery, signed per Standard Webhooks (encrypted first when the endpoint's owner gave a key). What moves the
 * bytes is the transport: undici on this thread by default, or the delivery thread (http-thread.ts).
 */
export class HttpDestination implements Destination {
  private readonly now: () => number;
  private readonly targets = new Map<string, { origin: string; path: string } | null>();
  private readonly keys = new Map<string, SigningKey | null>();
  private readonly encryptor = new PayloadEncryptor();

  constructor(
    private readonly options: HttpDestinationOptions,
    private readonly transport: HttpTransport = new UndiciTransport(options),
  ) {
    this.now = options.now ?? Date.now;
  }

  send(delivery: ClaimedDelivery, signal: AbortSignal): Promise<SendResult> {
    const { message, endpoint } = delivery;
    const target = this.target(endpoint.url);
    if (!target) return Promise.resolve({ kind: 'fatal', statusCode: 0, responseBody: '', error: `invalid endpoint URL ${JSON.stringify(endpoint.url)}` });
    if (signal.aborted) return Promise.resolve(retry(ABORTED_BY_SHUTDOWN));
    const payload = message.payload ?? EMPTY_OBJECT;
    const key = currentEncryptionKey(endpoint.encryptionKeys);
    if (!key) return this.post(delivery, target, payload, message.contentType, signal);
    // Encrypted to the owner's newest key: the body is the JWE, and the signature covers the JWE bytes sent.
    return this.encryptor.encrypt(key, payload, message.contentType).then(
      (jwe) => this.post(delivery, target, jwe, JOSE_CONTENT_TYPE, signal),
      (error: Error) => ({ kind: 'fatal', statusCode: 0, responseBody: '', error: `payload encryption to key ${JSON.stringify(key.kid)} failed: ${error.message}` }),
    );
  }

  private post(claimed: ClaimedDelivery, target: { origin: string; path: string }, payload: Uint8Array, contentType: string, signal: AbortSignal): Promise<SendResult> {
    const now = this.now();
    const keys: SigningKey[] = [];
    for (const s of claimed.endpoint.secrets) {
      if (s.expiresAt !== null && s.expiresAt <= now) continue;
      const key = this.key(s.key);
      if (key) keys.push(key);
    }
    const headers = deliveryHeaders(claimed, keys, now, payload, contentType, this.options.signatureHeaders, this.options.userAgent);
    // undici writes an object's headers in its own key order, so this list is the order on the wire.
    const request = { method: claimed.method ?? 'POST', headers: Object.entries(headers) };
    return this.transport
      .send({ origin: target.origin, path: target.path, method: request.method, headers, body: payload }, signal)
      // Not `{ ...result, request }`: on Node 20 that gives every copy a map of its own, and each read of it downstream misses V8's caches.
      .then((result) => Object.assign({}, result, { request }));
  }

  /** Origin and path of an endpoint URL, parsed once per URL. */
  private target(url: string): { origin: string; path: string } | null {
    let target = this.targets.get(url);
    if (target === undefined) {
      try {
        const parsed = new URL(url);
        target = { origin: parsed.origin, path: parsed.pathname + parsed.search };
      } catch {
        target = null;
      }
      if (this.targets.size >= 10_000) this.targets.clear();
      this.targets.set(url, target);
    }
    return target;
  }

  /** A secret's key (HMAC, or an Ed25519 private key), decoded once per secret. */
  private key(secret: string): SigningKey | null {
    let key = this.keys.get(secret);
    if (key === undefined) {
      key = signingKey(secret);
      if (this.keys.size >= 10_000) this.keys.clear();
      this.keys.set(secret, key);
    }
    return key;
  }

  close(): Promise<void> {
    return this.transport.close();
  }
}

const EMPTY_OBJECT = Buffer.from('{}');
