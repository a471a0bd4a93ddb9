import { z } from 'zod';
import { checkBodyHmac, defineProvider, jsonBody, rejected, secretsConfig, secretsOf, verified } from '../verifier.js';

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
        const failed = checkBodyHmac(request, secrets, { header: 'x-razorpay-signature', name: 'X-Razorpay-Signature', algorithm: 'sha256', encoding: 'hex' });
        if (failed) return failed;
        const event = jsonBody(request.body)?.event;
        return verified(typeof event === 'string' ? event : null, request.headers['x-razorpay-event-id'] ?? null);
      },
    };
  },
});
