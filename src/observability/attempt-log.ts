import type { Logger } from 'pino';
import type { ClaimedDelivery } from '../domain/types.js';
import type { SendResult } from '../pipeline/destinations/destination.js';
import { destinationKind, type PipelineObserver } from '../pipeline/observer.js';
import type { AttemptOutcome } from '../store/store.js';

/**
 * One log line per attempt: `debug` when it succeeded, `warn` when it failed, with what an operator needs to find it
 * again (message, endpoint, app, attempt ids), where it went (destination kind), how it went (status, duration,
 * error) and what happens next. Never the payload, the URL's query, headers or secrets: the error texts of the
 * destinations name hosts and addresses, not credentials.
 */
export class AttemptLog implements PipelineObserver {
  constructor(private readonly log: Logger) {}

  attempted(claimed: ClaimedDelivery, { attempt, next }: AttemptOutcome, result: SendResult): void {
    // Successes are logged at debug: at the default level, not even the fields are built.
    if (attempt.succeeded && !this.log.isLevelEnabled('debug')) return;
    const fields = {
      messageId: attempt.messageId,
      endpointId: attempt.endpointId,
      appId: attempt.appId,
      attemptId: attempt.id,
      destination: destinationKind(claimed),
      status: attempt.statusCode,
      durationMs: attempt.durationMs,
      retry: claimed.delivery.retryIndex,
      trigger: attempt.trigger,
    };
    if (attempt.succeeded) {
      this.log.debug(fields, 'attempt succeeded');
      return;
    }
    const error = attempt.error ?? (result.kind === 'gone' ? 'the endpoint answered 410 Gone' : `HTTP ${attempt.statusCode}`);
    const then = next.kind === 'retry' ? { next: 'retry', nextAttemptAt: new Date(next.at).toISOString() } : { next: next.kind };
    this.log.warn({ ...fields, error, ...then }, 'attempt failed');
  }
}
