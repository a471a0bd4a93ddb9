import { z } from 'zod';
import { secretKey } from '../../signing/standard-webhooks.js';
import { anyHmacMatches, decodeSignature } from '../crypto.js';
import { stringMember } from '../json-member.js';
import { defineProvider, rejected, secretsConfig, secretsOf, staleness, tolerance, verified, type InboundRequest, type Verdict } from '../verifier.js';

/**
 * Checks `webhook-*` (or `svix-*`) headers against keys (from `secretKey`; nulls are skipped). Verified with
 * `webhook-id` as the delivery id and no event type; shared with providers that also send Standard Webhooks (GitLab).
 */
export function verifyStandardWebhook(keys: (Buffer | null)[], request: InboundRequest, now: number, toleranceSec: number): Verdict {
  const h = request.headers;
  const id = h['webhook-id'] ?? h['svix-id'];
  const timestamp = h['webhook-timestamp'] ?? h['svix-timestamp'];
  const signature = h['webhook-signature'] ?? h['svix-signature'];
  if (!id || !timestamp || !signature) return rejected('missing webhook-id, webhook-timestamp or webhook-signature header');
  if (!/^\d+$/.test(timestamp)) return rejected('the webhook-timestamp header is not a unix time in seconds');
  const stale = staleness(Number(timestamp), now, toleranceSec);
  if (stale) return rejected(stale);
  const candidates = signature
    .split(' ')
    .map((entry) => entry.split(','))
    .filter(([version]) => version === 'v1')
    .map(([, sig]) => decodeSignature(sig ?? '', 'base64'));
  const usable = keys.filter((k): k is Buffer => k !== null);
  if (!anyHmacMatches('sha256', usable, [`${id}.${timestamp}.`, request.body], candidates)) return rejected('no signature matches');
  return verified(null, id);
}

/**
 * Standard Webhooks (`webhook-*` headers) and its Svix spelling (`svix-*`), as Svix, Clerk, Resend and GitLab's
 * signing tokens send it: `v1,<base64 HMAC-SHA256>` over `id.timestamp.body`, key = base64 of the `whsec_` secret.
 */
function standardWebhooks(type: string) {
  return defineProvider({
    type,
    config: z.strictObject({ ...secretsConfig, tolerance: tolerance(300) }),
    keepHeaders: ['webhook-id', 'webhook-timestamp', 'svix-id', 'svix-timestamp'],
    create(config) {
      const keys = secretsOf(config).map(secretKey);
      return {
        verify(request: InboundRequest, now: number) {
          const verdict = verifyStandardWebhook(keys, request, now, config.tolerance);
          if (verdict.kind !== 'verified') return verdict;
          return verified(stringMember(request.body, 'type'), verdict.deliveryId);
        },
      };
    },
  });
}

export const standardWebhooksProvider = standardWebhooks('standard-webhooks');
export const svixProvider = standardWebhooks('svix');
export const clerkProvider = standardWebhooks('clerk');
