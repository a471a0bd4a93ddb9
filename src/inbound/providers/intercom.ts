import { z } from 'zod';
import { anyHmacMatches, decodeSignature } from '../crypto.js';
import { defineProvider, jsonBody, rejected, secretsConfig, secretsOf, verified } from '../verifier.js';

/**
 * Intercom: `X-Hub-Signature: sha1=<hex>`, HMAC-SHA1 of the body keyed with the app's client secret. No timestamp.
 * The notification's `topic` (`conversation.user.created`, `ping`) is the event type, its `id` the delivery id.
 */
export const intercomProvider = defineProvider({
  type: 'intercom',
  config: z.strictObject({ ...secretsConfig }),
  keepHeaders: [],
  create(config) {
    const secrets = secretsOf(config);
    return {
      verify(request) {
        const header = request.headers['x-hub-signature'];
        if (!header) return rejected('missing X-Hub-Signature header');
        if (!header.startsWith('sha1=')) return rejected('malformed X-Hub-Signature header: expected sha1=<hex>');
        const signature = decodeSignature(header.slice(5), 'hex');
        if (!signature) return rejected('malformed X-Hub-Signature header: expected sha1=<hex>');
        if (!anyHmacMatches('sha1', secrets, [request.body], [signature])) return rejected('no signature matches');
        const notification = jsonBody(request.body);
        return verified(
          typeof notification?.topic === 'string' ? notification.topic : null,
          typeof notification?.id === 'string' && notification.id !== '' ? notification.id : null,
        );
      },
    };
  },
});
