import { z } from 'zod';
import { anyHmacMatches, decodeSignature } from '../crypto.js';
import { defineProvider, jsonBody, rejected, staleness, tolerance, verified } from '../verifier.js';

/** Twitch takes a subscription secret of 10–100 ASCII characters. */
const twitchSecret = z.string().regex(/^[\x20-\x7e]{10,100}$/, { message: 'must be 10 to 100 printable ASCII characters, as Twitch requires' });

/** RFC 3339 (Twitch sends nanoseconds: `2023-07-19T14:56:51.634234626Z`) → seconds; NaN when malformed. */
function rfc3339Seconds(text: string): number {
  const match = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})$/i.exec(text);
  if (!match) return NaN;
  const ms = Date.parse(`${match[1]}${match[3].toUpperCase()}`);
  return (ms + Number(`0.${match[2] ?? '0'}`) * 1000) / 1000;
}

/**
 * Twitch EventSub webhooks: `Twitch-Eventsub-Message-Signature: sha256=<hex>`, HMAC-SHA256 over
 * message id + timestamp + body; the RFC 3339 timestamp must be within 10 minutes. `webhook_callback_verification`
 * is answered, once its signature is checked, with the raw `challenge` as text/plain; `notification` carries
 * `subscription.type` as its event type; `revocation` (Twitch ended the subscription) is stored as event type
 * `revocation` so that it can be routed apart from notifications, whose payload it does not share.
 */
export const twitchProvider = defineProvider({
  type: 'twitch',
  config: z.strictObject({ secret: twitchSecret, additionalSecrets: z.array(twitchSecret).max(10).optional(), tolerance: tolerance(600) }),
  keepHeaders: [
    'twitch-eventsub-message-id',
    'twitch-eventsub-message-type',
    'twitch-eventsub-message-timestamp',
    'twitch-eventsub-message-retry',
    'twitch-eventsub-subscription-type',
    'twitch-eventsub-subscription-version',
  ],
  create(config) {
    const secrets = [config.secret, ...(config.additionalSecrets ?? [])];
    return {
      verify(request, now) {
        const h = request.headers;
        for (const name of ['Id', 'Timestamp', 'Signature', 'Type']) {
          if (!h[`twitch-eventsub-message-${name.toLowerCase()}`]) return rejected(`missing Twitch-Eventsub-Message-${name} header`);
        }
        const id = h['twitch-eventsub-message-id'];
        const timestamp = h['twitch-eventsub-message-timestamp'];
        const header = h['twitch-eventsub-message-signature'];
        const seconds = rfc3339Seconds(timestamp);
        if (Number.isNaN(seconds)) return rejected('malformed Twitch-Eventsub-Message-Timestamp header: expected an RFC 3339 time');
        const stale = staleness(seconds, now, config.tolerance);
        if (stale) return rejected(stale);
        const signature = header.startsWith('sha256=') ? decodeSignature(header.slice(7), 'hex') : null;
        if (!signature) return rejected('malformed Twitch-Eventsub-Message-Signature header: expected sha256=<hex>');
        if (!anyHmacMatches('sha256', secrets, [id, timestamp, request.body], [signature])) return rejected('no signature matches');

        const body = jsonBody(request.body);
        const type = h['twitch-eventsub-message-type'];
        if (type === 'webhook_callback_verification') {
          if (typeof body?.challenge !== 'string') return rejected('the webhook_callback_verification body has no challenge');
          return { kind: 'handshake', status: 200, contentType: 'text/plain; charset=utf-8', body: body.challenge };
        }
        if (type === 'revocation') return verified('revocation', id);
        const subscriptionType = body?.subscription?.type;
        return verified(typeof subscriptionType === 'string' ? subscriptionType : (h['twitch-eventsub-subscription-type'] ?? null), id);
      },
    };
  },
});
