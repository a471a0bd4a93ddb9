import { isIP } from 'node:net';
import { Agent, buildConnector, errors } from 'undici';
import { EgressPolicy, EgressRefusedError } from '../../egress/policy.js';
import { parseRetryAfter } from '../../domain/retry.js';
import type { ClaimedDelivery } from '../../domain/types.js';
import { secretKey, signatureHeaders, type SignatureHeaderSet } from '../../signing/standard-webhooks.js';
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

/** Headers hookrelay sets itself, or that verifiers read as the signature (svix's Webhook prefers svix-*); custom headers may not set them. */
const RESERVED = new Set(['webhook-id', 'webhook-timestamp', 'webhook-signature', 'svix-id', 'svix-timestamp', 'svix-signature', 'content-type', 'content-length', 'host', 'user-agent', 'connection', 'transfer-encoding']);

/** POSTs a delivery, signed per Standard Webhooks, over a keep-alive pool per origin. Redirects are not followed. */
export class HttpDestination implements Destination {
  private readonly agent: Agent;
  private readonly now: () => number;

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

  async send({ message, endpoint }: ClaimedDelivery, signal: AbortSignal): Promise<SendResult> {
    const now = this.now();
    const keys = endpoint.secrets
      .filter((s) => s.expiresAt === null || s.expiresAt > now)
      .map((s) => secretKey(s.key))
      .filter((k): k is Buffer => k !== null);
    const payload = message.payload ?? Buffer.from('{}');
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(endpoint.headers)) if (!RESERVED.has(name.toLowerCase())) headers[name] = value;
    if (message.sourceId) {
      // Forwarded from a source: the provider headers it keeps (never its signature), and what hookrelay learned.
      for (const [name, value] of Object.entries(message.headers ?? {})) if (!RESERVED.has(name)) headers[name] = value;
      headers['x-hookrelay-source'] = message.sourceId;
      headers['x-hookrelay-event-type'] = message.eventType;
      headers['x-hookrelay-verified'] = String(message.verified === true);
    }
    Object.assign(headers, signatureHeaders(keys, message.id, Math.floor(now / 1000), payload, this.options.signatureHeaders), {
      'content-type': message.contentType,
      'user-agent': this.options.userAgent,
    });

    let url: URL;
    try {
      url = new URL(endpoint.url);
    } catch {
      return { kind: 'fatal', statusCode: 0, responseBody: '', error: `invalid endpoint URL ${JSON.stringify(endpoint.url)}` };
    }
    // One controller per attempt, aborted by the attempt timeout or by the caller (shutdown).
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, this.options.timeoutMs);
    const cancel = () => controller.abort();
    signal.addEventListener('abort', cancel, { once: true });
    try {
      const response = await this.agent.request({
        origin: url.origin,
        path: url.pathname + url.search,
        method: 'POST',
        headers,
        body: payload,
        signal: controller.signal,
      });
      const responseBody = await readLimited(response.body, this.options.responseBodyLimit);
      const status = response.statusCode;
      if (status >= 200 && status < 300) return { kind: 'success', statusCode: status, responseBody };
      if (status === 410) return { kind: 'gone', statusCode: status, responseBody };
      const retryAfterMs = status === 429 || status === 503 ? parseRetryAfter(response.headers['retry-after'], this.now()) : null;
      return { kind: 'retry', statusCode: status, responseBody, error: null, retryAfterMs };
    } catch (error) {
      // A policy refusal does not heal by waiting: parked at once, resent or recovered after the allow-list changes.
      if (error instanceof EgressRefusedError) return { kind: 'fatal', statusCode: 0, responseBody: '', error: error.message };
      const reason = timedOut ? `timed out after ${this.options.timeoutMs} ms` : signal.aborted ? 'aborted by shutdown' : describe(error);
      return { kind: 'retry', statusCode: 0, responseBody: '', error: reason, retryAfterMs: null };
    } finally {
      clearTimeout(timer);
      signal.removeEventListener('abort', cancel);
    }
  }

  close(): Promise<void> {
    return this.agent.close();
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

async function readLimited(body: AsyncIterable<Buffer> & { destroy(): void }, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    if (size < limit) chunks.push(chunk.subarray(0, limit - size));
    size += chunk.length;
    if (size >= limit) {
      body.destroy();
      break;
    }
  }
  return Buffer.concat(chunks).toString('utf8');
}

function describe(error: unknown): string {
  if (error instanceof errors.ConnectTimeoutError) return 'connect timed out';
  const err = error as { code?: string; message?: string; cause?: { code?: string; message?: string } };
  const code = err.code ?? err.cause?.code;
  const message = err.cause?.message ?? err.message ?? String(error);
  return code && !message.includes(code) ? `${code}: ${message}` : message;
}
