import type { ClaimedDelivery, Endpoint } from '../../domain/types.js';
import type { Sandbox } from '../../transform/sandbox.js';
import { parsedPayload, transform } from '../../transform/transformation.js';
import type { Destination, SendResult } from './destination.js';

/** The transformation that runs for this endpoint's deliveries, if any: enabled, with code, on an HTTP endpoint. */
export function activeTransformation(endpoint: Endpoint): string | null {
  const t = endpoint.transformation;
  return t && t.enabled && t.code && !endpoint.destination ? t.code : null;
}

/**
 * Runs an endpoint's transformation on each delivery before handing it to the HTTP destination. The handler sees
 * `{method, url, headers, payload, eventType}` (the endpoint's custom headers, the payload parsed); what it returns
 * replaces them for this attempt only. The URL it returns is dialled under the same egress policy as any other.
 * A failed run (exception, timeout, memory, bad return value) is a failed attempt that carries the reason.
 */
export class TransformingDestination implements Destination {
  constructor(
    private readonly inner: Destination,
    private readonly sandbox: Sandbox,
  ) {}

  send(claimed: ClaimedDelivery, signal: AbortSignal): Promise<SendResult> {
    const code = activeTransformation(claimed.endpoint);
    // Not an async function: most deliveries pass straight through, without a promise of their own.
    return code === null ? this.inner.send(claimed, signal) : this.transformed(claimed, code, signal);
  }

  private async transformed(claimed: ClaimedDelivery, code: string, signal: AbortSignal): Promise<SendResult> {
    const { endpoint, message } = claimed;
    const outcome = await transform(
      this.sandbox,
      code,
      { method: 'POST', url: endpoint.url, headers: { ...endpoint.headers }, payload: parsedPayload(message.payload), eventType: message.eventType },
      message.payload,
    );
    switch (outcome.kind) {
      case 'failed':
        return { kind: 'retry', statusCode: 0, responseBody: '', error: outcome.error, retryAfterMs: null };
      case 'cancel':
        return { kind: 'success', statusCode: 0, responseBody: 'canceled by the endpoint transformation: not sent' };
      case 'send': {
        const { webhook } = outcome;
        const result = await this.inner.send(
          {
            ...claimed,
            method: webhook.method,
            endpoint: { ...endpoint, url: webhook.url, headers: webhook.headers },
            message: webhook.reserialised ? { ...message, payload: webhook.body, contentType: 'application/json' } : message,
          },
          signal,
        );
        return { ...result, url: webhook.url };
      }
    }
  }

  readiness(endpoints: Endpoint[]): Promise<Record<string, string>> {
    return this.inner.readiness?.(endpoints) ?? Promise.resolve({});
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
