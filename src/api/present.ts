import { circuitState } from '../domain/health.js';
import { isJsonContentType, nestsWithinLimit } from '../domain/json-text.js';
import type { Attempt, DeliveryStatus, Endpoint, EventType, Message, App } from '../domain/types.js';
import { DESTINATION_KINDS } from '../pipeline/destinations/index.js';
import { redactDestination } from '../pipeline/destinations/kinds.js';
import type { DeliveryView, Page } from '../store/store.js';
import { publicKeyOf, schemeOf, type SigningScheme } from '../signing/standard-webhooks.js';
import { RawJson } from './raw-json.js';

/** Domain objects → the JSON shapes of the v1 API. */

const iso = (ms: number) => new Date(ms).toISOString();

/** The current signing secret: the one without an expiry (older ones sign only until theirs). */
export const currentSecret = (e: Endpoint): string => e.secrets.find((s) => s.expiresAt === null)!.key;

/** How an endpoint signs, and for a key pair the public half that verifies it; the private key is never shown. */
function signingOf(e: Endpoint): { signing: SigningScheme; publicKey: string | null } {
  const secret = currentSecret(e);
  const signing = schemeOf(secret);
  return { signing, publicKey: signing === 'ed25519' ? publicKeyOf(secret) : null };
}

export const MESSAGE_STATUS = { success: 0, pending: 1, fail: 2, sending: 3 } as const;

export function deliveryStatus(status: DeliveryStatus): { status: number; statusText: string } {
  switch (status) {
    case 'succeeded':
      return { status: 0, statusText: 'success' };
    case 'pending':
      return { status: 1, statusText: 'pending' };
    case 'failed':
      return { status: 2, statusText: 'fail' };
    case 'in_flight':
      return { status: 3, statusText: 'sending' };
  }
}

export const presentApp = (a: App) => ({
  id: a.id,
  uid: a.uid,
  name: a.name,
  metadata: a.metadata,
  throttleRate: a.rateLimit,
  rateLimit: a.rateLimit,
  createdAt: iso(a.createdAt),
  updatedAt: iso(a.updatedAt),
});

export const presentEventType = (e: EventType, withContent = true) => ({
  name: e.name,
  description: e.description,
  archived: e.archived,
  deprecated: e.deprecated,
  schemas: withContent ? e.schemas : null,
  featureFlag: e.featureFlag,
  featureFlags: e.featureFlag === null ? null : [e.featureFlag],
  groupName: e.groupName,
  validatePayloads: e.validatePayloads,
  createdAt: iso(e.createdAt),
  updatedAt: iso(e.updatedAt),
});

/** hookrelay extension: the endpoint's circuit breaker and the counts auto-disable looks at. */
export const presentCircuit = (e: Endpoint, now = Date.now()) => ({
  state: circuitState(e.health, now),
  openUntil: e.health.openUntil === null ? null : iso(e.health.openUntil),
  consecutiveFailures: e.health.consecutiveFailures,
  failingSince: e.health.failingSince === null ? null : iso(e.health.failingSince),
  parkedMessages: e.health.parked,
});

const VERIFICATION_STATES = { pending: 'pendingVerification', verified: 'verified', failed: 'verificationFailed' } as const;

/** hookrelay extension: the endpoint's registration handshake (docs/api.md#registration-handshake). */
export const presentVerification = ({ verification: v }: Endpoint) => ({
  mode: v.mode,
  state: v.mode === 'none' ? ('notRequired' as const) : VERIFICATION_STATES[v.state],
  attempts: v.attempts,
  lastAttemptAt: v.lastAttemptAt === null ? null : iso(v.lastAttemptAt),
  nextAttemptAt: v.nextAttemptAt === null ? null : iso(v.nextAttemptAt),
  reason: v.reason,
});

export const presentEndpoint = (e: Endpoint) => ({
  id: e.id,
  uid: e.uid,
  url: e.url,
  description: e.description,
  version: e.version,
  eventTypes: e.filterTypes,
  filterTypes: e.filterTypes,
  channels: e.channels,
  disabled: e.disabled,
  disabledReason: e.disabledReason,
  throttleRate: e.rateLimit,
  rateLimit: e.rateLimit,
  ordering: e.ordering,
  orderingOnPark: e.orderingOnPark,
  maxInFlight: e.maxInFlight,
  ...signingOf(e),
  destination: e.destination ? redactDestination(DESTINATION_KINDS, e.destination) : null,
  filter: e.filter,
  circuit: presentCircuit(e),
  verification: presentVerification(e),
  metadata: e.metadata,
  createdAt: iso(e.createdAt),
  updatedAt: iso(e.updatedAt),
});

const EXPUNGED = new RawJson('{}');

/**
 * The payload as the JSON text stored, written into the answer as it is (no digit of a big integer lost), when it is
 * JSON; otherwise its text, as a string. Expunged content reads as `{}`. JSON nested deeper than the API accepts (only
 * an inbound request can store it) is shown as a string too, since many clients parse JSON recursively.
 * `knownJson`: the caller has just validated the bytes as a JSON object (message create), so they are not parsed again.
 */
function payloadOf(m: Message, knownJson: boolean): unknown {
  if (m.payload === null) return EXPUNGED;
  const text = Buffer.from(m.payload.buffer, m.payload.byteOffset, m.payload.byteLength).toString('utf8');
  if (knownJson) return new RawJson(text);
  if (!isJsonContentType(m.contentType) || !nestsWithinLimit(text)) return text;
  try {
    JSON.parse(text);
    return new RawJson(text);
  } catch {
    return text;
  }
}

export const presentMessage = (m: Message, withContent = true, knownJson = false) => ({
  id: m.id,
  eventType: m.eventType,
  eventId: m.eventId,
  payload: withContent ? payloadOf(m, knownJson) : {},
  channels: m.channels,
  tags: m.tags,
  orderingKey: m.orderingKey ?? null,
  timestamp: iso(m.createdAt),
});

export const presentAttempt = (a: Attempt, msg?: Message | null) => ({
  id: a.id,
  msgId: a.messageId,
  endpointId: a.endpointId,
  url: a.url,
  response: a.error !== null && a.responseBody === '' ? a.error : a.responseBody,
  responseStatusCode: a.statusCode,
  responseDurationMs: a.durationMs,
  status: a.succeeded ? MESSAGE_STATUS.success : MESSAGE_STATUS.fail,
  statusText: a.succeeded ? 'success' : 'fail',
  triggerType: a.trigger === 'manual' ? 1 : 0,
  timestamp: iso(a.startedAt),
  error: a.error,
  // hookrelay extension: the method and headers this attempt sent (HTTP endpoints; null otherwise).
  request: a.request,
  ...(msg === undefined ? {} : { msg: msg === null ? null : presentMessage(msg, false) }),
});

const nextAttempt = (v: DeliveryView) =>
  v.delivery.status === 'pending' && v.delivery.nextAttemptAt !== null ? iso(v.delivery.nextAttemptAt) : null;

export const presentEndpointMessage = (v: DeliveryView, withContent: boolean) => ({
  ...presentMessage(v.message, withContent),
  ...deliveryStatus(v.delivery.status),
  nextAttempt: nextAttempt(v),
});

export const presentMessageEndpoint = (v: DeliveryView) => {
  const { metadata: _omitted, ...endpoint } = presentEndpoint(v.endpoint);
  return { ...endpoint, ...deliveryStatus(v.delivery.status), nextAttempt: nextAttempt(v) };
};

export const presentPage = <T, O>(page: Page<T>, map: (item: T) => O) => ({
  data: page.data.map(map),
  iterator: page.iterator,
  prevIterator: page.prevIterator,
  done: page.done,
});
