import type { ClaimedDelivery, Endpoint, SentRequest } from '../../domain/types.js';

/**
 * What one try of a delivery came to. Expected outcomes are values; the dispatcher maps them onto the retry policy.
 * `url`: where the attempt went when not to the endpoint's URL (a transformation changed it).
 * `request`: the method and headers an HTTP destination sent (absent when nothing was sent, or not over HTTP).
 */
export type SendResult = { url?: string; request?: SentRequest } & (
  | { kind: 'success'; statusCode: number; responseBody: string }
  | { kind: 'retry'; statusCode: number; responseBody: string; error: string | null; retryAfterMs: number | null }
  | { kind: 'gone'; statusCode: number; responseBody: string }
  | { kind: 'fatal'; statusCode: number; responseBody: string; error: string });

export interface Destination {
  send(claimed: ClaimedDelivery, signal: AbortSignal): Promise<SendResult>;
  /** Connectivity of the targets of these endpoints, for /readyz: `ok` or the problem, keyed by target. */
  readiness?(endpoints: Endpoint[]): Promise<Record<string, string>>;
  close(): Promise<void>;
}
