import { createHash } from 'node:crypto';
import { z } from 'zod';
import { anyHmacMatches, decodeSignature } from '../crypto.js';
import { defineProvider, jsonBody, rejected, secretsConfig, secretsOf, staleness, tolerance, verified } from '../verifier.js';

/** The escapes HubSpot's request-validation docs say to decode in the URI before signing (and no others). */
const DECODED: Record<string, string> = { '3A': ':', '2F': '/', '3F': '?', '40': '@', '21': '!', '24': '$', '27': "'", '28': '(', '29': ')', '2A': '*', '2C': ',', '3B': ';' };
const decodeUri = (uri: string) => uri.replace(/%(3A|2F|3F|40|21|24|27|28|29|2A|2C|3B)/gi, (_, hex: string) => DECODED[hex.toUpperCase()]);

/**
 * Event type and delivery id of a HubSpot request. Webhook deliveries are a JSON array of up to 100 events, each
 * with `subscriptionType` and `eventId`; retries re-send the same events with a higher `attemptNumber`, so the body
 * changes and dedupe must rest on the event ids.
 */
function describe(body: Buffer): { eventType: string | null; deliveryId: string | null } {
  const parsed = jsonBody(body);
  const events: any[] = Array.isArray(parsed) ? parsed : parsed && typeof parsed === 'object' ? [parsed] : [];
  const types = new Set(events.map((e) => e?.subscriptionType));
  const eventType = types.size === 1 && typeof events[0]?.subscriptionType === 'string' ? events[0].subscriptionType : null;
  const ids = events.map((e) => e?.eventId);
  if (ids.length === 0 || !ids.every((id) => typeof id === 'number' || typeof id === 'string')) return { eventType, deliveryId: null };
  if (ids.length === 1) return { eventType, deliveryId: String(ids[0]) };
  const sorted = ids.map(String).sort().join(',');
  return { eventType, deliveryId: `events:${createHash('sha256').update(sorted).digest('hex')}` };
}

/**
 * HubSpot v3: `X-HubSpot-Signature-v3`, base64 HMAC-SHA256 with the app's client secret of method + URI + raw body
 * + `X-HubSpot-Request-Timestamp` (milliseconds), refused when more than 5 minutes off. The URI is the full URL
 * HubSpot called (the source's `publicUrl` behind a proxy); HubSpot's docs decode a few escapes in it first, its
 * SDKs do not, so both forms are tried. v1/v2 signatures carry no timestamp and are not accepted.
 */
export const hubspotProvider = defineProvider({
  type: 'hubspot',
  config: z.strictObject({ ...secretsConfig, tolerance: tolerance(300) }),
  keepHeaders: ['x-hubspot-request-timestamp'],
  create(config) {
    const secrets = secretsOf(config);
    return {
      verify(request, now) {
        const h = request.headers;
        const signature = h['x-hubspot-signature-v3'];
        const timestamp = h['x-hubspot-request-timestamp'];
        if (!signature) return rejected('missing X-HubSpot-Signature-v3 header (v1/v2 signatures are not accepted)');
        if (!timestamp) return rejected('missing X-HubSpot-Request-Timestamp header');
        if (!/^\d+$/.test(timestamp)) return rejected('the X-HubSpot-Request-Timestamp header is not a unix time in milliseconds');
        const decoded = decodeSignature(signature, 'base64');
        if (!decoded) return rejected('the X-HubSpot-Signature-v3 header is not base64');
        const stale = staleness(Number(timestamp) / 1000, now, config.tolerance);
        if (stale) return rejected(stale);
        const uris = [...new Set([decodeUri(request.url), request.url])];
        const method = request.method.toUpperCase();
        if (!uris.some((uri) => anyHmacMatches('sha256', secrets, [method + uri, request.body, timestamp], [decoded]))) {
          return rejected("no signature matches (over the request's URL: set the source's publicUrl when HubSpot calls hookrelay through a proxy)");
        }
        const { eventType, deliveryId } = describe(request.body);
        return verified(eventType, deliveryId);
      },
    };
  },
});
