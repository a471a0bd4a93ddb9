import { z } from 'zod';
import { anyHmacMatches, decodeSignature } from '../crypto.js';
import { defineProvider, rejected, secretsConfig, secretsOf, verified } from '../verifier.js';

/**
 * Shopify: base64 HMAC-SHA256 of the raw body keyed with the app's client secret (or the store's webhook signing
 * key). Classic webhooks send `X-Shopify-*` headers; Events webhooks send `shopify-*` (plus the old spelling for
 * compatibility), so the new spelling wins, as in Shopify's own library. No timestamp is signed: replays are caught
 * by dedupe on the webhook id.
 */
export const shopifyProvider = defineProvider({
  type: 'shopify',
  config: z.strictObject({ ...secretsConfig }),
  keepHeaders: [
    'x-shopify-topic',
    'x-shopify-shop-domain',
    'x-shopify-api-version',
    'x-shopify-webhook-id',
    'x-shopify-event-id',
    'x-shopify-sub-topic',
    'x-shopify-name',
    'x-shopify-triggered-at',
    'shopify-topic',
    'shopify-shop-domain',
    'shopify-api-version',
    'shopify-event-id',
    'shopify-handle',
    'shopify-action',
    'shopify-resource-id',
    'shopify-triggered-at',
  ],
  create(config) {
    const secrets = secretsOf(config);
    return {
      verify(request) {
        const h = request.headers;
        const signature = h['shopify-hmac-sha256'] ?? h['x-shopify-hmac-sha256'];
        if (!signature) return rejected('missing X-Shopify-Hmac-Sha256 (or shopify-hmac-sha256) header');
        const decoded = decodeSignature(signature, 'base64');
        if (!decoded) return rejected('the Shopify HMAC header is not base64');
        // Shopify's library refuses an empty body before checking the HMAC; every real delivery has one.
        if (request.body.length === 0) return rejected('empty body: Shopify always sends a payload');
        if (!anyHmacMatches('sha256', secrets, [request.body], [decoded])) return rejected('no signature matches');
        const topic = h['shopify-topic'] ?? h['x-shopify-topic'] ?? null;
        const deliveryId = h['x-shopify-webhook-id'] ?? h['shopify-event-id'] ?? h['x-shopify-event-id'] ?? null;
        // Topics are `orders/create`; endpoint filterTypes only allow letters, digits, "-", "_" and ".", so
        // `orders.create` (the raw topic is still forwarded in its header).
        return verified(topic ? topic.replace(/[^A-Za-z0-9_.-]/g, '.') : null, deliveryId);
      },
    };
  },
});
