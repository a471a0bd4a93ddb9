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

/** To the delivery thread: requests to send, attempts to end, or the end of the thread. */
export type ToThread = { send: (HttpRequest & { id: number })[] } | { abort: number[]; reason: string } | { close: true };
/** From the delivery thread: what the attempts came to, in the order they finished. */
export type FromThread = { ids: number[]; results: SendResult[] };

interface Pending {
  resolve: (result: SendResult) => void;
  signal: AbortSignal;
}

/** How long close() waits for the thread to finish its attempts and end by itself before it is terminated. */
const CLOSE_GRACE_MS = 5_000;

/**
 * Sends through undici on a thread of its own (http-thread-worker.ts), so that socket writes, HTTP parsing and the
 * attempts' bookkeeping leave the main thread to the API, the claims and the group commits. Requests and results
 * cross in batches: everything sent in one turn of this thread's event loop is one message, and the delivery thread
 * answers once per turn of its own. A thread that dies fails its attempts as retries and is replaced on the next send.
 */
export class ThreadTransport implements HttpTransport {
  private worker: Worker | null = null;
  private readonly pending = new Map<number, Pending>();
  private outbox: (HttpRequest & { id: number })[] = [];
  private readonly watched = new WeakSet<AbortSignal>();
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
    // Started now rather than on the first delivery, which would otherwise wait ~80 ms for the thread to boot.
    this.thread();
  }

  send(request: HttpRequest, signal: AbortSignal): Promise<SendResult> {
    if (signal.aborted) return Promise.resolve(retry(ABORTED_BY_SHUTDOWN));
    if (this.closed) return Promise.resolve(retry('the delivery thread is shut down'));
    this.watch(signal);
    const id = this.nextId++;
    if (this.outbox.length === 0) queueMicrotask(() => this.flush());
    this.outbox.push({ id, origin: request.origin, path: request.path, method: request.method, headers: request.headers, body: request.body });
    return new Promise<SendResult>((resolve) => {
      if (this.pending.size === 0) this.thread().ref();
      this.pending.set(id, { resolve, signal });
    });
  }

  private flush(): void {
    const batch = this.outbox.filter((request) => this.pending.has(request.id));
    this.outbox = [];
    if (batch.length > 0) this.post({ send: batch });
  }

  private post(message: ToThread): void {
    this.thread().postMessage(message);
  }

  private thread(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(new URL('./http-thread-worker.js', import.meta.url), { workerData: this.data, env: {} });
    worker.on('message', (message: FromThread) => this.settle(message));
    let failure = 'exited';
    worker.on('error', (error) => (failure = `crashed: ${error.message}`));
    worker.on('exit', (code) => {
      if (this.worker === worker) this.worker = null;
      // Attempts the thread did not answer for: tried again after the retry delay, never lost.
      const reason = `the delivery thread ${failure}${code ? ` (code ${code})` : ''} before the attempt ended`;
      for (const [id, pending] of this.pending) {
        this.pending.delete(id);
        pending.resolve(retry(reason));
      }
    });
    worker.unref();
    this.worker = worker;
    return worker;
  }

  private settle({ ids, results }: FromThread): void {
    for (let i = 0; i < ids.length; i++) {
      const pending = this.pending.get(ids[i]);
      if (!pending) continue; // ended here already (shutdown)
      this.pending.delete(ids[i]);
      pending.resolve(results[i]);
    }
    if (this.pending.size === 0) this.worker?.unref();
  }

  /** One listener per signal (the dispatcher passes the same one to every attempt): its abort ends all of them. */
  private watch(signal: AbortSignal): void {
    if (this.watched.has(signal)) return;
    this.watched.add(signal);
    signal.addEventListener('abort', () => {
      const ids: number[] = [];
      for (const [id, pending] of this.pending) {
        if (pending.signal !== signal) continue;
        ids.push(id);
        this.pending.delete(id);
        pending.resolve(retry(ABORTED_BY_SHUTDOWN));
      }
      if (ids.length > 0 && this.worker) this.post({ abort: ids, reason: ABORTED_BY_SHUTDOWN });
      if (this.pending.size === 0) this.worker?.unref();
    }, { once: true });
  }

  /** Lets the attempts in flight finish (their pool closes gracefully), then ends the thread. */
  async close(): Promise<void> {
    this.closed = true;
    this.flush();
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
