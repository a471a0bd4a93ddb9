import { Worker } from 'node:worker_threads';
import type { RunReply, RunRequest } from './sandbox-worker.js';

export interface SandboxLimits {
  /** Wall time of one run, compile included, enforced by the engine's interrupt handler. @default 1000 */
  timeoutMs: number;
  /** Heap of one run's runtime. @default 16 MiB */
  memoryBytes: number;
  /** QuickJS stack of one run. @default 256 KiB */
  stackBytes: number;
  /** Sandbox threads: runs beyond this wait their turn. @default 2 */
  threads: number;
  /** Past the run's timeout, how long the host waits for an answer before it ends the thread. @default 1000 */
  graceMs: number;
}

export const DEFAULT_SANDBOX_LIMITS: SandboxLimits = { timeoutMs: 1000, memoryBytes: 16 * 1048576, stackBytes: 256 * 1024, threads: 2, graceMs: 1000 };

/** A run's result: the handler's return value as JSON text, or why there is none. */
export type SandboxResult = { ok: true; value: string | undefined } | { ok: false; error: string };

interface Job {
  code: string;
  input: string | undefined;
  resolve: (result: SandboxResult) => void;
}

/**
 * Runs untrusted JavaScript in QuickJS/WebAssembly on worker threads (sandbox-worker.ts). The engine stops a run at its
 * time, memory and stack limits; the host also holds a deadline of its own and ends a thread that does not answer in
 * time, or that dies (an engine assertion aborts the WebAssembly instance and with it that thread, never this
 * process). A replaced thread's run fails with the reason; the next runs go to a fresh thread.
 */
export class Sandbox {
  private readonly idle: SandboxThread[] = [];
  private readonly queue: Job[] = [];
  private readonly threads = new Set<SandboxThread>();
  private closed = false;
  /** Threads replaced after a crash or a hang (for tests and logs). */
  replaced = 0;
  /** Threads that ended themselves after a run hit a limit. */
  retired = 0;

  constructor(readonly limits: SandboxLimits = DEFAULT_SANDBOX_LIMITS) {}

  /** Calls `handler(JSON.parse(input))` in a fresh runtime after running `code`. */
  run(code: string, input: string): Promise<SandboxResult> {
    return this.submit(code, input);
  }

  /** Runs `code` and checks that it defines a function `handler`; does not call it. */
  check(code: string): Promise<SandboxResult> {
    return this.submit(code, undefined);
  }

  private submit(code: string, input: string | undefined): Promise<SandboxResult> {
    if (this.closed) return Promise.resolve({ ok: false, error: 'the sandbox is shut down' });
    return new Promise((resolve) => {
      this.queue.push({ code, input, resolve });
      this.pump();
    });
  }

  private pump(): void {
    while (this.queue.length > 0) {
      let thread = this.idle.pop();
      if (!thread) {
        if (this.threads.size >= this.limits.threads) return;
        thread = new SandboxThread(this.limits, (dead, unexpected) => this.lost(dead, unexpected));
        this.threads.add(thread);
      }
      const job = this.queue.shift()!;
      thread.start(job, () => {
        if (!this.closed && thread!.alive) this.idle.push(thread!);
        this.pump();
      });
    }
  }

  private lost(thread: SandboxThread, unexpected: boolean): void {
    this.threads.delete(thread);
    const at = this.idle.indexOf(thread);
    if (at >= 0) this.idle.splice(at, 1);
    if (!this.closed) {
      if (unexpected) this.replaced++;
      else this.retired++;
      this.pump();
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const job of this.queue.splice(0)) job.resolve({ ok: false, error: 'the sandbox is shut down' });
    await Promise.all([...this.threads].map((thread) => thread.end('the sandbox is shut down')));
  }
}

class SandboxThread {
  private readonly worker: Worker;
  private readonly ready: Promise<void>;
  private current: { id: number; job: Job; done: () => void; timer: NodeJS.Timeout | null } | null = null;
  private nextId = 1;
  alive = true;

  constructor(
    private readonly limits: SandboxLimits,
    private readonly onLost: (thread: SandboxThread, unexpected: boolean) => void,
  ) {
    // The thread's V8 stack (4 MiB) is well above the engine's own limit, and its JavaScript heap is small: the
    // transformation's memory lives in the WebAssembly instance, capped per run by QuickJS.
    this.worker = new Worker(new URL('./sandbox-worker.js', import.meta.url), {
      resourceLimits: { stackSizeMb: 4, maxOldGenerationSizeMb: 64, maxYoungGenerationSizeMb: 16 },
      env: {},
      stdout: true,
      stderr: true,
    });
    this.worker.unref();
    this.ready = new Promise<void>((resolve) => {
      const onReady = (message: { ready?: boolean }) => {
        if (message.ready) {
          this.worker.off('message', onReady);
          resolve();
        }
      };
      this.worker.on('message', onReady);
      this.worker.once('exit', () => resolve());
    });
    this.worker.on('message', (reply: RunReply | { ready: true }) => this.answered(reply));
    this.worker.on('error', (error) => this.died(`sandbox thread crashed: ${error.message}`));
    this.worker.on('exit', (code) => this.died(`sandbox thread exited (code ${code})`));
  }

  start(job: Job, done: () => void): void {
    const id = this.nextId++;
    this.current = { id, job, done, timer: null };
    void this.ready.then(() => {
      if (!this.alive || this.current?.id !== id) return;
      const request: RunRequest = { id, code: job.code, input: job.input, timeoutMs: this.limits.timeoutMs, memoryBytes: this.limits.memoryBytes, stackBytes: this.limits.stackBytes };
      // The engine's interrupt handler should end the run at timeoutMs; this deadline covers an engine that cannot.
      this.current.timer = setTimeout(() => void this.end(`timed out: the sandbox did not answer within ${this.limits.timeoutMs + this.limits.graceMs} ms and was replaced`), this.limits.timeoutMs + this.limits.graceMs);
      this.worker.postMessage(request);
    });
  }

  private answered(reply: RunReply | { ready: true }): void {
    if (!('id' in reply) || this.current?.id !== reply.id) return;
    if (!reply.ok && reply.retire) {
      // The thread is ending itself after a run that hit a limit: no further run may be given to it.
      this.alive = false;
      this.finish({ ok: false, error: reply.error });
      this.onLost(this, false);
      void this.worker.terminate();
      return;
    }
    this.finish(reply.ok ? { ok: true, value: reply.value } : { ok: false, error: reply.error });
  }

  private finish(result: SandboxResult): void {
    const current = this.current;
    if (!current) return;
    this.current = null;
    if (current.timer) clearTimeout(current.timer);
    current.job.resolve(result);
    current.done();
  }

  private died(reason: string): void {
    if (!this.alive) return;
    this.alive = false;
    this.finish({ ok: false, error: reason });
    this.onLost(this, true);
  }

  async end(reason: string): Promise<void> {
    if (!this.alive) return;
    this.alive = false;
    this.finish({ ok: false, error: reason });
    this.onLost(this, true);
    await this.worker.terminate();
  }
}
