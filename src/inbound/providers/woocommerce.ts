import { z } from 'zod';
import { checkBodyHmac, defineProvider, rejected, secretsConfig, secretsOf, verified } from '../verifier.js';

/** The body of the unsigned ping WooCommerce posts when a webhook is saved (`WC_Webhook::deliver_ping`). */
const PING = /^webhook_id=\d+$/;

/**
 * WooCommerce: `X-WC-Webhook-Signature` = base64 HMAC-SHA256 of the body, keyed with the webhook secret. No
 * timestamp. Topic (`order.created`) in `X-WC-Webhook-Topic`; delivery id `X-WC-Webhook-Delivery-ID`.
 * Saving a webhook sends an unsigned form-encoded `webhook_id=<n>` ping that must get exactly 200 or WooCommerce
 * refuses to activate the hook: it is answered and creates no message; any other unsigned request is rejected.
 */
export const woocommerceProvider = defineProvider({
  type: 'woocommerce',
  config: z.strictObject({ ...secretsConfig }),
  keepHeaders: ['x-wc-webhook-source', 'x-wc-webhook-topic', 'x-wc-webhook-resource', 'x-wc-webhook-event', 'x-wc-webhook-id', 'x-wc-webhook-delivery-id'],
  create(config) {
    const secrets = secretsOf(config);
    return {
      verify(request) {
        const h = request.headers;
        const header = h['x-wc-webhook-signature'];
        if (!header) {
          if (request.method === 'POST' && PING.test(request.body.toString('latin1'))) return { kind: 'handshake', status: 200, contentType: 'text/plain; charset=utf-8', body: 'ok' };
          return rejected('missing X-WC-Webhook-Signature header');
        }
        const failed = checkBodyHmac(request, secrets, { header: 'x-wc-webhook-signature', name: 'X-WC-Webhook-Signature', algorithm: 'sha256', encoding: 'base64' });
        if (failed) return failed;
        return verified(h['x-wc-webhook-topic'] ?? null, h['x-wc-webhook-delivery-id'] ?? null);
      },
    };
  },
});
