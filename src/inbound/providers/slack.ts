import { z } from 'zod';
import { anyHmacMatches, decodeSignature } from '../crypto.js';
import { defineProvider, jsonBody, rejected, secretsConfig, secretsOf, staleness, tolerance, verified } from '../verifier.js';

/** The JSON a Slack request carries: the body itself, or the `payload` field of a form post (interactivity). */
function slackPayload(request: { headers: Record<string, string>; body: Buffer }): any {
  if ((request.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded')) {
    const payload = new URLSearchParams(request.body.toString('utf8')).get('payload');
    return payload === null ? null : jsonBody(Buffer.from(payload, 'utf8'));
  }
  return jsonBody(request.body);
}

/**
 * Slack: `X-Slack-Signature: v0=<hex>`, HMAC-SHA256 of `v0:<X-Slack-Request-Timestamp>:<raw body>` with the app's
 * signing secret; Bolt refuses timestamps more than 5 minutes off. The Events API's `url_verification` request is
 * signed too, and is answered with its challenge once verified.
 */
export const slackProvider = defineProvider({
  type: 'slack',
  config: z.strictObject({ ...secretsConfig, tolerance: tolerance(300) }),
  keepHeaders: ['x-slack-request-timestamp', 'x-slack-retry-num', 'x-slack-retry-reason'],
  create(config) {
    const secrets = secretsOf(config);
    return {
      verify(request, now) {
        const h = request.headers;
        const signature = h['x-slack-signature'];
        const timestamp = h['x-slack-request-timestamp'];
        if (!signature) return rejected('missing X-Slack-Signature header');
        if (!timestamp) return rejected('missing X-Slack-Request-Timestamp header');
        if (!/^\d+$/.test(timestamp)) return rejected('the X-Slack-Request-Timestamp header is not a unix time in seconds');
        if (!signature.startsWith('v0=')) return rejected('the X-Slack-Signature header is not a v0= signature');
        const decoded = decodeSignature(signature.slice(3), 'hex');
        if (!decoded) return rejected('the X-Slack-Signature header is not hex');
        const stale = staleness(Number(timestamp), now, config.tolerance);
        if (stale) return rejected(stale);
        if (!anyHmacMatches('sha256', secrets, [`v0:${timestamp}:`, request.body], [decoded])) return rejected('no signature matches');

        const payload = slackPayload(request);
        if (payload?.type === 'url_verification' && typeof payload.challenge === 'string') {
          return { kind: 'handshake', status: 200, contentType: 'application/json; charset=utf-8', body: JSON.stringify({ challenge: payload.challenge }) };
        }
        const inner = payload?.event?.type;
        const eventType = typeof inner === 'string' ? inner : typeof payload?.type === 'string' ? payload.type : null;
        return verified(eventType, typeof payload?.event_id === 'string' ? payload.event_id : null);
      },
    };
  },
});
