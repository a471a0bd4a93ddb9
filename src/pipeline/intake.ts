import type { AcceptInput, AcceptResult, Store } from '../store/store.js';
import type { PipelineObserver } from './observer.js';

/**
 * The front door of the pipeline: a message is accepted (stored with its fan-out, durably) and the
 * dispatcher is woken so that the first attempt starts without waiting for a poll.
 */
export class Intake {
  private readonly listeners: (() => void)[] = [];

  constructor(
    private readonly store: Store,
    private readonly firstAttemptDelayMs: number,
    private readonly observer: PipelineObserver = {},
  ) {}

  onAccepted(listener: () => void): void {
    this.listeners.push(listener);
  }

  /** `origin` names where the message came from, for the metrics: `api`, or the type of the source that received it. */
  async accept(input: Omit<AcceptInput, 'dueAt'>, origin = 'api'): Promise<AcceptResult> {
    const started = performance.now();
    const result = await this.store.accept({ ...input, dueAt: input.now + this.firstAttemptDelayMs });
    this.observer.accepted?.(origin, result, performance.now() - started);
    if (result.kind === 'accepted' && result.deliveries > 0) for (const listener of this.listeners) listener();
    return result;
  }
}
