import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { ClaimedDelivery } from '../../domain/types.js';
import { signingKey, type SignatureHeaderSet, type SigningKey } from '../../signing/standard-webhooks.js';
import { deliveryHeaders } from './delivery-headers.js';
import type { Destination, SendResult } from './destination.js';
import { defineDestinationKind } from './kinds.js';

/**
 * `hookrelay listen`: a developer's CLI holds a streaming response open (POST /api/v1/app/{app_id}/listen), and the
 * app's temporary endpoint for that session delivers through it. Each delivery is signed as for an HTTP endpoint and
 * pushed down the stream; the CLI forwards it to its local URL and posts the local answer back, which becomes the
 * attempt's outcome. No listener connected (to this process) is a failed attempt, retried on the schedule like an
 * unreachable URL.
 */

/** One delivery, as the CLI receives it: the request it forwards, byte for byte (the body in base64). */
export interface ListenRequest {
  type: 'request';
  /** Names this try in the answer. */
  id: string;
  messageId: string;
  eventType: string;
  headers: Record<string, string>;
  body: string;
}

/** What the CLI reports back: the local URL's status and answer, or why it could not be reached. */
export interface ListenAnswer {
  status?: number;
  body?: string;
  error?: string;
}

/** Where requests for one session go: its open stream. */
export interface ListenerConnection {
  push(request: ListenRequest): void;
  /** Ends the stream: another connection took the session over, or the session was deleted. */
  end(reason: 'replaced' | 'ended'): void;
}

interface Listener {
  connection: ListenerConnection;
  pending: Map<string, (result: SendResult) => void>;
}

export interface ListenerHubOptions {
  /** How long the CLI has to answer, like an HTTP endpoint's whole-attempt timeout. @default 15000 */
  timeoutMs: number;
  /** Bytes of the local answer kept in the attempt. @default 20000 */
  responseBodyLimit: number;
  signatureHeaders?: SignatureHeaderSet;
  userAgent: string;
  now?: () => number;
}

const retry = (error: string, statusCode = 0, responseBody = ''): SendResult => ({ kind: 'retry', statusCode, responseBody, error, retryAfterMs: null });

/** The `hookrelay listen` connections of this process, by endpoint id, and the destination that delivers through them. */
export class ListenerHub implements Destination {
  private readonly listeners = new Map<string, Listener>();
  private readonly now: () => number;

  constructor(private readonly options: ListenerHubOptions) {
    this.now = options.now ?? Date.now;
  }

  /** Connects a session's stream; a previous connection of the same endpoint is ended (its pending tries fail). */
  attach(endpointId: string, connection: ListenerConnection): () => void {
    const previous = this.listeners.get(endpointId);
    if (previous) {
      this.fail(previous, 'another hookrelay listen took over the session');
      previous.connection.end('replaced');
    }
    const listener: Listener = { connection, pending: new Map() };
    this.listeners.set(endpointId, listener);
    return () => {
      if (this.listeners.get(endpointId) !== listener) return;
      this.listeners.delete(endpointId);
      this.fail(listener, 'the listener disconnected before answering');
    };
  }

  /** Ends the session's stream (its endpoint was deleted). */
  end(endpointId: string): void {
    const listener = this.listeners.get(endpointId);
    if (!listener) return;
    this.listeners.delete(endpointId);
    this.fail(listener, 'the listen session ended');
    listener.connection.end('ended');
  }

  connected(endpointId: string): boolean {
    return this.listeners.has(endpointId);
  }

  /** Settles a pending try with the CLI's answer; false when it is unknown (timed out, or another session's). */
  answer(endpointId: string, id: string, answer: ListenAnswer): boolean {
    const settle = this.listeners.get(endpointId)?.pending.get(id);
    if (!settle) return false;
    settle(this.resultOf(answer));
    return true;
  }

  send(claimed: ClaimedDelivery, signal: AbortSignal): Promise<SendResult> {
    const listener = this.listeners.get(claimed.endpoint.id);
    if (!listener) return Promise.resolve(retry('no hookrelay listen is connected for this endpoint (to this process)'));
    if (signal.aborted) return Promise.resolve(retry('aborted by shutdown'));
    const now = this.now();
    const keys: SigningKey[] = [];
    for (const s of claimed.endpoint.secrets) {
      if (s.expiresAt !== null && s.expiresAt <= now) continue;
      const key = signingKey(s.key);
      if (key) keys.push(key);
    }
    const payload = claimed.message.payload ?? Buffer.from('{}');
    const id = randomBytes(12).toString('base64url');
    return new Promise<SendResult>((resolve) => {
      const timer = setTimeout(() => finish(retry(`no answer from hookrelay listen within ${this.options.timeoutMs} ms`)), this.options.timeoutMs);
      const onAbort = () => finish(retry('aborted by shutdown'));
      signal.addEventListener('abort', onAbort, { once: true });
      const finish = (result: SendResult) => {
        if (!listener.pending.delete(id)) return;
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        resolve(result);
      };
      listener.pending.set(id, finish);
      listener.connection.push({
        type: 'request',
        id,
        messageId: claimed.message.id,
        eventType: claimed.message.eventType,
        headers: deliveryHeaders(claimed, keys, now, payload, claimed.message.contentType, this.options.signatureHeaders, this.options.userAgent),
        body: Buffer.from(payload).toString('base64'),
      });
    });
  }

  private resultOf(answer: ListenAnswer): SendResult {
    const responseBody = (answer.body ?? '').slice(0, this.options.responseBodyLimit);
    if (answer.error !== undefined || answer.status === undefined) return retry(`the local URL could not be reached: ${answer.error ?? 'no status'}`);
    if (answer.status >= 200 && answer.status < 300) return { kind: 'success', statusCode: answer.status, responseBody };
    // Unlike an HTTP endpoint's 410, a local server's answer never disables the session's endpoint.
    return retry(`the local URL answered ${answer.status}`, answer.status, responseBody);
  }

  private fail(listener: Listener, reason: string): void {
    for (const settle of [...listener.pending.values()]) settle(retry(reason));
  }

  async close(): Promise<void> {
    for (const listener of this.listeners.values()) this.fail(listener, 'the server is shutting down');
  }
}

/** A session's name: letters, digits, `.`, `_` and `-`; its endpoint's uid is `listen-<session>`. */
export const LISTEN_SESSION = z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'must be 1-64 letters, digits, ".", "_" or "-"');

export const listenDestinationKind = defineDestinationKind({
  type: 'listen',
  config: z.strictObject({ session: LISTEN_SESSION }),
  secretFields: [],
  internal: true,
  describe: (config) => `listen://${config.session}`,
  // Without the server's hub (a Destinations built elsewhere), nothing is ever connected: every try is retried.
  open: (options) => options.listeners ?? new ListenerHub({ timeoutMs: 15_000, responseBodyLimit: 20_000, userAgent: 'hookrelay' }),
});
