import { Worker } from 'node:worker_threads';
import type { EgressOptions } from '../../egress/policy.js';
import type { SendResult } from './destination.js';
import { ABORTED_BY_SHUTDOWN, retry, type HttpRequest, type HttpTransport, type TransportOptions } from './http-transport.js';

/** What the delivery thread is started with: the transport's options, the egress policy as its settings. */
export interface ThreadTransportData {
  timeoutMs: number;
  connectTimeoutMs: number;
  responseBodyLimit: number;
  connectionsPerOrigin: number;
  egress: EgressOptions;
}

/** A request as it crosses to the thread, with the id its result comes back under. */
export type PostedRequest = HttpRequest & { id: number };

/** To the thread: requests to send, attempts to end, or the end of the thread. */
export type ToThread = { send: PostedRequest[] } | { abort: number[]; reason: string } | { close: true };
/** From the delivery thread: what the attempts came to, in the order they finished. */
export type FromThread = { ids: number[]; results: SendResult[] };

interface Pending {
  resolve: (result: SendResult) => void;
  signal: AbortSignal;
  request: PostedRequest;
  /** The thread's own sweep ends an attempt at its timeout; past this, the thread is not answering at all. */
  deadline: number;
  /** Sent again to a new thread once, after the one it was given to died. */
  resent: boolean;
}

/** How long close() waits for the thread to finish its attempts and end by itself before it is terminated. */
const CLOSE_GRACE_MS = 5_000;
/** Beyond the attempt timeout, how long an attempt may go unanswered before this side ends it. */
const ANSWER_GRACE_MS = 5_000;
/** A thread that died before answering anything is not started again for this long (a failing start would loop). */
const RESTART_DELAY_MS = 1_000;

/**
 * Sends through undici on a thread of its own (http-thread-worker.ts), so that socket writes, HTTP parsing and the
 * attempts' bookkeeping leave the main thread to the API, the claims and the group commits. Requests and results
 * cross in batches: everything sent in one turn of this thread's event loop is one message, and the delivery thread
 * answers once per turn of its own. When a thread that was working dies, a new one sends its unanswered attempts
 * again (once: an attempt may reach its receiver twice, as after a crash, but a dead thread does not count as the
 * receiver's failure); a thread that dies before answering anything fails its attempts as retries and is started
 * again after a second.
 */
export class ThreadTransport implements HttpTransport {
  private worker: Worker | null = null;
  /** Whether the current thread has answered anything (a thread that dies at start is not restarted at once). */
  private working = false;
  private restartAt = 0;
  private lastFailure = '';
  private readonly pending = new Map<number, Pending>();
  private outbox: PostedRequest[] = [];
  private readonly watched = new WeakSet<AbortSignal>();
  private readonly sweeper: NodeJS.Timeout;
  private nextId = 1;
  private closed = false;

  private readonly data: ThreadTransportData;

  constructor(options: TransportOptions) {
    this.data = {
      timeoutMs: options.timeoutMs,
      connectTimeoutMs: options.connectTimeoutMs,
      responseBodyLimit: options.responseBodyLimit,
      connectionsPerOrigin: options.connectionsPerOrigin,
      egress: options.egress?.options ?? {},
    };
    this.sweeper = setInterval(() => this.sweep(), 1_000);
    this.sweeper.unref();
    // Started now rather than on the first delivery, which would otherwise wait ~80 ms for the thread to boot.
    this.thread();
  }

  send(request: HttpRequest, signal: AbortSignal): Promise<SendResult> {
    if (signal.aborted) return Promise.resolve(retry(ABORTED_BY_SHUTDOWN));
    if (this.closed) return Promise.resolve(retry('the delivery thread is shut down'));
    this.watch(signal);
    const id = this.nextId++;
    // Structured clone copies a view's whole buffer: a body that shares a pooled one goes as a copy of its own bytes.
    const body = request.body.byteLength === request.body.buffer.byteLength ? request.body : new Uint8Array(request.body);
    const posted = { id, origin: request.origin, path: request.path, method: request.method, headers: request.headers, body };
    if (this.outbox.length === 0) queueMicrotask(() => this.flush());
    this.outbox.push(posted);
    return new Promise<SendResult>((resolve) => {
      if (this.pending.size === 0) this.worker?.ref();
      this.pending.set(id, { resolve, signal, request: posted, deadline: Date.now() + this.data.timeoutMs + ANSWER_GRACE_MS, resent: false });
    });
  }

  private flush(): void {
    const batch = this.outbox.filter((request) => this.pending.has(request.id));
    this.outbox = [];
    if (batch.length > 0) this.post({ send: batch });
  }

  private post(message: ToThread): void {
    const worker = this.thread();
    if (worker) return worker.postMessage(message);
    if (!('send' in message)) return;
    for (const { id } of message.send) this.end(id, retry(`the delivery thread cannot start: ${this.lastFailure}`));
  }

  /** The running thread, or a new one; null while a thread that died at start waits to be started again. */
  private thread(): Worker | null {
    if (this.worker) return this.worker;
    if (Date.now() < this.restartAt) return null;
    const worker = new Worker(new URL('./http-thread-worker.js', import.meta.url), { workerData: this.data });
    this.working = false;
    worker.on('message', (message: FromThread) => this.settle(message));
    let failure = 'exited';
    worker.on('error', (error) => (failure = `crashed: ${error.message}`));
    worker.on('exit', (code) => {
      if (this.worker !== worker) return;
      this.worker = null;
      this.lastFailure = `the delivery thread ${failure}${code ? ` (code ${code})` : ''}`;
      this.lost(this.working && !this.closed);
    });
    if (this.pending.size === 0) worker.unref();
    this.worker = worker;
    return worker;
  }

  /** The thread died with attempts unanswered: a working one's go to a new thread once; otherwise they are retries. */
  private lost(resend: boolean): void {
    if (!resend) this.restartAt = Date.now() + RESTART_DELAY_MS;
    const again: PostedRequest[] = [];
    for (const [id, pending] of this.pending) {
      if (resend && !pending.resent) {
        pending.resent = true;
        again.push(pending.request);
      } else {
        this.end(id, retry(`${this.lastFailure} before the attempt ended`));
      }
    }
    if (again.length > 0) this.post({ send: again });
  }

  private end(id: number, result: SendResult): void {
    const pending = this.pending.get(id);
    if (!pending) return;
    this.pending.delete(id);
    pending.resolve(result);
    if (this.pending.size === 0) this.worker?.unref();
  }

  /** Attempts the thread has not answered long past their timeout: ended here, and in the thread if it still runs them. */
  private sweep(): void {
    const now = Date.now();
    const late: number[] = [];
    for (const [id, pending] of this.pending) if (pending.deadline <= now) late.push(id);
    if (late.length === 0) return;
    for (const id of late) this.end(id, retry(`the delivery thread did not answer within ${this.data.timeoutMs + ANSWER_GRACE_MS} ms`));
    this.worker?.postMessage({ abort: late, reason: 'given up by the main thread' } satisfies ToThread);
  }

  private settle({ ids, results }: FromThread): void {
    this.working = true;
    // Ended here already (shutdown, or given up) when no longer pending.
    for (let i = 0; i < ids.length; i++) this.end(ids[i], results[i]);
  }

  /** One listener per signal (the dispatcher passes the same one to every attempt): its abort ends all of them. */
  private watch(signal: AbortSignal): void {
    if (this.watched.has(signal)) return;
    this.watched.add(signal);
    signal.addEventListener('abort', () => {
      const ids: number[] = [];
      for (const [id, pending] of this.pending) if (pending.signal === signal) ids.push(id);
      for (const id of ids) this.end(id, retry(ABORTED_BY_SHUTDOWN));
      if (ids.length > 0) this.worker?.postMessage({ abort: ids, reason: ABORTED_BY_SHUTDOWN } satisfies ToThread);
    }, { once: true });
  }

  /** Lets the attempts in flight finish (their pool closes gracefully), then ends the thread. */
  async close(): Promise<void> {
    this.closed = true;
    this.flush();
    clearInterval(this.sweeper);
    const worker = this.worker;
    if (!worker) return;
    worker.ref();
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    worker.postMessage({ close: true } satisfies ToThread);
    let timer: NodeJS.Timeout | undefined;
    const late = await Promise.race([exited.then(() => false), new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), CLOSE_GRACE_MS)))]);
    clearTimeout(timer);
    if (late) await worker.terminate();
  }
}
