import { z } from 'zod';
import { anyHmacMatches, decodeSignature } from '../crypto.js';
import { defineProvider, jsonBody, rejected, secretsConfig, secretsOf, verified } from '../verifier.js';

/**
 * Razorpay: `X-Razorpay-Signature` = hex HMAC-SHA256 of the body, keyed with the webhook secret (not the API key
 * secret). No timestamp. Event in the body's `event` (`payment.captured`); delivery id `X-Razorpay-Event-Id`.
 */
export const razorpayProvider = defineProvider({
  type: 'razorpay',
  config: z.strictObject({ ...secretsConfig }),
  keepHeaders: ['x-razorpay-event-id'],
  create(config) {
    const secrets = secretsOf(config);
    return {
      verify(request) {
        const header = request.headers['x-razorpay-signature'];
        if (!header) return rejected('missing X-Razorpay-Signature header');
        const signature = decodeSignature(header, 'hex');
        if (!signature) return rejected('malformed X-Razorpay-Signature header: expected hex');
        if (!anyHmacMatches('sha256', secrets, [request.body], [signature])) return rejected('no signature matches');
        const event = jsonBody(request.body)?.event;
        return verified(typeof event === 'string' ? event : null, request.headers['x-razorpay-event-id'] ?? null);
      },
    };
  },
});
