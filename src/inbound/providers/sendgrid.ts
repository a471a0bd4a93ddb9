import { createHash, createPublicKey, verify as verifySignature, type KeyObject } from 'node:crypto';
import { z } from 'zod';
import { decodeSignature } from '../crypto.js';
import { defineProvider, jsonBody, rejected, staleness, verified } from '../verifier.js';

/** A P-256 public key from SendGrid's "verification key" (base64 DER SubjectPublicKeyInfo) or from PEM; null when it is not one. */
function p256Key(text: string): KeyObject | null {
  try {
    const trimmed = text.trim();
    const key = trimmed.startsWith('-----BEGIN')
      ? createPublicKey(trimmed)
      : createPublicKey({ key: Buffer.from(trimmed.replace(/\s+/g, ''), 'base64'), format: 'der', type: 'spki' });
    return key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1' ? key : null;
  } catch {
    return null;
  }
}

const publicKey = z
  .string()
  .min(1)
  .max(4096)
  .refine((k) => p256Key(k) !== null, { message: 'must be an ECDSA P-256 public key: base64 DER (as SendGrid shows it) or PEM' });

/**
 * SendGrid Event Webhook (signed): ECDSA P-256/SHA-256 over `X-Twilio-Email-Event-Webhook-Timestamp` ‖ body,
 * base64 DER signature in `X-Twilio-Email-Event-Webhook-Signature`. The body is a JSON array of events: the event
 * type is the first event's `event`. SendGrid sets no replay window; a tolerance applies only when configured.
 */
export const sendgridProvider = defineProvider({
  type: 'sendgrid',
  config: z.strictObject({
    publicKey,
    additionalPublicKeys: z.array(publicKey).max(10).optional(),
    tolerance: z.number().int().min(1).max(7 * 86_400).optional(),
  }),
  keepHeaders: [],
  create(config) {
    const keys = [config.publicKey, ...(config.additionalPublicKeys ?? [])].map((k) => p256Key(k)!);
    return {
      verify(request, now) {
        const h = request.headers;
        const signature = h['x-twilio-email-event-webhook-signature'];
        const timestamp = h['x-twilio-email-event-webhook-timestamp'];
        if (!signature) return rejected('missing X-Twilio-Email-Event-Webhook-Signature header');
        if (!timestamp) return rejected('missing X-Twilio-Email-Event-Webhook-Timestamp header');
        const decoded = decodeSignature(signature, 'base64');
        if (!decoded || decoded.length === 0) return rejected('malformed X-Twilio-Email-Event-Webhook-Signature header: not base64');
        if (config.tolerance !== undefined) {
          if (!/^\d+$/.test(timestamp)) return rejected('malformed X-Twilio-Email-Event-Webhook-Timestamp header: not a unix time');
          const stale = staleness(Number(timestamp), now, config.tolerance);
          if (stale) return rejected(stale);
        }
        const message = Buffer.concat([Buffer.from(timestamp, 'utf8'), request.body]);
        let ok = false;
        for (const key of keys) {
          try {
            if (verifySignature('sha256', message, { key, dsaEncoding: 'der' }, decoded)) ok = true;
          } catch {
            // Bytes that are not a DER signature are a mismatch, not an error.
          }
        }
        if (!ok) return rejected('no signature matches');

        const events = jsonBody(request.body);
        const list: any[] = Array.isArray(events) ? events : [];
        const first = list[0];
        const eventType = typeof first?.event === 'string' ? first.event : null;
        return verified(eventType, batchId(list));
      },
    };
  },
});

/**
 * The dedupe id of a batch: the `sg_event_id` of a single event, else a digest of every event's id: two batches
 * that merely start with the same event (one regrouped on retry) are not duplicates, and taking one for the other
 * would drop its other events. Null (dedupe on the body hash) when some event has no id.
 */
function batchId(events: any[]): string | null {
  if (events.length === 0) return null;
  const ids = events.map((e) => e?.sg_event_id);
  if (!ids.every((id): id is string => typeof id === 'string' && id !== '')) return null;
  if (ids.length === 1) return ids[0];
  return `sg-batch:${createHash('sha256').update(ids.join('\n')).digest('hex')}`;
}
