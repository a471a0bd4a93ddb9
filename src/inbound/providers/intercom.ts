import { z } from 'zod';
import { checkBodyHmac, defineProvider, jsonBody, rejected, secretsConfig, secretsOf, verified } from '../verifier.js';

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
        const failed = checkBodyHmac(request, secrets, { header: 'x-hub-signature', name: 'X-Hub-Signature', prefix: 'sha1=', algorithm: 'sha1', encoding: 'hex' });
        if (failed) return failed;
        const notification = jsonBody(request.body);
        return verified(
          typeof notification?.topic === 'string' ? notification.topic : null,
          typeof notification?.id === 'string' && notification.id !== '' ? notification.id : null,
        );
      },
    };
  },
});
