import { z } from 'zod';
import { anyHmacMatches, decodeSignature } from '../crypto.js';
import { defineProvider, jsonBody, rejected, secretsConfig, secretsOf, staleness, tolerance, verified } from '../verifier.js';

/**
 * Stripe: `Stripe-Signature: t=<ts>,v1=<hex>[,v1=…]`, HMAC-SHA256 over `${t}.${body}` keyed with the `whsec_`
 * string itself (not base64-decoded). Any `v1` may match (Stripe sends one per secret while rolling).
 */
export const stripeProvider = defineProvider({
  type: 'stripe',
  config: z.strictObject({ ...secretsConfig, tolerance: tolerance(300) }),
  keepHeaders: [],
  create(config) {
    const secrets = secretsOf(config);
    return {
      verify(request, now) {
        const header = request.headers['stripe-signature'];
        if (!header) return rejected('missing Stripe-Signature header');
        const pairs = header.split(',').map((part) => {
          const at = part.indexOf('=');
          return [part.slice(0, at).trim(), part.slice(at + 1).trim()] as const;
        });
        const timestamp = pairs.find(([k]) => k === 't')?.[1];
        const signatures = pairs.filter(([k]) => k === 'v1').map(([, v]) => decodeSignature(v, 'hex'));
        if (!timestamp || !/^\d+$/.test(timestamp) || signatures.length === 0) return rejected('the Stripe-Signature header has no timestamp or no v1 signature');
        const stale = staleness(Number(timestamp), now, config.tolerance);
        if (stale) return rejected(stale);
        if (!anyHmacMatches('sha256', secrets, [`${timestamp}.`, request.body], signatures)) return rejected('no signature matches');
        const event = jsonBody(request.body);
        return verified(typeof event?.type === 'string' ? event.type : null, typeof event?.id === 'string' ? event.id : null);
      },
    };
  },
});
