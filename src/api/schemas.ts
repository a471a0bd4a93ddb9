import { z } from 'zod';

/** Request and response shapes of the v1 API, wire-compatible with the svix SDK (camelCase JSON). */

const NAME = /^[a-zA-Z0-9\-_.]+$/;

export const uid = (reservedPrefix: string) =>
  z
    .string()
    .min(1)
    .max(256)
    .regex(NAME, 'may contain only letters, digits, "-", "_" and "."')
    .refine((v) => !v.startsWith(`${reservedPrefix}_`), `must not start with "${reservedPrefix}_" (reserved for ids)`);

/** The uid a PUT on a missing resource creates it under (Svix's upsert): the path's id, when that can be a uid. */
export const uidFromPath = (id: string, reservedPrefix: string): string | null => (uid(reservedPrefix).safeParse(id).success ? id : null);

export const eventTypeName = z.string().min(1).max(256).regex(NAME, 'may contain only letters, digits, "-", "_" and "."');
/** Svix's patterns: a channel may also hold ":" and "+" (`project:123`), a tag "/", "\\" and "#". */
const channel = z.string().min(1).max(128).regex(/^[a-zA-Z0-9\-_.:+]+$/, 'may contain only letters, digits, "-", "_", ".", ":" and "+"');
const tag = z.string().min(1).max(128).regex(/^[a-zA-Z0-9\-_./\\#]+$/, 'may contain only letters, digits, "-", "_", ".", "/", "\\" and "#"');
/** Printable ASCII without spaces: ids, `customer:42`, `orders/2026-12`, an e-mail address… */
export const MAX_ORDERING_KEY_LENGTH = 256;
const orderingKey = z
  .string()
  .min(1)
  .max(MAX_ORDERING_KEY_LENGTH)
  .regex(/^[\x21-\x7e]+$/, 'may contain only printable ASCII characters without spaces (! to ~)');
const jsonBytes = (value: unknown) => Buffer.byteLength(JSON.stringify(value));

/** Free-form labels: at most 100 keys of up to 256 characters, values of up to 4096, 16 KiB in all (as JSON). */
export const metadata = z
  .record(z.string().max(256), z.string().max(4096))
  .refine((m) => Object.keys(m).length <= 100, 'at most 100 keys')
  .refine((m) => jsonBytes(m) <= 16_384, 'at most 16384 bytes as JSON');
/** Metadata as a request sends it: `null` (what the Python SDK sends when none is given) means `{}`, as for Svix. */
export const metadataIn = metadata.nullable().transform((m) => m ?? {});
const rate = z.number().int().min(1).max(1_000_000).nullable();

export const ApplicationIn = z.strictObject({
  name: z.string().min(1).max(256),
  uid: uid('app').nullish(),
  metadata: metadataIn.optional(),
  throttleRate: rate.optional(),
  rateLimit: rate.optional(),
});
export const ApplicationPatch = ApplicationIn.partial();

export const EventTypeIn = z.strictObject({
  name: eventTypeName,
  description: z.string().max(8192),
  archived: z.boolean().optional(),
  deprecated: z.boolean().optional(),
  schemas: z.record(z.string(), z.unknown()).nullish(),
  featureFlag: z.string().max(256).nullish(),
  featureFlags: z.array(z.string().max(256)).max(100).nullish(),
  groupName: z.string().max(256).nullish(),
  /** hookrelay extension: API messages of this type must pass its latest schema (docs/routing.md). */
  validatePayloads: z.boolean().optional(),
});
export const EventTypeUpdate = EventTypeIn.omit({ name: true });
export const EventTypePatch = EventTypeUpdate.partial();

export const MAX_ENDPOINT_URL_LENGTH = 2048;

const url = z
  .string()
  .max(MAX_ENDPOINT_URL_LENGTH)
  .refine((value) => {
    try {
      const parsed = new URL(value);
      return (parsed.protocol === 'https:' || parsed.protocol === 'http:') && parsed.hostname !== '';
    } catch {
      return false;
    }
  }, 'must be an absolute http:// or https:// URL');

export const secret = z
  .string()
  .regex(/^(whsec_)?[A-Za-z0-9+/]{32,88}={0,2}$/, 'must be base64 of 24 to 64 bytes, optionally prefixed "whsec_"');

const headerName = /^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$/;
export const MAX_ENDPOINT_HEADERS = 50;
export const MAX_ENDPOINT_HEADER_BYTES = 16_384;

/** Why a set of custom endpoint headers is too big (receivers commonly refuse header blocks over 16 KiB), or null. */
export function headerSetProblem(h: Record<string, string>): string | null {
  const names = Object.keys(h);
  if (names.length > MAX_ENDPOINT_HEADERS) return `at most ${MAX_ENDPOINT_HEADERS} headers`;
  if (names.reduce((n, name) => n + name.length + h[name].length, 0) > MAX_ENDPOINT_HEADER_BYTES) return `at most ${MAX_ENDPOINT_HEADER_BYTES} bytes of names and values in all`;
  return null;
}

export const headers = z
  .record(z.string().regex(headerName, 'is not a valid header name').max(256), z.string().max(4096).regex(/^[\t\x20-\x7e\x80-\xff]*$/, 'may contain only printable ASCII, Latin-1, spaces and tabs (no line breaks or control characters)'))
  .superRefine((h, ctx) => {
    const problem = headerSetProblem(h);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });

const endpointFields = {
  url: url.optional(),
  description: z.string().max(8192).optional(),
  disabled: z.boolean().optional(),
  /** svix 2.x's name for `filterTypes`; either is accepted and both are returned. `[]` (what svix-react sends) means all. */
  eventTypes: z.array(eventTypeName).max(1000).nullish().transform((types) => (types?.length === 0 ? null : types)),
  filterTypes: z.array(eventTypeName).max(1000).nullish().transform((types) => (types?.length === 0 ? null : types)),
  channels: z.array(channel).min(1).max(10).nullish(),
  metadata: metadataIn.optional(),
  uid: uid('ep').nullish(),
  version: z.number().int().min(1).nullish(),
  throttleRate: rate.optional(),
  rateLimit: rate.optional(),
  /** hookrelay extension: `fifo` delivers one message at a time, in accept order; `key` does so per `orderingKey`. */
  ordering: z.enum(['parallel', 'fifo', 'key']).optional(),
  /** hookrelay extension, for `ordering: 'key'`: a parked message lets the next of its key go (`skip`) or holds them (`hold`). */
  orderingOnPark: z.enum(['skip', 'hold']).optional(),
  /** hookrelay extension: `ed25519` signs with a key pair hookrelay generates (`v1a,`); `hmac` (the default) with a shared secret (`v1,`). */
  signing: z.enum(['hmac', 'ed25519']).optional(),
  /** hookrelay extension: attempts in flight to this endpoint at once. */
  maxInFlight: z.number().int().min(1).max(10_000).optional(),
  /** hookrelay extension: deliver somewhere other than `url` over HTTP, e.g. `{ type: 'temporal', … }`. */
  destination: z.object({ type: z.string().min(1).max(64) }).catchall(z.unknown()).nullish(),
  /** hookrelay extension: a content filter on the payload and headers (docs/routing.md); checked by `compileFilter`. */
  filter: z.record(z.string(), z.unknown()).nullish(),
  /** hookrelay extension: `challenge` holds deliveries until the endpoint echoes a signed challenge (docs/api.md#registration-handshake). */
  verification: z.enum(['none', 'challenge']).optional(),
};

const urlOrDestination = (e: { url?: string; destination?: unknown }) => e.url !== undefined || (e.destination !== undefined && e.destination !== null);
const URL_REQUIRED = { message: 'url is required (or a destination)', path: ['url'] };
/** `eventTypes` and `filterTypes` are one field under two names: both may be sent only with the same value. */
const oneFilter = (e: { eventTypes?: unknown; filterTypes?: unknown }) =>
  e.eventTypes === undefined || e.filterTypes === undefined || JSON.stringify(e.eventTypes) === JSON.stringify(e.filterTypes);
const ONE_FILTER = { message: 'eventTypes and filterTypes name the same field: send one, or both with the same value', path: ['eventTypes'] };

export const EndpointIn = z
  .strictObject({ ...endpointFields, secret: secret.nullish(), headers: headers.nullish() })
  .refine(urlOrDestination, URL_REQUIRED)
  .refine(oneFilter, ONE_FILTER);
export const EndpointUpdate = z.strictObject(endpointFields).refine(urlOrDestination, URL_REQUIRED).refine(oneFilter, ONE_FILTER);
export const EndpointPatch = z.strictObject({ ...endpointFields, secret: secret.nullish() }).partial().refine(oneFilter, ONE_FILTER);

export const EndpointSecretRotateIn = z.strictObject({
  key: secret.nullish(),
  gracePeriodSeconds: z.number().int().min(0).max(7 * 86_400).nullish(),
});
export const EndpointHeadersIn = z.strictObject({ headers });
/** A public JWK; checked member by member by `registrableKey` (pipeline/encryption.ts), which says exactly what is wrong. */
export const EncryptionKeyIn = z.record(z.string(), z.unknown());
export const EndpointHeadersPatchIn = z.strictObject({ headers, deleteHeaders: z.array(z.string().max(256)).max(100).optional() });

const isoDate = z.iso.datetime({ offset: true }).transform((s) => Date.parse(s));
export const RecoverIn = z.strictObject({ since: isoDate, until: isoDate.nullish() });
export const ReplayIn = RecoverIn;
export const EventExampleIn = z.strictObject({ eventType: eventTypeName, exampleIndex: z.number().int().min(0).max(1000).optional() });
export const EndpointStatsQuery = z.object({
  since: z.iso.datetime({ offset: true }).transform((s) => Date.parse(s)).optional(),
  until: z.iso.datetime({ offset: true }).transform((s) => Date.parse(s)).optional(),
});

/** How far ahead `deliverAt` may schedule a message: Svix's documented limit. */
export const MAX_DELIVER_AHEAD_MS = 24 * 3_600_000;

export const MessageIn = z.strictObject({
  eventType: eventTypeName,
  payload: z.record(z.string(), z.unknown()),
  eventId: z.string().min(1).max(256).regex(NAME, 'may contain only letters, digits, "-", "_" and "."').nullish(),
  channels: z.array(channel).min(1).max(10).nullish(),
  tags: z.array(tag).min(1).max(5).nullish(),
  /** hookrelay extension: messages of one key reach `ordering: 'key'` endpoints one at a time, in accept order. */
  orderingKey: orderingKey.nullish(),
  payloadRetentionPeriod: z.number().int().min(1).max(90).nullish(),
  payloadRetentionHours: z.number().int().min(1).max(2160).nullish(),
  /** Creates the application of the path along with the message when it does not exist (its uid must be the path's). */
  application: ApplicationIn.nullish(),
  /** When the first attempt is due: not before now, at most 24 hours ahead. */
  deliverAt: isoDate.nullish(),
  /** `rawPayload`: a string delivered as the body byte for byte in place of `payload`; `headers['content-type']` its type. */
  transformationsParams: z
    .looseObject({
      rawPayload: z.string().nullish(),
      headers: z.record(z.string(), z.string()).nullish(),
    })
    .nullish(),
});

// ---- query strings ----------------------------------------------------------------------------

const bool = z.enum(['true', 'false']).transform((v) => v === 'true');
const csv = z
  .string()
  .transform((v) => v.split(',').filter(Boolean))
  .pipe(z.array(z.string().max(256)).max(100, 'at most 100 values'));
const queryDate = z.iso.datetime({ offset: true }).transform((s) => Date.parse(s));

export const PageQuery = z.object({
  limit: z
    .string()
    .regex(/^\d+$/, 'must be a whole number')
    .transform(Number)
    .pipe(z.number().int().min(1).max(250))
    .default(50),
  iterator: z.string().max(512).optional(),
  order: z.enum(['ascending', 'descending']).optional(),
});

export const EventTypeListQuery = PageQuery.extend({ include_archived: bool.optional(), with_content: bool.optional() });

export const MessageListQuery = PageQuery.extend({
  channel: z.string().max(256).optional(),
  tag: z.string().max(256).optional(),
  before: queryDate.optional(),
  after: queryDate.optional(),
  with_content: bool.optional(),
  event_types: csv.optional(),
});

export const AttemptListQuery = MessageListQuery.extend({
  status: z.enum(['0', '1', '2', '3', '4']).transform(Number).optional(),
  status_code_class: z.enum(['0', '100', '200', '300', '400', '500']).transform(Number).optional(),
  with_msg: bool.optional(),
  expanded_statuses: bool.optional(),
  endpoint_id: z.string().max(256).optional(),
});

export const WithContentQuery = z.object({ with_content: bool.optional() });
export const CreateAppQuery = z.object({ get_if_exists: bool.optional() });
export const DeleteEventTypeQuery = z.object({ expunge: bool.optional() });

// ---- responses (documented in the OpenAPI document) -----------------------------------------

const date = z.string().describe('RFC 3339 date-time, UTC');
export const ApplicationOut = z.object({
  id: z.string(),
  uid: z.string().nullable(),
  name: z.string(),
  metadata,
  throttleRate: z.number().nullable(),
  rateLimit: z.number().nullable(),
  createdAt: date,
  updatedAt: date,
});
export const EventTypeOut = z.object({
  name: z.string(),
  description: z.string(),
  archived: z.boolean(),
  deprecated: z.boolean(),
  schemas: z.record(z.string(), z.unknown()).nullable(),
  featureFlag: z.string().nullable(),
  featureFlags: z.array(z.string()).nullable(),
  groupName: z.string().nullable(),
  validatePayloads: z.boolean().describe('hookrelay extension: API messages of this type must pass its latest schema'),
  createdAt: date,
  updatedAt: date,
});
export const EndpointOut = z.object({
  id: z.string(),
  uid: z.string().nullable(),
  url: z.string(),
  description: z.string(),
  version: z.number(),
  eventTypes: z.array(z.string()).nullable(),
  filterTypes: z.array(z.string()).nullable().describe('The same as eventTypes (its name in svix 1.x)'),
  channels: z.array(z.string()).nullable(),
  disabled: z.boolean(),
  disabledReason: z.string().nullable(),
  throttleRate: z.number().nullable(),
  rateLimit: z.number().nullable(),
  ordering: z.enum(['parallel', 'fifo', 'key']),
  orderingOnPark: z.enum(['skip', 'hold']).describe('hookrelay extension: on a key-ordered endpoint, whether a parked message lets the next one of its key go or holds them until it is resent or recovered'),
  maxInFlight: z.number(),
  signing: z.enum(['hmac', 'ed25519']).describe('hookrelay extension: hmac signs v1, with the shared secret; ed25519 signs v1a, with a key pair'),
  publicKey: z.string().nullable().describe('hookrelay extension: the whpk_ key that verifies an ed25519 endpoint\'s current signatures; null for hmac'),
  destination: z.record(z.string(), z.unknown()).nullable().describe('Settings of a non-HTTP destination, secrets left out'),
  filter: z.record(z.string(), z.unknown()).nullable().describe('hookrelay extension: content filter on the payload and headers (docs/routing.md)'),
  circuit: z
    .object({
      state: z.enum(['closed', 'open', 'half-open']),
      openUntil: date.nullable(),
      consecutiveFailures: z.number(),
      failingSince: date.nullable(),
      parkedMessages: z.number(),
    })
    .describe('hookrelay extension: circuit breaker state and the counts auto-disable looks at'),
  verification: z
    .object({
      mode: z.enum(['none', 'challenge']),
      state: z.enum(['notRequired', 'pendingVerification', 'verified', 'verificationFailed']),
      attempts: z.number(),
      lastAttemptAt: date.nullable(),
      nextAttemptAt: date.nullable(),
      reason: z.string().nullable(),
    })
    .describe('hookrelay extension: the registration handshake; messages are held unless state is verified or notRequired'),
  metadata,
  createdAt: date,
  updatedAt: date,
});
export const EndpointSecretOut = z.object({ key: z.string() });
export const EncryptionKeyOut = z.object({
  kid: z.string(),
  alg: z.enum(['RSA-OAEP-256', 'ECDH-ES+A256KW']).describe('JWE key management algorithm used with this key'),
  enc: z.literal('A256GCM'),
  jwk: z.record(z.string(), z.string()).describe('the public JWK as stored (public members only)'),
  current: z.boolean().describe('whether deliveries are encrypted to this key now (the newest one)'),
  createdAt: date,
});
export const EndpointHeadersOut = z.object({ headers: z.record(z.string(), z.string()), sensitive: z.array(z.string()) });
export const MessageOut = z.object({
  id: z.string(),
  eventType: z.string(),
  eventId: z.string().nullable(),
  payload: z.unknown(),
  channels: z.array(z.string()).nullable(),
  tags: z.array(z.string()).nullable(),
  orderingKey: z.string().nullable().describe('hookrelay extension: the ordering key the message was created with'),
  timestamp: date,
});
export const MessageAttemptOut = z.object({
  id: z.string(),
  msgId: z.string(),
  endpointId: z.string(),
  url: z.string(),
  response: z.string(),
  responseStatusCode: z.number(),
  responseDurationMs: z.number(),
  status: z.number().describe('0 success, 1 pending, 2 fail, 3 sending'),
  statusText: z.string(),
  triggerType: z.number().describe('0 scheduled, 1 manual'),
  timestamp: date,
  request: z
    .object({ method: z.string(), headers: z.array(z.tuple([z.string(), z.string()])) })
    .nullable()
    .describe('hookrelay extension: the method and headers this attempt sent, in order (without host, connection, content-length); null when not an HTTP attempt or nothing was sent'),
  msg: MessageOut.nullable().optional(),
});
export const EndpointMessageOut = MessageOut.extend({ status: z.number(), statusText: z.string(), nextAttempt: date.nullable() });
export const MessageEndpointOut = EndpointOut.omit({ metadata: true }).extend({ status: z.number(), statusText: z.string(), nextAttempt: date.nullable() });
export const EndpointStatsOut = z.object({ success: z.number(), pending: z.number(), sending: z.number(), fail: z.number(), canceled: z.number() });
export const ReplayOut = z.object({ id: z.string(), status: z.string(), task: z.string(), updatedAt: date, replayed: z.number().describe('hookrelay extension: deliveries created') });
export const RecoverOut = z.object({ id: z.string(), status: z.string(), task: z.string(), updatedAt: date, recovered: z.number() });
export const ErrorOut = z.object({ code: z.string(), detail: z.string() });
export const ValidationErrorOut = z.object({ detail: z.array(z.object({ loc: z.array(z.union([z.string(), z.number()])), msg: z.string(), type: z.string() })) });

export const listOf = <T extends z.ZodType>(item: T) =>
  z.object({ data: z.array(item), iterator: z.string().nullable(), prevIterator: z.string().nullable(), done: z.boolean() });
