import { createPublicKey, verify as verifySignature, type KeyObject } from 'node:crypto';
import { z } from 'zod';
import { decodeSignature } from '../crypto.js';
import { defineProvider, jsonBody, rejected, staleness, verified } from '../verifier.js';

/** DER prefix of an Ed25519 SubjectPublicKeyInfo; the 32 raw key bytes follow. */
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

const publicKeyHex = z.string().regex(/^[0-9a-fA-F]{64}$/, 'must be the application public key: 64 hex characters (32 bytes)');

function ed25519Key(hex: string): KeyObject {
  return createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, Buffer.from(hex, 'hex')]), format: 'der', type: 'spki' });
}

/** Discord's interaction type names, used as event types. */
const INTERACTION_TYPES: Record<number, string> = {
  2: 'APPLICATION_COMMAND',
  3: 'MESSAGE_COMPONENT',
  4: 'APPLICATION_COMMAND_AUTOCOMPLETE',
  5: 'MODAL_SUBMIT',
};

/**
 * Discord interactions and webhook events: `X-Signature-Ed25519` (hex) over `X-Signature-Timestamp` ‖ body,
 * checked with the application's public key (hex, 32 bytes). Interaction `PING` (type 1) is answered
 * `{"type":1}`; a webhook-event `PING` (type 0) 204. Discord sets no replay window; a tolerance applies only when
 * configured.
 */
export const discordProvider = defineProvider({
  type: 'discord',
  config: z.strictObject({
    publicKey: publicKeyHex,
    additionalPublicKeys: z.array(publicKeyHex).max(10).optional(),
    tolerance: z.number().int().min(1).max(7 * 86_400).optional(),
  }),
  keepHeaders: [],
  create(config) {
    const keys = [config.publicKey, ...(config.additionalPublicKeys ?? [])].map(ed25519Key);
    return {
      verify(request, now) {
        const h = request.headers;
        const signature = h['x-signature-ed25519'];
        const timestamp = h['x-signature-timestamp'];
        if (!signature) return rejected('missing X-Signature-Ed25519 header');
        if (!timestamp) return rejected('missing X-Signature-Timestamp header');
        const decoded = decodeSignature(signature, 'hex');
        if (!decoded || decoded.length !== 64) return rejected('malformed X-Signature-Ed25519 header: not 64 hex-encoded bytes');
        if (config.tolerance !== undefined) {
          if (!/^\d+$/.test(timestamp)) return rejected('malformed X-Signature-Timestamp header: not a unix time');
          const stale = staleness(Number(timestamp), now, config.tolerance);
          if (stale) return rejected(stale);
        }
        const message = Buffer.concat([Buffer.from(timestamp, 'utf8'), request.body]);
        let ok = false;
        for (const key of keys) {
          try {
            if (verifySignature(null, message, key, decoded)) ok = true;
          } catch {
            // A malformed signature is a mismatch, not an error.
          }
        }
        if (!ok) return rejected('no signature matches');

        const body = jsonBody(request.body);
        if (body?.event !== undefined || body?.type === 0) {
          // Webhook events: {version, application_id, type: 0 (PING) | 1 (EVENT), event?: {type, timestamp, data}}.
          if (body.type === 0) return { kind: 'handshake', status: 204, contentType: 'text/plain', body: '' };
          return verified(typeof body.event?.type === 'string' ? body.event.type : null, null);
        }
        if (body?.type === 1) return { kind: 'handshake', status: 200, contentType: 'application/json', body: '{"type":1}' };
        const type = typeof body?.type === 'number' ? (INTERACTION_TYPES[body.type] ?? `INTERACTION_${body.type}`) : null;
        // An interaction needs an interaction response within 3 s: answer "deferred" once stored; the application
        // behind hookrelay follows up through the interaction token in the forwarded body.
        return verified(type, typeof body?.id === 'string' ? body.id : null, { status: 200, contentType: 'application/json', body: '{"type":5}' });
      },
    };
  },
});
