import type { HealthChange } from '../domain/health.js';
import type { ClaimedDelivery } from '../domain/types.js';
import type { AcceptResult, AttemptOutcome } from '../store/store.js';
import type { SendResult } from './destinations/destination.js';

/**
 * What the pipeline tells those who watch it (metrics, the attempt log, operational webhooks). The calls are made
 * where the outcomes are produced, synchronously and without waiting: an observer keeps its work in memory, or
 * queues its own I/O. An observer that throws is ignored, never the pipeline's problem.
 */
export interface PipelineObserver {
  /** A message was accepted, or found to be a duplicate, from `origin` (`api` or a source type), the store taking `commitMs`. */
  accepted?(origin: string, result: AcceptResult, commitMs: number): void;
  /** An inbound request of a source of this type failed verification. */
  verificationFailed?(sourceType: string): void;
  /** One attempt finished; `outcome` is about to be recorded. */
  attempted?(claimed: ClaimedDelivery, outcome: AttemptOutcome, result: SendResult): void;
  /** A batch of outcomes was recorded in `commitMs`, with the endpoint health changes it made. */
  recorded?(batch: readonly AttemptOutcome[], changes: readonly HealthChange[], commitMs: number): void;
}

type Method = keyof PipelineObserver;

/** One observer calling each of `list` in turn; an exception in one is passed to `onError` and the others still run. */
export function observeAll(list: PipelineObserver[], onError: (error: unknown) => void): PipelineObserver {
  const each =
    <M extends Method>(method: M) =>
    (...args: Parameters<NonNullable<PipelineObserver[M]>>) => {
      for (const observer of list) {
        try {
          (observer[method] as ((...a: unknown[]) => void) | undefined)?.(...args);
        } catch (error) {
          onError(error);
        }
      }
    };
  return { accepted: each('accepted'), verificationFailed: each('verificationFailed'), attempted: each('attempted'), recorded: each('recorded') };
}

/** The kind of destination an endpoint delivers to, as metrics and logs name it. */
export const destinationKind = (claimed: ClaimedDelivery): string => claimed.endpoint.destination?.type ?? 'http';
