import type { AcceptInput, AcceptResult, Store } from '../store/store.js';
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
    private readonly store: Store,
    private readonly firstAttemptDelayMs: number,
  ) {
    this.schemas = new PayloadSchemas(store);
  }

  onAccepted(listener: () => void): void {
    this.listeners.push(listener);
  }

  /** `deliverAt` (ms) schedules the first attempt later than usual; an earlier time changes nothing. */
  async accept({ deliverAt, ...input }: Omit<AcceptInput, 'dueAt'> & { deliverAt?: number | null }): Promise<AcceptResult> {
    const result = await this.store.accept({ ...input, dueAt: Math.max(input.now + this.firstAttemptDelayMs, deliverAt ?? 0) });
    if (result.kind === 'accepted' && result.deliveries > 0) for (const listener of this.listeners) listener();
    return result;
  }
}
