import { z } from 'zod';
import { anyHmacMatches, decodeSignature } from '../crypto.js';
import { defineProvider, jsonBody, rejected, secretsConfig, secretsOf, staleness, tolerance, verified } from '../verifier.js';

interface Signed {
  timestamp: string;
  token: string;
  signatures: string[];
  event: string | null;
}

/** Text fields of a multipart/form-data body (file parts skipped); null when there is no boundary. */
function multipartFields(body: Buffer, contentType: string): Map<string, string> | null {
  const match = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  if (!match) return null;
  const delimiter = `--${match[1] ?? match[2]}`;
  const fields = new Map<string, string>();
  // latin1 maps bytes 1:1, so offsets stay exact; values are decoded as UTF-8 afterwards.
  const parts = body.toString('latin1').split(delimiter).slice(1);
  for (const part of parts) {
    if (part.startsWith('--')) break;
    const headerEnd = part.indexOf('\r\n\r\n');
    if (headerEnd < 0) continue;
    const headers = part.slice(0, headerEnd);
    const name = /;\s*name="([^"]*)"/i.exec(headers)?.[1];
    if (name === undefined || /;\s*filename\*?=/i.test(headers) || fields.has(name)) continue;
    const value = part.slice(headerEnd + 4).replace(/\r\n$/, '');
    fields.set(name, Buffer.from(value, 'latin1').toString('utf8'));
  }
  return fields;
}

const asText = (value: unknown): string | null => (typeof value === 'string' ? value : typeof value === 'number' && Number.isFinite(value) ? String(value) : null);

/** The signature fields, from a JSON body (`signature` object, current webhooks) or form fields (legacy webhooks, routes). */
function signedFields(body: Buffer, contentType: string): Signed | null {
  const fromFields = (get: (name: string) => string | null | undefined): Signed | null => {
    const timestamp = get('timestamp');
    const token = get('token');
    const signature = get('signature');
    if (!timestamp || !token || !signature) return null;
    return { timestamp, token, signatures: [signature], event: get('event') ?? null };
  };
  if (/^multipart\/form-data/i.test(contentType)) {
    const fields = multipartFields(body, contentType);
    return fields ? fromFields((n) => fields.get(n)) : null;
  }
  const json = jsonBody(body);
  if (json !== null) {
    const s = json?.signature;
    if (typeof s !== 'object' || s === null) return null;
    const timestamp = asText(s.timestamp);
    const token = asText(s.token);
    const signatures = [s.signature, s['parent-signature']].filter((v): v is string => typeof v === 'string');
    if (!timestamp || !token || signatures.length === 0) return null;
    const event = json?.['event-data']?.event;
    return { timestamp, token, signatures, event: typeof event === 'string' ? event : null };
  }
  const form = new URLSearchParams(body.toString('utf8'));
  return fromFields((n) => form.get(n));
}

/**
 * Mailgun: the signature is in the body, `signature: {timestamp, token, signature}` in JSON webhooks (form fields
 * in legacy webhooks and routes): hex HMAC-SHA256 of `timestamp + token` with the HTTP webhook signing key. A
 * subaccount's `parent-signature` (the primary account's key) is accepted too.
 * The signature does not cover `event-data`: a captured signature could carry any body. The `token` is the dedupe
 * id, so a reused token is dropped as a duplicate for the dedupe window; the tolerance (default one day, the
 * default dedupe window, and longer than Mailgun's 8 h of retries) refuses it after that. Keep it ≤ the window.
 */
export const mailgunProvider = defineProvider({
  type: 'mailgun',
  config: z.strictObject({ ...secretsConfig, tolerance: tolerance(86_400) }),
  keepHeaders: [],
  create(config) {
    const secrets = secretsOf(config);
    return {
      verify(request, now) {
        const signed = signedFields(request.body, request.headers['content-type'] ?? '');
        if (!signed) return rejected('missing signature: the body has no signature.timestamp, signature.token and signature.signature (JSON) nor timestamp, token and signature fields (form)');
        if (!/^\d+$/.test(signed.timestamp)) return rejected('malformed signature timestamp: not a unix time');
        const stale = staleness(Number(signed.timestamp), now, config.tolerance);
        if (stale) return rejected(stale);
        const candidates = signed.signatures.map((s) => decodeSignature(s, 'hex'));
        if (!anyHmacMatches('sha256', secrets, [signed.timestamp, signed.token], candidates)) return rejected('no signature matches');
        return verified(signed.event, signed.token);
      },
    };
  },
});
