import type { AcceptInput, AcceptResult, Catalog, MessageLog } from '../store/store.js';
import type { PipelineObserver } from './observer.js';
import { PayloadSchemas } from './payload-schemas.js';

/**
 * The front door of the pipeline: a message is accepted (stored with its fan-out, durably) and the
 * dispatcher is woken so that the first attempt starts without waiting for a poll.
 */
export class Intake {
  private readonly listeners: (() => void)[] = [];
  /** Event type schemas, for the API and the sources to check payloads against before accepting them. */
  readonly schemas: PayloadSchemas;

  constructor(
    private readonly store: Pick<MessageLog, 'accept'> & Pick<Catalog, 'getEventType'>,
    private readonly firstAttemptDelayMs: number,
    private readonly observer: PipelineObserver = {},
  ) {
    this.schemas = new PayloadSchemas(store);
  }

  onAccepted(listener: () => void): void {
    this.listeners.push(listener);
  }

  /**
   * `deliverAt` (ms) schedules the first attempt later than usual; an earlier time changes nothing. `origin` names where
   * the message came from, for the metrics: `api`, or the type of the source that received it.
   */
  accept(input: Omit<AcceptInput, 'dueAt'> & { deliverAt?: number | null }, origin = 'api'): Promise<AcceptResult> {
    const started = performance.now();
    // This runs for every message and every provider request, so: one copy of the input (a store ignores `deliverAt`),
    // made with Object.assign — on Node 20 `{ ...input, dueAt }` gives every copy a map of its own and each of the
    // store's reads of it misses V8's caches (2 % of the ingest path's CPU) — and a promise chain rather than an async
    // function, for fewer turns of the microtask queue before the answer goes out.
    let stored: Promise<AcceptResult>;
    try {
      stored = this.store.accept(Object.assign({}, input, { dueAt: Math.max(input.now + this.firstAttemptDelayMs, input.deliverAt ?? 0) }));
    } catch (error) {
      return Promise.reject(error);
    }
    return stored.then((result) => {
      this.observer.accepted?.(origin, result, performance.now() - started);
      if (result.kind === 'accepted' && result.deliveries > 0) for (const listener of this.listeners) listener();
      return result;
    });
  }
}
