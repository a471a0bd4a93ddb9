import { isIP } from 'node:net';
import { Agent, buildConnector, errors, type Dispatcher } from 'undici';
import { EgressPolicy, EgressRefusedError } from '../../egress/policy.js';
import { parseRetryAfter } from '../../domain/retry.js';
import type { ClaimedDelivery } from '../../domain/types.js';
import { signingKey, type SignatureHeaderSet, type SigningKey } from '../../signing/standard-webhooks.js';
import { currentEncryptionKey, JOSE_CONTENT_TYPE, PayloadEncryptor } from '../encryption.js';
import { deliveryHeaders } from './delivery-headers.js';
import type { Destination, SendResult } from './destination.js';

export interface HttpDestinationOptions {
  /** Whole attempt, connect to last byte. @default 15000 */
  timeoutMs: number;
  /** @default 15000 */
  connectTimeoutMs: number;
  /** Bytes of the receiver's answer kept in the attempt. @default 20000 */
  responseBodyLimit: number;
  /** Keep-alive sockets per origin. */
  connectionsPerOrigin: number;
  userAgent: string;
  /** `webhook-*`, `svix-*` or both. @default 'both' */
  signatureHeaders?: SignatureHeaderSet;
  /** Which addresses may be dialled. @default loopback, private, link-local… refused, nothing allowed */
  egress?: EgressPolicy;
  now?: () => number;
}

/** How often attempts are checked against their deadline: one timer for all of them, not one per attempt. */
const DEADLINE_SWEEP_MS = 100;

/**
 * POSTs a delivery, signed per Standard Webhooks, over a keep-alive pool per origin. Redirects are not followed.
 * Each attempt is one undici `dispatch` with a small handler (no AbortController, stream or timer of its own): a
 * sweep every 100 ms aborts attempts past the whole-attempt timeout, and a shutdown aborts all of them.
 */
export class HttpDestination implements Destination {
  private readonly agent: Agent;
  private readonly now: () => number;
  private readonly inFlight = new Set<HttpAttempt>();
  private readonly watched = new WeakSet<AbortSignal>();
  private readonly targets = new Map<string, { origin: string; path: string } | null>();
  private readonly keys = new Map<string, SigningKey | null>();
  private readonly encryptor = new PayloadEncryptor();
  private sweeper: NodeJS.Timeout | null = null;

  constructor(private readonly options: HttpDestinationOptions) {
    this.agent = new Agent({
      connections: options.connectionsPerOrigin,
      connect: guardedConnector(options.egress ?? new EgressPolicy(), options.connectTimeoutMs),
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
      keepAliveTimeout: 30_000,
    });
    this.now = options.now ?? Date.now;
  }

  send(delivery: ClaimedDelivery, signal: AbortSignal): Promise<SendResult> {
    const { message, endpoint } = delivery;
    const target = this.target(endpoint.url);
    if (!target) return Promise.resolve({ kind: 'fatal', statusCode: 0, responseBody: '', error: `invalid endpoint URL ${JSON.stringify(endpoint.url)}` });
    if (signal.aborted) return Promise.resolve(retry('aborted by shutdown'));
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
    if (signal.aborted) return Promise.resolve(retry('aborted by shutdown'));
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

    this.watch(signal);
    return new Promise<SendResult>((resolve) => {
      const attempt = new HttpAttempt(this.options.responseBodyLimit, now + this.options.timeoutMs, signal, (result) => {
        this.inFlight.delete(attempt);
        resolve({ ...result, request });
      }, this.now);
      this.inFlight.add(attempt);
      this.sweeper ??= setInterval(() => this.sweep(), DEADLINE_SWEEP_MS);
      this.agent.dispatch({ origin: target.origin, path: target.path, method: request.method, headers, body: payload }, attempt);
    });
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

  /** One listener per shutdown signal (the dispatcher passes the same one to every attempt), not one per attempt. */
  private watch(signal: AbortSignal): void {
    if (this.watched.has(signal)) return;
    this.watched.add(signal);
    signal.addEventListener('abort', () => {
      for (const attempt of this.inFlight) if (attempt.signal === signal) attempt.stop('aborted by shutdown');
    }, { once: true });
  }

  private sweep(): void {
    if (this.inFlight.size === 0) {
      clearInterval(this.sweeper!);
      this.sweeper = null;
      return;
    }
    const now = this.now();
    for (const attempt of this.inFlight) if (attempt.deadline <= now) attempt.stop(`timed out after ${this.options.timeoutMs} ms`);
  }

  close(): Promise<void> {
    if (this.sweeper) clearInterval(this.sweeper);
    return this.agent.close();
  }
}

const EMPTY_OBJECT = Buffer.from('{}');
const retry = (error: string): SendResult => ({ kind: 'retry', statusCode: 0, responseBody: '', error, retryAfterMs: null });

/** Reached the kept part of the answer: the rest is not read (the connection is closed). */
class BodyLimitReached extends Error {}

/** One attempt's undici handler: keeps the status, `Retry-After` and the first `limit` bytes of the answer. */
class HttpAttempt implements Dispatcher.DispatchHandler {
  private controller: Dispatcher.DispatchController | null = null;
  private stopped: string | null = null;
  private status = 0;
  private retryAfter: string | string[] | undefined;
  private readonly chunks: Buffer[] = [];
  private size = 0;
  private done = false;

  constructor(
    private readonly limit: number,
    readonly deadline: number,
    readonly signal: AbortSignal,
    private readonly settle: (result: SendResult) => void,
    private readonly now: () => number,
  ) {}

  /** Ends the attempt now (timeout, shutdown), aborting the request if it has started or as soon as it does. */
  stop(reason: string): void {
    if (this.done) return;
    this.stopped = reason;
    this.controller?.abort(new Error(reason));
    this.finish(retry(reason));
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.stopped) controller.abort(new Error(this.stopped));
  }

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[]>): void {
    if (statusCode < 200) return; // 1xx: the real answer follows
    this.status = statusCode;
    this.retryAfter = headers['retry-after'];
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.size < this.limit) this.chunks.push(this.size + chunk.length > this.limit ? chunk.subarray(0, this.limit - this.size) : chunk);
    this.size += chunk.length;
    if (this.size >= this.limit) controller.abort(new BodyLimitReached());
  }

  onResponseEnd(): void {
    this.answered();
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    if (error instanceof BodyLimitReached && this.status !== 0) return this.answered();
    if (this.done) return;
    // A policy refusal does not heal by waiting: parked at once, resent or recovered after the allow-list changes.
    if (error instanceof EgressRefusedError) return this.finish({ kind: 'fatal', statusCode: 0, responseBody: '', error: error.message });
    this.finish(retry(describe(error)));
  }

  private answered(): void {
    const status = this.status;
    const responseBody = this.chunks.length === 1 ? this.chunks[0].toString('utf8') : Buffer.concat(this.chunks).toString('utf8');
    if (status >= 200 && status < 300) return this.finish({ kind: 'success', statusCode: status, responseBody });
    if (status === 410) return this.finish({ kind: 'gone', statusCode: status, responseBody });
    const retryAfter = Array.isArray(this.retryAfter) ? this.retryAfter[0] : this.retryAfter;
    const retryAfterMs = status === 429 || status === 503 ? parseRetryAfter(retryAfter, this.now()) : null;
    this.finish({ kind: 'retry', statusCode: status, responseBody, error: null, retryAfterMs });
  }

  private finish(result: SendResult): void {
    if (this.done) return;
    this.done = true;
    this.settle(result);
  }
}

/**
 * undici's connector with the egress policy on the address dialled: a name goes through the policy's lookup
 * (every new connection resolves again, so rebinding meets the check), an IP literal skips lookup and is checked here.
 */
function guardedConnector(egress: EgressPolicy, timeout: number): buildConnector.connector {
  const connect = buildConnector({ timeout, lookup: egress.lookup });
  return (options, callback) => {
    const refusal = isIP(options.hostname) ? egress.refuseLiteral(options.hostname) : null;
    if (refusal) return callback(new EgressRefusedError(refusal), null);
    return connect(options, callback);
  };
}

function describe(error: unknown): string {
  if (error instanceof errors.ConnectTimeoutError) return 'connect timed out';
  const err = error as { code?: string; message?: string; cause?: { code?: string; message?: string } };
  const code = err.code ?? err.cause?.code;
  const message = err.cause?.message ?? err.message ?? String(error);
  return code && !message.includes(code) ? `${code}: ${message}` : message;
}
