import type { Logger } from 'pino';
import type { MessageLog } from '../store/store.js';

export interface RetentionOptions {
  /** Data older than this is pruned. */
  retentionMs: number;
  /** Time between runs. */
  intervalMs: number;
  /** Rows per `prune` call: small, so no call holds the database (or SQLite's event loop) for long. */
  batch?: number;
  /** Calls per run, so a large first backlog is worked off over several runs. */
  maxBatchesPerRun?: number;
  now?: () => number;
}

/** Prunes old payloads, attempts and idempotency records on a timer, in small batches, off the request path. */
export class Retention {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private stopped = false;

  constructor(
    private readonly store: Pick<MessageLog, 'prune'>,
    private readonly options: RetentionOptions,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.runOnce(), this.options.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.running;
  }

  /** One run: prune batches until nothing old is left or the run's budget is spent. */
  runOnce(): Promise<void> {
    return (this.running ??= this.run().finally(() => (this.running = null)));
  }

  private async run(): Promise<void> {
    const now = this.options.now ?? Date.now;
    const total = { payloads: 0, attempts: 0, idempotencyKeys: 0 };
    try {
      for (let i = 0; i < (this.options.maxBatchesPerRun ?? 50) && !this.stopped; i++) {
        const result = await this.store.prune(now() - this.options.retentionMs, this.options.batch ?? 500);
        total.payloads += result.payloads;
        total.attempts += result.attempts;
        total.idempotencyKeys += result.idempotencyKeys;
        if (result.done) break;
        await new Promise((resolve) => setImmediate(resolve));
      }
    } catch (error) {
      this.log.warn({ err: error }, 'retention: pruning failed; trying again at the next run');
    }
    if (total.payloads + total.attempts + total.idempotencyKeys > 0) this.log.info(total, 'retention: pruned old data');
  }
}
