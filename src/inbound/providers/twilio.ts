import { createHash } from 'node:crypto';
import { parse as parseQuery, stringify as stringifyQuery } from 'node:querystring';
import { z } from 'zod';
import { anyHmacMatches, bytesEqual, decodeSignature } from '../crypto.js';
import { defineProvider, rejected, secretsConfig, secretsOf, verified } from '../verifier.js';

/** `scheme://`, authority and the rest of a URL, split without normalising it (Twilio signs the URL as it called it). */
function splitUrl(url: string): { scheme: string; userInfo: string; host: string; port: string; rest: string } | null {
  const match = /^([a-z][a-z0-9+.-]*:\/\/)([^/?#]*)/i.exec(url);
  if (!match) return null;
  const authority = match[2];
  const at = authority.lastIndexOf('@');
  const hostPort = authority.slice(at + 1);
  const colon = hostPort.indexOf(':', hostPort.lastIndexOf(']') + 1);
  return {
    scheme: match[1],
    userInfo: authority.slice(0, at + 1),
    host: colon === -1 ? hostPort : hostPort.slice(0, colon),
    port: colon === -1 ? '' : hostPort.slice(colon),
    rest: url.slice(match[0].length),
  };
}

const withoutPort = (url: string) => {
  const p = splitUrl(url);
  return p ? p.scheme + p.userInfo + p.host + p.rest : url;
};

const withDefaultPort = (url: string) => {
  const p = splitUrl(url);
  if (!p || p.port) return url;
  return p.scheme + p.userInfo + p.host + (p.scheme.toLowerCase() === 'https://' ? ':443' : ':80') + p.rest;
};

/** The query re-encoded the way node's legacy querystring does, for URLs Twilio signed in that escaped form. */
function legacyQuery(url: string): string {
  const at = url.indexOf('?');
  if (at === -1 || at === url.length - 1) return url;
  return url.slice(0, at + 1) + stringifyQuery(parseQuery(url.slice(at + 1)));
}

/**
 * The URLs Twilio may have signed, in the order twilio-node's `validateRequest` tries them: as received with and
 * without the default port (Twilio is inconsistent about `:443`), then normalised by the WHATWG parser, with and
 * without the legacy query encoding.
 */
function candidateUrls(url: string): string[] {
  const out = [withoutPort(url), withDefaultPort(url)];
  let normalised: string | null = null;
  try {
    normalised = new URL(url).toString();
  } catch {
    /* not a parseable URL: only the received form */
  }
  if (normalised) {
    const a = withoutPort(normalised);
    const b = withDefaultPort(normalised);
    out.push(a, b, legacyQuery(a), legacyQuery(b));
  }
  return [...new Set(out)];
}

/** Σ sorted `key + value` of the POST parameters; a repeated key contributes each distinct value, sorted. */
function paramsString(body: Buffer): string {
  const params = new Map<string, string[]>();
  for (const [key, value] of new URLSearchParams(body.toString('utf8'))) params.set(key, [...(params.get(key) ?? []), value]);
  return [...params.keys()]
    .sort()
    .map((key) => {
      const values = params.get(key)!;
      return values.length === 1 ? key + values[0] : [...new Set(values)].sort().map((v) => key + v).join('');
    })
    .join('');
}

/**
 * Twilio: `X-Twilio-Signature`, base64 HMAC-SHA1 keyed with the account auth token over the full URL Twilio called
 * followed by the sorted POST parameters. JSON (and other non-form) bodies are covered instead by a `bodySHA256`
 * query parameter: the URL alone is signed and the body must hash to it. The URL is the source's `publicUrl` when
 * hookrelay sits behind a proxy. No timestamp: replays are caught by dedupe on `I-Twilio-Idempotency-Token`.
 */
export const twilioProvider = defineProvider({
  type: 'twilio',
  config: z.strictObject({ ...secretsConfig }),
  keepHeaders: ['i-twilio-idempotency-token'],
  create(config) {
    const secrets = secretsOf(config);
    return {
      verify(request) {
        const h = request.headers;
        const header = h['x-twilio-signature'];
        if (!header) return rejected('missing X-Twilio-Signature header');
        const decoded = decodeSignature(header, 'base64');
        if (!decoded) return rejected('the X-Twilio-Signature header is not base64');

        let bodyHash: string | null = null;
        try {
          bodyHash = new URL(request.url).searchParams.get('bodySHA256');
        } catch {
          return rejected('the request URL cannot be parsed');
        }
        let params = '';
        if (bodyHash === null && request.body.length > 0) {
          if (!(h['content-type'] ?? '').toLowerCase().startsWith('application/x-www-form-urlencoded')) {
            return rejected('a body that is not form-encoded must be covered by a bodySHA256 query parameter, and the URL has none');
          }
          params = paramsString(request.body);
        }
        const signed = candidateUrls(request.url).some((url) => anyHmacMatches('sha1', secrets, [url, params], [decoded]));
        if (!signed) return rejected("no signature matches (over the request's URL: set the source's publicUrl when Twilio calls hookrelay through a proxy)");
        if (bodyHash !== null) {
          const expected = createHash('sha256').update(request.body).digest();
          const given = decodeSignature(bodyHash, 'hex');
          if (!given || !bytesEqual(expected, given)) return rejected('the body does not match the bodySHA256 query parameter');
        }
        return verified(null, h['i-twilio-idempotency-token'] ?? null);
      },
    };
  },
});
