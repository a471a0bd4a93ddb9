import { z } from 'zod';
import { anyHmacMatches, decodeSignature } from '../crypto.js';
import { defineProvider, jsonBody, rejected, secretsConfig, secretsOf, staleness, tolerance, verified } from '../verifier.js';

/**
 * Linear: `Linear-Signature: <hex HMAC-SHA256 of the body>`. The timestamp (milliseconds) is the body's
 * `webhookTimestamp`, which the signature covers; the `Linear-Timestamp` header is not signed, so it is only a
 * fallback for a body without one (@linear/sdk's client ignores the header altogether). ±60 s like the SDK.
 */
export const linearProvider = defineProvider({
  type: 'linear',
  config: z.strictObject({ ...secretsConfig, tolerance: tolerance(60) }),
  keepHeaders: ['linear-delivery', 'linear-event'],
  create(config) {
    const secrets = secretsOf(config);
    return {
      verify(request, now) {
        const h = request.headers;
        const signature = h['linear-signature'];
        if (!signature) return rejected('missing Linear-Signature header');
        const candidate = decodeSignature(signature, 'hex');
        if (!candidate) return rejected('malformed Linear-Signature header: not a hex digest');
        if (!anyHmacMatches('sha256', secrets, [request.body], [candidate])) return rejected('no signature matches');

        const body = jsonBody(request.body);
        let timestampMs: number;
        if (body?.webhookTimestamp !== undefined && body?.webhookTimestamp !== null) {
          if (typeof body.webhookTimestamp !== 'number' || !Number.isFinite(body.webhookTimestamp)) return rejected('malformed webhookTimestamp in the body: not a number of milliseconds');
          timestampMs = body.webhookTimestamp;
        } else if (h['linear-timestamp'] !== undefined) {
          if (!/^\d+$/.test(h['linear-timestamp'])) return rejected('malformed Linear-Timestamp header: not a number of milliseconds');
          timestampMs = Number(h['linear-timestamp']);
        } else {
          return rejected('missing timestamp: no webhookTimestamp in the body and no Linear-Timestamp header');
        }
        const stale = staleness(timestampMs / 1000, now, config.tolerance);
        if (stale) return rejected(stale);

        const type = typeof body?.type === 'string' ? body.type : null;
        const action = typeof body?.action === 'string' ? body.action : null;
        return verified(type && action ? `${type}.${action}` : type, h['linear-delivery'] ?? null);
      },
    };
  },
});
