import { z } from 'zod';
import { checkBodyHmac, defineProvider, jsonBody, rejected, secretsConfig, secretsOf, verified } from '../verifier.js';

/**
 * Typeform: `Typeform-Signature: sha256=<base64>`, HMAC-SHA256 of the body with the webhook's secret. No
 * timestamp: replays are dropped by dedupe on the body's `event_id`.
 */
export const typeformProvider = defineProvider({
  type: 'typeform',
  config: z.strictObject({ ...secretsConfig }),
  keepHeaders: [],
  create(config) {
    const secrets = secretsOf(config);
    return {
      verify(request) {
        const failed = checkBodyHmac(request, secrets, { header: 'typeform-signature', name: 'Typeform-Signature', prefix: 'sha256=', algorithm: 'sha256', encoding: 'base64' });
        if (failed) return failed;
        const body = jsonBody(request.body);
        return verified(typeof body?.event_type === 'string' ? body.event_type : null, typeof body?.event_id === 'string' ? body.event_id : null);
      },
    };
  },
});
