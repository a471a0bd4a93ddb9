import { z } from 'zod';
import { anyHmacMatches, decodeSignature } from '../crypto.js';
import { defineProvider, jsonBody, rejected, secretsConfig, secretsOf, verified } from '../verifier.js';

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
        const signature = request.headers['typeform-signature'];
        if (!signature) return rejected('missing Typeform-Signature header');
        if (!signature.startsWith('sha256=')) return rejected('malformed Typeform-Signature header: does not start with "sha256="');
        const candidate = decodeSignature(signature.slice(7), 'base64');
        if (!candidate) return rejected('malformed Typeform-Signature header: not base64');
        if (!anyHmacMatches('sha256', secrets, [request.body], [candidate])) return rejected('no signature matches');
        const body = jsonBody(request.body);
        return verified(typeof body?.event_type === 'string' ? body.event_type : null, typeof body?.event_id === 'string' ? body.event_id : null);
      },
    };
  },
});
