import { z } from 'zod';
import { checkBodyHmac, defineProvider, rejected, secretsConfig, secretsOf, verified } from '../verifier.js';

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
        const scheme = { header: 'x-hub-signature', name: 'X-Hub-Signature', prefix: 'sha256=', algorithm: 'sha256', encoding: 'hex' } as const;
        const failed = checkBodyHmac(request, secrets, scheme, 'missing X-Hub-Signature header (is a secret set on the Bitbucket webhook?)');
        if (failed) return failed;
        return verified(h['x-event-key'] ?? null, h['x-request-uuid'] ?? h['x-request-id'] ?? null);
      },
    };
  },
});
