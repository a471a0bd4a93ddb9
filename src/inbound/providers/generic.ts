import { z } from 'zod';
import { anyHmacMatches, bytesEqual, decodeSignature } from '../crypto.js';
import { defineProvider, jsonBody, rejected, secretsConfig, secretsOf, staleness, verified } from '../verifier.js';

const headerName = z.string().regex(/^[A-Za-z0-9-]+$/).transform((v) => v.toLowerCase());

/** The event type, from a header or a top-level JSON field, when the source names one. */
const eventTypeConfig = {
  eventTypeHeader: headerName.optional(),
  eventTypeField: z.string().min(1).optional(),
  deliveryIdHeader: headerName.optional(),
};

function eventAndDelivery(config: { eventTypeHeader?: string; eventTypeField?: string; deliveryIdHeader?: string }, headers: Record<string, string>, body: Buffer) {
  let eventType: string | null = null;
  if (config.eventTypeHeader) eventType = headers[config.eventTypeHeader] ?? null;
  else if (config.eventTypeField) {
    const value = jsonBody(body)?.[config.eventTypeField];
    eventType = typeof value === 'string' ? value : null;
  }
  return verified(eventType, config.deliveryIdHeader ? (headers[config.deliveryIdHeader] ?? null) : null);
}

/**
 * Generic HMAC: any algorithm and encoding, the signature in a header (optionally after a prefix such as
 * `sha256=`), and optionally a timestamp header folded into the signed content by a template such as
 * `{timestamp}.{body}`.
 */
export const hmacProvider = defineProvider({
  type: 'hmac',
  config: z
    .strictObject({
      ...secretsConfig,
      algorithm: z.enum(['sha1', 'sha256', 'sha512']).default('sha256'),
      encoding: z.enum(['hex', 'base64']).default('hex'),
      header: headerName,
      prefix: z.string().max(64).default(''),
      timestampHeader: headerName.optional(),
      template: z.string().includes('{body}', { message: 'must contain {body}' }).default('{body}'),
      tolerance: z.number().int().min(1).max(7 * 86_400).default(300),
      ...eventTypeConfig,
    })
    .refine((c) => !c.template.includes('{timestamp}') || c.timestampHeader, { message: 'a template with {timestamp} needs timestampHeader', path: ['template'] }),
  keepHeaders: [],
  create(config) {
    const secrets = secretsOf(config);
    const [before, after] = config.template.split('{body}');
    return {
      verify(request, now) {
        const raw = request.headers[config.header];
        if (!raw) return rejected(`missing ${config.header} header`);
        if (!raw.startsWith(config.prefix)) return rejected(`the ${config.header} header does not start with ${JSON.stringify(config.prefix)}`);
        let timestamp = '';
        if (config.timestampHeader) {
          timestamp = request.headers[config.timestampHeader] ?? '';
          if (!/^\d+$/.test(timestamp)) return rejected(`missing or non-numeric ${config.timestampHeader} header`);
          const seconds = timestamp.length >= 13 ? Number(timestamp) / 1000 : Number(timestamp);
          const stale = staleness(seconds, now, config.tolerance);
          if (stale) return rejected(stale);
        }
        const fill = (part: string) => part.replaceAll('{timestamp}', timestamp);
        const candidates = raw
          .slice(config.prefix.length)
          .split(/[\s,]+/)
          .filter(Boolean)
          .map((sig) => decodeSignature(sig, config.encoding));
        if (!anyHmacMatches(config.algorithm, secrets, [fill(before), request.body, fill(after ?? '')], candidates)) return rejected('no signature matches');
        return eventAndDelivery(config, request.headers, request.body);
      },
    };
  },
});

/** HTTP basic auth: the provider is configured with a user name and password. */
export const basicAuthProvider = defineProvider({
  type: 'basic-auth',
  config: z.strictObject({ username: z.string().min(1).max(256), password: z.string().min(1).max(1024), ...eventTypeConfig }),
  keepHeaders: [],
  create(config) {
    const expected = Buffer.from(`${config.username}:${config.password}`);
    return {
      verify(request) {
        const header = request.headers.authorization;
        const match = header ? /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header) : null;
        if (!match) return rejected('missing Basic authorization header');
        if (!bytesEqual(Buffer.from(match[1], 'base64'), expected)) return rejected('wrong user name or password');
        return eventAndDelivery(config, request.headers, request.body);
      },
    };
  },
});

/** A static key in a header (`Authorization: Bearer <key>` by default). */
export const apiKeyProvider = defineProvider({
  type: 'api-key',
  config: z.strictObject({ ...secretsConfig, header: headerName.default('authorization'), prefix: z.string().max(64).default('Bearer '), ...eventTypeConfig }),
  keepHeaders: [],
  create(config) {
    const keys = secretsOf(config).map((k) => Buffer.from(config.prefix + k));
    return {
      verify(request) {
        const value = request.headers[config.header];
        if (!value) return rejected(`missing ${config.header} header`);
        const presented = Buffer.from(value);
        if (!keys.some((key) => bytesEqual(key, presented))) return rejected(`wrong key in ${config.header}`);
        return eventAndDelivery(config, request.headers, request.body);
      },
    };
  },
});

/** No verification. Allowed only with `insecure: true` in the config, and logged when the server starts. */
export const noneProvider = defineProvider({
  type: 'none',
  config: z.strictObject({
    insecure: z.literal(true, { message: 'must be true: a source of type none accepts anything anyone posts' }),
    ...eventTypeConfig,
  }),
  keepHeaders: [],
  create(config) {
    return {
      verify(request) {
        return eventAndDelivery(config, request.headers, request.body);
      },
    };
  },
});

export { headerName };
