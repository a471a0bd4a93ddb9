import { z } from 'zod';
import { anyHmacMatches, decodeSignature } from '../crypto.js';
import { defineProvider, jsonBody, rejected, secretsConfig, secretsOf, staleness, tolerance, verified } from '../verifier.js';

/**
 * Paddle Billing: `Paddle-Signature: ts=<unix s>;h1=<hex>[;h1=…]`, HMAC-SHA256 of `<ts>:<raw body>` with the
 * notification destination's secret key. Any h1 may match (several are sent while a key is rotated).
 *
 * Paddle's SDK refuses a signature more than 5 s old. That counts Paddle's queueing, the network, any proxy in
 * front of hookrelay and the clock skew between the two hosts, so an honest delivery to a host whose clock is a few
 * seconds off is refused on every retry. The default is 300 s, as for Stripe, Slack and Standard Webhooks: a replay
 * inside that window is still dropped by dedupe on the body's `event_id`.
 */
export const paddleProvider = defineProvider({
  type: 'paddle',
  config: z.strictObject({ ...secretsConfig, tolerance: tolerance(300) }),
  keepHeaders: [],
  create(config) {
    const secrets = secretsOf(config);
    return {
      verify(request, now) {
        const header = request.headers['paddle-signature'];
        if (!header) return rejected('missing Paddle-Signature header');
        const pairs = header.split(';').map((part) => {
          const at = part.indexOf('=');
          return at === -1 ? (['', ''] as const) : ([part.slice(0, at).trim(), part.slice(at + 1).trim()] as const);
        });
        const timestamp = pairs.find(([k]) => k === 'ts')?.[1];
        const signatures = pairs.filter(([k]) => k === 'h1').map(([, v]) => decodeSignature(v, 'hex'));
        if (!timestamp || !/^\d+$/.test(timestamp) || signatures.length === 0) return rejected('the Paddle-Signature header has no ts=<unix time> or no h1 signature');
        const stale = staleness(Number(timestamp), now, config.tolerance);
        if (stale) return rejected(stale);
        if (!anyHmacMatches('sha256', secrets, [`${timestamp}:`, request.body], signatures)) return rejected('no signature matches');
        const event = jsonBody(request.body);
        return verified(typeof event?.event_type === 'string' ? event.event_type : null, typeof event?.event_id === 'string' ? event.event_id : null);
      },
    };
  },
});
