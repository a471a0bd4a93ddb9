import { createHash } from 'node:crypto';
import { z } from 'zod';
import { secretKey } from '../../signing/standard-webhooks.js';
import { bytesEqual } from '../crypto.js';
import { defineProvider, rejected, secretsConfig, tolerance, verified } from '../verifier.js';
import { verifyStandardWebhook } from './standard-webhooks.js';

const signingToken = z.string().min(1).max(1024).refine((v) => secretKey(v) !== null, { message: 'must be a GitLab signing token: whsec_ followed by base64 of 24–64 bytes' });
const sha256 = (text: string) => createHash('sha256').update(text).digest();

/**
 * GitLab: the hook's secret token comes back verbatim in `X-Gitlab-Token` (compared in constant time, over
 * SHA-256 digests so that the length does not leak either). Hooks with a signing token also send Standard
 * Webhooks headers (`webhook-id` = the `Idempotency-Key`, `webhook-signature: v1,<base64>` over `id.ts.body`).
 * Every mechanism the source is configured with must pass, so a request cannot fall back to the weaker one.
 * Dedupe on `Idempotency-Key` (the same across GitLab's retries), else `X-Gitlab-Event-UUID`.
 */
export const gitlabProvider = defineProvider({
  type: 'gitlab',
  config: z
    .strictObject({
      secret: secretsConfig.secret.optional(),
      additionalSecrets: secretsConfig.additionalSecrets,
      signingToken: signingToken.optional(),
      additionalSigningTokens: z.array(signingToken).max(10).optional(),
      tolerance: tolerance(300),
    })
    .refine((c) => c.secret !== undefined || c.signingToken !== undefined, { message: 'a gitlab source needs secret (the secret token), signingToken, or both', path: ['secret'] })
    .refine((c) => c.secret !== undefined || c.additionalSecrets === undefined, { message: 'additionalSecrets needs secret', path: ['additionalSecrets'] })
    .refine((c) => c.signingToken !== undefined || c.additionalSigningTokens === undefined, { message: 'additionalSigningTokens needs signingToken', path: ['additionalSigningTokens'] }),
  keepHeaders: ['x-gitlab-event', 'x-gitlab-event-uuid', 'x-gitlab-webhook-uuid', 'x-gitlab-instance', 'idempotency-key'],
  create(config) {
    const tokens = config.secret === undefined ? [] : [config.secret, ...(config.additionalSecrets ?? [])].map(sha256);
    const keys = config.signingToken === undefined ? [] : [config.signingToken, ...(config.additionalSigningTokens ?? [])].map(secretKey);
    return {
      verify(request, now) {
        const h = request.headers;
        if (keys.length > 0) {
          const signed = verifyStandardWebhook(keys, request, now, config.tolerance);
          if (signed.kind !== 'verified') return signed;
        }
        if (tokens.length > 0) {
          const token = h['x-gitlab-token'];
          if (token === undefined) return rejected('missing X-Gitlab-Token header');
          const presented = sha256(token);
          let ok = false;
          for (const expected of tokens) if (bytesEqual(expected, presented)) ok = true;
          if (!ok) return rejected('wrong token in X-Gitlab-Token');
        }
        return verified(h['x-gitlab-event'] ?? null, h['idempotency-key'] ?? h['x-gitlab-event-uuid'] ?? h['webhook-id'] ?? null);
      },
    };
  },
});
