import { z } from 'zod';
import { anyHmacMatches, decodeSignature } from '../crypto.js';
import { stringMember } from '../json-member.js';
import { defineProvider, rejected, secretsConfig, secretsOf, verified } from '../verifier.js';

/** GitHub: `X-Hub-Signature-256: sha256=<hex>` over the body; SHA-1 (`X-Hub-Signature`) only when enabled. No timestamp: replays are caught by dedupe on `X-GitHub-Delivery`. */
export const githubProvider = defineProvider({
  type: 'github',
  config: z.strictObject({ ...secretsConfig, allowSha1: z.boolean().default(false) }),
  keepHeaders: ['x-github-event', 'x-github-delivery', 'x-github-hook-id', 'x-github-hook-installation-target-id', 'x-github-hook-installation-target-type'],
  create(config) {
    const secrets = secretsOf(config);
    return {
      verify(request) {
        const h = request.headers;
        const sha256 = h['x-hub-signature-256'];
        let ok = false;
        if (sha256) {
          ok = sha256.startsWith('sha256=') && anyHmacMatches('sha256', secrets, [request.body], [decodeSignature(sha256.slice(7), 'hex')]);
        } else if (config.allowSha1 && h['x-hub-signature']) {
          const sha1 = h['x-hub-signature'];
          ok = sha1.startsWith('sha1=') && anyHmacMatches('sha1', secrets, [request.body], [decodeSignature(sha1.slice(5), 'hex')]);
        } else {
          return rejected(config.allowSha1 ? 'missing X-Hub-Signature-256 or X-Hub-Signature header' : 'missing X-Hub-Signature-256 header');
        }
        if (!ok) return rejected('no signature matches');
        const event = h['x-github-event'] ?? null;
        const action = event ? stringMember(request.body, 'action') : null;
        return verified(event && action !== null ? `${event}.${action}` : event, h['x-github-delivery'] ?? null);
      },
    };
  },
});
