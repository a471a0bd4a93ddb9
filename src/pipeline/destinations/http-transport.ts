import { isIP } from 'node:net';
import { Agent, buildConnector, errors, type Dispatcher } from 'undici';
import { EgressPolicy, EgressRefusedError } from '../../egress/policy.js';
import { parseRetryAfter } from '../../domain/retry.js';
import type { SendResult } from './destination.js';

/** One signed request, ready for the wire: headers in the order they are written. */
export interface HttpRequest {
  origin: string;
  path: string;
  method: string;
  headers: Record<string, string>;
  body: Uint8Array;
}

/** Moves requests to their receivers and says what came back; HttpDestination signs, a transport only sends. */
export interface HttpTransport {
  /** Settles with the attempt's outcome, never rejects; `signal` aborting ends the attempt as a retry. */
  send(request: HttpRequest, signal: AbortSignal): Promise<SendResult>;
  close(): Promise<void>;
}

export interface TransportOptions {
  /** Whole attempt, connect to last byte. */
  timeoutMs: number;
  connectTimeoutMs: number;
  /** Bytes of the receiver's answer kept in the attempt. */
  responseBodyLimit: number;
  /** Keep-alive sockets per origin. */
  connectionsPerOrigin: number;
  /** Which addresses may be dialled. @default loopback, private, link-local… refused, nothing allowed */
  egress?: EgressPolicy;
  now?: () => number;
}

/** An attempt that can be ended from outside (timeout, shutdown, the caller's abort). */
export interface RunningAttempt {
  stop(reason: string): void;
}

/** How often attempts are checked against their deadline: one timer for all of them, not one per attempt. */
const DEADLINE_SWEEP_MS = 100;

export const ABORTED_BY_SHUTDOWN = 'aborted by shutdown';

/**
 * undici over a keep-alive pool per origin; redirects are not followed. Each attempt is one `dispatch` with a small
 * handler (no AbortController, stream or timer of its own): a sweep every 100 ms ends attempts past the whole-attempt
 * timeout, and an aborted signal ends every attempt that was given it.
 */
export class UndiciTransport implements HttpTransport {
  private readonly agent: Agent;
  private readonly now: () => number;
  private readonly inFlight = new Set<HttpAttempt>();
  private readonly watched = new WeakSet<AbortSignal>();
  private sweeper: NodeJS.Timeout | null = null;

  constructor(private readonly options: TransportOptions) {
    this.agent = new Agent({
      connections: options.connectionsPerOrigin,
      connect: guardedConnector(options.egress ?? new EgressPolicy(), options.connectTimeoutMs),
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
      keepAliveTimeout: 30_000,
    });
    this.now = options.now ?? Date.now;
  }

  send(request: HttpRequest, signal: AbortSignal): Promise<SendResult> {
    if (signal.aborted) return Promise.resolve(retry(ABORTED_BY_SHUTDOWN));
    this.watch(signal);
    return new Promise<SendResult>((resolve) => {
      this.start(request, resolve).signal = signal;
    });
  }

  /** Starts an attempt that reports to `settle` once; the handle ends it early. */
  start(request: HttpRequest, settle: (result: SendResult) => void): HttpAttempt {
    const attempt = new HttpAttempt(this.options.responseBodyLimit, this.now() + this.options.timeoutMs, (result) => {
      this.inFlight.delete(attempt);
      settle(result);
    }, this.now);
    this.inFlight.add(attempt);
    this.sweeper ??= setInterval(() => this.sweep(), DEADLINE_SWEEP_MS);
    this.agent.dispatch({ origin: request.origin, path: request.path, method: request.method, headers: request.headers, body: request.body }, attempt);
    return attempt;
  }

  /** One listener per signal (the dispatcher passes the same one to every attempt), not one per attempt. */
  private watch(signal: AbortSignal): void {
    if (this.watched.has(signal)) return;
    this.watched.add(signal);
    signal.addEventListener('abort', () => {
      for (const attempt of this.inFlight) if (attempt.signal === signal) attempt.stop(ABORTED_BY_SHUTDOWN);
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

export const retry = (error: string): SendResult => ({ kind: 'retry', statusCode: 0, responseBody: '', error, retryAfterMs: null });

/** Reached the kept part of the answer: the rest is not read (the connection is closed). */
class BodyLimitReached extends Error {}

/** One attempt's undici handler: keeps the status, `Retry-After` and the first `limit` bytes of the answer. */
class HttpAttempt implements Dispatcher.DispatchHandler, RunningAttempt {
  signal: AbortSignal | null = null;
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
