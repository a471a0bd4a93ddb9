import { z } from 'zod';
import { anyHmacMatches, decodeSignature, hmac } from '../crypto.js';
import { defineProvider, jsonBody, rejected, secretsConfig, secretsOf, staleness, verified } from '../verifier.js';

/**
 * Zoom: `x-zm-signature: v0=<hex>`, HMAC-SHA256 with the app's Secret Token over `v0:{x-zm-request-timestamp}:{body}`.
 * `endpoint.url_validation` (signed like any event) is answered `{plainToken, encryptedToken}`, the token's HMAC
 * under the secret that verified the request. Zoom documents no replay window and retries up to 85 min later, so
 * a tolerance applies only when configured; retries and replays are dropped by dedupe on the body.
 */
export const zoomProvider = defineProvider({
  type: 'zoom',
  config: z.strictObject({ ...secretsConfig, tolerance: z.number().int().min(1).max(7 * 86_400).optional() }),
  keepHeaders: ['x-zm-trackingid'],
  create(config) {
    const secrets = secretsOf(config);
    return {
      verify(request, now) {
        const h = request.headers;
        const signature = h['x-zm-signature'];
        const timestamp = h['x-zm-request-timestamp'];
        if (!signature) return rejected('missing x-zm-signature header');
        if (!timestamp) return rejected('missing x-zm-request-timestamp header');
        if (!/^\d+$/.test(timestamp)) return rejected('malformed x-zm-request-timestamp header: not a unix time');
        if (!signature.startsWith('v0=')) return rejected('malformed x-zm-signature header: does not start with "v0="');
        const candidate = decodeSignature(signature.slice(3), 'hex');
        if (!candidate) return rejected('malformed x-zm-signature header: not a hex digest');
        if (config.tolerance !== undefined) {
          const stale = staleness(timestamp.length >= 13 ? Number(timestamp) / 1000 : Number(timestamp), now, config.tolerance);
          if (stale) return rejected(stale);
        }
        const parts = [`v0:${timestamp}:`, request.body];
        const secret = secrets.find((s) => anyHmacMatches('sha256', [s], parts, [candidate]));
        if (secret === undefined) return rejected('no signature matches');

        const body = jsonBody(request.body);
        const event = typeof body?.event === 'string' ? body.event : null;
        if (event === 'endpoint.url_validation') {
          const plainToken = body?.payload?.plainToken;
          if (typeof plainToken !== 'string' || plainToken === '') return rejected('malformed endpoint.url_validation: no payload.plainToken');
          const encryptedToken = hmac('sha256', secret, plainToken).toString('hex');
          return { kind: 'handshake', status: 200, contentType: 'application/json', body: JSON.stringify({ plainToken, encryptedToken }) };
        }
        return verified(event, null);
      },
    };
  },
});
