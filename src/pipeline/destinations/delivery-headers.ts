import type { ClaimedDelivery } from '../../domain/types.js';
import { signatureHeaders, type SignatureHeaderSet, type SigningKey } from '../../signing/standard-webhooks.js';

/** Headers hookrelay sets itself, or that verifiers read as the signature (svix's Webhook prefers svix-*); custom headers may not set them. */
export const RESERVED_HEADERS = new Set(['webhook-id', 'webhook-timestamp', 'webhook-signature', 'svix-id', 'svix-timestamp', 'svix-signature', 'content-type', 'content-length', 'host', 'user-agent', 'connection', 'transfer-encoding']);

/**
 * The headers of a delivery request: the endpoint's custom headers, a source message's kept provider headers and what
 * hookrelay learned of it, the Standard Webhooks signature under every key (HMAC `v1,` or Ed25519 `v1a,`) over the bytes
 * sent, their content type (the payload's, or `application/jose` for an encrypted one), and the user agent.
 */
export function deliveryHeaders(
  claimed: ClaimedDelivery,
  keys: SigningKey[],
  nowMs: number,
  payload: Uint8Array,
  contentType: string,
  set: SignatureHeaderSet | undefined,
  userAgent: string,
): Record<string, string> {
  const { message, endpoint } = claimed;
  const headers: Record<string, string> = {};
  for (const name in endpoint.headers) if (!RESERVED_HEADERS.has(name.toLowerCase())) headers[name] = endpoint.headers[name];
  if (message.sourceId) {
    // Forwarded from a source: the provider headers it keeps (never its signature), and what hookrelay learned.
    const kept = message.headers ?? {};
    for (const name in kept) if (!RESERVED_HEADERS.has(name)) headers[name] = kept[name];
    headers['x-hookrelay-source'] = message.sourceId;
    headers['x-hookrelay-event-type'] = message.eventType;
    headers['x-hookrelay-verified'] = String(message.verified === true);
  }
  Object.assign(headers, signatureHeaders(keys, message.id, Math.floor(nowMs / 1000), payload, set));
  headers['content-type'] = contentType;
  headers['user-agent'] = userAgent;
  if (claimed.traceparent) headers.traceparent = claimed.traceparent;
  return headers;
}
