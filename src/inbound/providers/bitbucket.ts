import { z } from 'zod';
import { anyHmacMatches, decodeSignature } from '../crypto.js';
import { defineProvider, rejected, secretsConfig, secretsOf, verified } from '../verifier.js';

/**
 * Bitbucket Cloud and Data Center: `X-Hub-Signature: sha256=<hex>` over the body (the header GitHub uses for
 * SHA-1, but SHA-256 here). No timestamp. Event in `X-Event-Key` (`repo:push`); delivery id `X-Request-UUID`
 * (Cloud) or `X-Request-Id` (Data Center).
 */
export const bitbucketProvider = defineProvider({
  type: 'bitbucket',
  config: z.strictObject({ ...secretsConfig }),
  keepHeaders: ['x-event-key', 'x-request-uuid', 'x-request-id', 'x-hook-uuid', 'x-attempt-number'],
  create(config) {
    const secrets = secretsOf(config);
    return {
      verify(request) {
        const h = request.headers;
        const header = h['x-hub-signature'];
        if (!header) return rejected('missing X-Hub-Signature header (is a secret set on the Bitbucket webhook?)');
        if (!header.startsWith('sha256=')) return rejected('malformed X-Hub-Signature header: expected sha256=<hex>');
        const signature = decodeSignature(header.slice(7), 'hex');
        if (!signature) return rejected('malformed X-Hub-Signature header: expected sha256=<hex>');
        if (!anyHmacMatches('sha256', secrets, [request.body], [signature])) return rejected('no signature matches');
        return verified(h['x-event-key'] ?? null, h['x-request-uuid'] ?? h['x-request-id'] ?? null);
      },
    };
  },
});
