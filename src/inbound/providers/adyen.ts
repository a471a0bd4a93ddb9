import { z } from 'zod';
import { anyHmacMatches, bytesEqual, decodeSignature } from '../crypto.js';
import { defineProvider, jsonBody, rejected, verified } from '../verifier.js';

/** Adyen shows the HMAC key as hex; it is used as the bytes it encodes. */
const hexKey = z.string().regex(/^(?:[0-9a-fA-F]{2}){16,128}$/, { message: 'must be the HMAC key as Adyen shows it: hex, 32 to 256 characters' });

const text = (value: unknown): string => (value === undefined || value === null ? '' : String(value));

/**
 * Adyen standard notifications: the signature is in the body, one per item:
 * `notificationItems[].NotificationRequestItem.additionalData.hmacSignature` = base64 HMAC-SHA256 of
 * `pspReference:originalReference:merchantAccountCode:merchantReference:value:currency:eventCode:success` with the
 * hex-decoded key. Every item must verify. Optional basic auth (`username`/`password`), which Adyen can send too.
 * Event type = the items' `eventCode`; delivery id = `pspReference:eventCode:success` of each item (Adyen resends
 * the same pair, possibly later with another `success`, which is news and not a duplicate).
 */
export const adyenProvider = defineProvider({
  type: 'adyen',
  config: z
    .strictObject({
      secret: hexKey,
      additionalSecrets: z.array(hexKey).max(10).optional(),
      username: z.string().min(1).max(256).optional(),
      password: z.string().min(1).max(1024).optional(),
    })
    .refine((c) => (c.username === undefined) === (c.password === undefined), { message: 'username and password go together', path: ['password'] }),
  keepHeaders: [],
  create(config) {
    const keys = [config.secret, ...(config.additionalSecrets ?? [])].map((k) => Buffer.from(k, 'hex'));
    const basic = config.username === undefined ? null : Buffer.from(`${config.username}:${config.password}`);
    return {
      verify(request) {
        if (basic) {
          const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(request.headers.authorization ?? '');
          if (!match) return rejected('missing Basic authorization header');
          if (!bytesEqual(Buffer.from(match[1], 'base64'), basic)) return rejected('wrong user name or password');
        }
        const body = jsonBody(request.body);
        const items: unknown = body?.notificationItems;
        if (!Array.isArray(items) || items.length === 0) return rejected('the body has no notificationItems (is the webhook set to JSON?)');
        const ids: string[] = [];
        const codes = new Set<string>();
        for (const [index, entry] of items.entries()) {
          const item = entry?.NotificationRequestItem;
          if (typeof item !== 'object' || item === null) return rejected(`notification item ${index} has no NotificationRequestItem`);
          const signature = item.additionalData?.hmacSignature;
          if (typeof signature !== 'string' || signature === '') return rejected(`notification item ${index} has no additionalData.hmacSignature (is HMAC enabled on the webhook?)`);
          const signed = [
            item.pspReference,
            item.originalReference,
            item.merchantAccountCode,
            item.merchantReference,
            item.amount?.value,
            item.amount?.currency,
            item.eventCode,
            item.success,
          ]
            .map(text)
            .join(':');
          if (!anyHmacMatches('sha256', keys, [signed], [decodeSignature(signature, 'base64')])) return rejected(`no signature matches in notification item ${index}`);
          codes.add(text(item.eventCode));
          ids.push(`${text(item.pspReference)}:${text(item.eventCode)}:${text(item.success)}`);
        }
        const [code] = codes;
        return verified(codes.size === 1 && code !== '' ? code : null, ids.join(','));
      },
    };
  },
});
