import { z } from 'zod';
import { anyHmacMatches, decodeSignature } from '../crypto.js';
import { defineProvider, jsonBody, rejected, secretsConfig, secretsOf, verified } from '../verifier.js';

/**
 * Square: `x-square-hmacsha256-signature`, base64 HMAC-SHA256 of the subscription's notification URL (exactly as
 * registered with Square) followed by the raw body, keyed with the subscription's signature key. The URL is the
 * config's `notificationUrl`, else the URL the request arrived on (the source's `publicUrl` when set). No timestamp:
 * replays are caught by dedupe on the body's `event_id`.
 */
export const squareProvider = defineProvider({
  type: 'square',
  config: z.strictObject({ ...secretsConfig, notificationUrl: z.url().max(2048).optional() }),
  keepHeaders: ['square-version', 'square-environment', 'square-retry-number', 'square-retry-reason', 'square-initial-delivery-timestamp'],
  create(config) {
    const secrets = secretsOf(config);
    return {
      verify(request) {
        const header = request.headers['x-square-hmacsha256-signature'];
        if (!header) return rejected('missing x-square-hmacsha256-signature header');
        const decoded = decodeSignature(header, 'base64');
        if (!decoded) return rejected('the x-square-hmacsha256-signature header is not base64');
        const url = config.notificationUrl ?? request.url;
        if (!anyHmacMatches('sha256', secrets, [url, request.body], [decoded])) {
          return rejected(`no signature matches (over ${config.notificationUrl ? 'the configured notificationUrl' : "the request's URL"}, which must be exactly the URL registered with Square)`);
        }
        const event = jsonBody(request.body);
        return verified(typeof event?.type === 'string' ? event.type : null, typeof event?.event_id === 'string' ? event.event_id : null);
      },
    };
  },
});
