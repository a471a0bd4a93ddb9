import {
  Client,
  Connection,
  defaultGrpcRetryOptions,
  isGrpcServiceError,
  makeGrpcRetryInterceptor,
  WorkflowExecutionAlreadyStartedError,
  WorkflowIdConflictPolicy,
  WorkflowIdReusePolicy,
  type TLSConfig,
} from '@temporalio/client';
import { defaultFailureConverter, defaultPayloadConverter, type DataConverter, type LoadedDataConverter, type PayloadConverter } from '@temporalio/common';
import { isIP } from 'node:net';
import { z } from 'zod';
import { isJsonContentType, nestsWithinLimit } from '../../domain/json-text.js';
import type { ClaimedDelivery, Endpoint, Message } from '../../domain/types.js';
import { canonicalHost, EgressPolicy, EgressRefusedError } from '../../egress/policy.js';
import { deliveryHeaders } from './broker.js';
import type { Destination, SendResult } from './destination.js';
import { defineDestinationKind, pem } from './kinds.js';
import { AesGcmPayloadCodec, CodecError, parseHexKey } from './temporal-codec.js';

const PLACEHOLDERS = ['messageId', 'eventType', 'eventId'] as const;
/** `{header.x-shopify-webhook-id}`: a header the source kept from the provider's request (names are case-insensitive). */
const HEADER_PLACEHOLDER = /^header\.([A-Za-z0-9!#$%&'*+.^_`|~-]+)$/;
const PLACEHOLDER_HELP = `use ${PLACEHOLDERS.map((p) => `{${p}}`).join(', ')} or {header.NAME}`;

/** A name with `{messageId}`, `{eventType}`, `{eventId}`, `{header.NAME}` placeholders, checked when the endpoint is saved. */
const template = (what: string) =>
  z
    .string()
    .min(1)
    .max(1000)
    .superRefine((value, ctx) => {
      for (const [, name] of value.matchAll(/\{([^{}]*)\}/g)) {
        if (!(PLACEHOLDERS as readonly string[]).includes(name) && !HEADER_PLACEHOLDER.test(name)) {
          ctx.addIssue({ code: 'custom', message: `${what}: unknown placeholder {${name}} (${PLACEHOLDER_HELP})` });
        }
      }
    });

const hexKey = z.string().regex(/^[0-9a-fA-F]{64}$/, { message: 'must be 64 hex characters (a 256-bit key)' });
const keyId = z.string().min(1).max(256);

const config = z.strictObject({
  /** host:port of the Temporal frontend (Temporal Cloud: `<namespace>.<account>.tmprl.cloud:7233`). */
  address: z.string().regex(/^(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, { message: 'must be host:port' }),
  namespace: z.string().min(1).max(255).default('default'),
  workflowType: z.string().min(1).max(1000),
  taskQueue: template('taskQueue'),
  workflowId: template('workflowId').default('{messageId}'),
  /** `object`: one argument `{headers, data}`; `json-string`: that object as a JSON string (workers typed `str`). */
  argument: z.enum(['object', 'json-string']).default('object'),
  tls: z
    .union([
      z.boolean(),
      z
        .strictObject({
          serverName: z.string().min(1).max(255).optional(),
          serverRootCaCert: pem('serverRootCaCert').optional(),
          clientCert: pem('clientCert').optional(),
          clientKey: pem('clientKey').optional(),
        })
        .refine((t) => (t.clientCert === undefined) === (t.clientKey === undefined), { message: 'clientCert and clientKey go together (mTLS)', path: ['clientKey'] }),
    ])
    .optional(),
  /** Temporal Cloud API key, sent as `Authorization: Bearer …`; implies TLS unless `tls: false`. */
  apiKey: z.string().min(1).max(4096).optional(),
  encryption: z
    .strictObject({
      keyId,
      key: hexKey,
      /** Older keys by id, so payloads written under them still decode after a rotation. */
      previousKeys: z.record(keyId, hexKey).optional(),
    })
    .optional(),
  /** Bound on one start call, connection included. */
  timeoutMs: z.number().int().min(100).max(60_000).default(10_000),
});

export type TemporalConfig = z.output<typeof config>;

const READINESS_DEADLINE_MS = 2_000;
const IDLE_CONNECTION_MS = 10 * 60_000;

/** Names of gRPC status codes, for attempt errors a person can read. */
const GRPC_STATUS = ['OK', 'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND', 'ALREADY_EXISTS', 'PERMISSION_DENIED', 'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE', 'UNIMPLEMENTED', 'INTERNAL', 'UNAVAILABLE', 'DATA_LOSS', 'UNAUTHENTICATED'];
const UNAVAILABLE = 14;

export const temporalDestinationKind = defineDestinationKind({
  type: 'temporal',
  config,
  secretFields: ['apiKey', 'encryption', 'tls.clientKey'],
  describe: (c) => `temporal://${c.address}/${c.namespace}/${c.workflowType}`,
  hosts: (c) => [{ field: 'address', host: hostOf(c.address) }],
  open: ({ egress }) => new TemporalDestination(egress),
});

/** What a worker receives as the workflow's one argument (the temporal-webhook-forwarder's shape). */
export interface WebhookArgument {
  headers: Record<string, string>;
  /** The payload: its JSON when it is JSON, otherwise its bytes in base64. */
  data: unknown;
}

/**
 * The workflow's argument as JSON text, built around the stored payload bytes: `data` is the payload's own JSON text,
 * never parsed and re-written through JS numbers, so a worker reads `820982911946154508` and `1.0` as they were sent.
 * A payload that is not JSON (or JSON nested deeper than the API accepts, which many workers parse recursively) goes
 * as a base64 string of its exact bytes.
 */
export function webhookArgumentJson(message: Message, endpoint: Endpoint): string {
  return `{"headers":${JSON.stringify(deliveryHeaders(message, endpoint))},"data":${dataJson(message)}}`;
}

function dataJson(message: Message): string {
  const payload = message.payload === null ? Buffer.from('{}') : Buffer.from(message.payload.buffer, message.payload.byteOffset, message.payload.byteLength);
  const text = payload.toString('utf8');
  if (isJsonContentType(message.contentType) && nestsWithinLimit(text)) {
    try {
      JSON.parse(text);
      return text;
    } catch {
      // Labelled JSON but not JSON: hand the worker the exact bytes rather than nothing.
    }
  }
  return JSON.stringify(payload.toString('base64'));
}

/** JSON text that becomes a `json/plain` payload as it is (the default converter would stringify a JS value). */
class JsonText {
  constructor(readonly text: string) {}
}

const JSON_PLAIN = new TextEncoder().encode('json/plain');
const payloadConverter: PayloadConverter = {
  toPayload: (value, ...rest) => (value instanceof JsonText ? { metadata: { encoding: JSON_PLAIN }, data: Buffer.from(value.text) } : defaultPayloadConverter.toPayload(value, ...rest)),
  fromPayload: (payload, ...rest) => defaultPayloadConverter.fromPayload(payload, ...rest),
};

/**
 * Fills a template's placeholders from the message. `{eventId}` is the provider's delivery id for a source message,
 * the client's `eventId` otherwise, and the message id when there is neither, so an id template never collapses
 * distinct messages onto one workflow. A `{header.NAME}` the message does not carry makes the template unusable for it
 * (an empty value would collapse messages): the result names the header instead.
 */
export function renderTemplate(value: string, message: Message): string | { missingHeader: string } {
  let missingHeader: string | null = null;
  const text = value.replace(/\{([^{}]*)\}/g, (whole, name: string) => {
    if (name === 'messageId') return message.id;
    if (name === 'eventType') return message.eventType;
    if (name === 'eventId') return message.eventId ?? message.id;
    const header = HEADER_PLACEHOLDER.exec(name)?.[1].toLowerCase();
    if (header === undefined) return whole;
    const found = message.headers?.[header];
    if (found === undefined || found === '') missingHeader ??= header;
    return found ?? '';
  });
  return missingHeader === null ? text : { missingHeader };
}

const missingHeader = (field: string, header: string) => `${field}: the message has no header ${header} (a source keeps the provider headers listed in its keepHeaders)`;

interface Pool {
  connection: Connection;
  clients: Map<string, Client>;
  lastUsed: number;
}

/** Starts one workflow per delivery; connections are shared by every endpoint with the same address and credentials. */
export class TemporalDestination implements Destination {
  private readonly pools = new Map<string, Pool>();
  private closed = false;

  constructor(private readonly egress: EgressPolicy = new EgressPolicy()) {}

  async send({ message, endpoint }: ClaimedDelivery, signal: AbortSignal): Promise<SendResult> {
    const parsed = config.safeParse(settingsOf(endpoint));
    if (!parsed.success) return fatal(`invalid temporal destination: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    const c = parsed.data;
    const text = webhookArgumentJson(message, endpoint);
    const argument = c.argument === 'json-string' ? text : new JsonText(text);
    const workflowId = renderTemplate(c.workflowId, message);
    const taskQueue = renderTemplate(c.taskQueue, message);
    // Waiting does not add a header to a stored message: parked, and resent once the template is fixed.
    if (typeof workflowId !== 'string') return fatal(missingHeader('workflowId', workflowId.missingHeader));
    if (typeof taskQueue !== 'string') return fatal(missingHeader('taskQueue', taskQueue.missingHeader));
    if (signal.aborted) return retry('aborted by shutdown');

    const where = `temporal ${c.address} namespace ${c.namespace}`;
    let client: Client;
    let poolKey: string;
    try {
      ({ client, poolKey } = await this.clientFor(c));
    } catch (error) {
      // A refusal waits for the operator (allow-list), not for time: parked, like an HTTP refusal.
      if (error instanceof EgressRefusedError) return fatal(error.message);
      if (error instanceof LookupError) return retry(`${where}: ${error.message}`);
      return fatal(`cannot use this temporal destination: ${(error as Error).message}`);
    }
    const connection = client.connection as Connection;
    // One controller per start: aborted by the timeout or by shutdown; the gRPC deadline bounds the call as well.
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, c.timeoutMs);
    const cancel = () => controller.abort();
    signal.addEventListener('abort', cancel, { once: true });
    try {
      const started = connection.withAbortSignal(controller.signal, () =>
        connection.withDeadline(Date.now() + c.timeoutMs, () =>
          client.workflow.start(c.workflowType, {
            workflowId,
            taskQueue,
            args: [argument],
            // A webhook starts its workflow once: a second start of the same id, running or closed, is refused.
            workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
            workflowIdConflictPolicy: WorkflowIdConflictPolicy.FAIL,
          }),
        ),
      );
      // The retry interceptor sleeps between tries outside gRPC's deadline; the timer bounds the whole start.
      const handle = await Promise.race([started, aborted(controller.signal)]);
      return { kind: 'success', statusCode: 200, responseBody: JSON.stringify({ workflowId, runId: handle.firstExecutionRunId }) };
    } catch (error) {
      if (error instanceof WorkflowExecutionAlreadyStartedError) {
        return { kind: 'success', statusCode: 200, responseBody: JSON.stringify({ workflowId, runId: null, alreadyStarted: true }) };
      }
      if (timedOut) return retry(`${where}: start timed out after ${c.timeoutMs} ms`);
      if (signal.aborted) return retry('aborted by shutdown');
      if (error instanceof CodecError || (error as Error)?.name === 'PayloadConverterError') return fatal(`the webhook cannot be encoded for Temporal: ${(error as Error).message}`);
      // A channel that lost its server may back off for minutes; the next attempt dials again.
      if (grpcCode(error) === UNAVAILABLE) this.evict(poolKey);
      // Everything else may heal (server back, namespace created, credentials fixed): retried on the endpoint's schedule.
      return retry(`${where}: ${describeError(error)}`);
    } finally {
      clearTimeout(timer);
      signal.removeEventListener('abort', cancel);
    }
  }

  async readiness(endpoints: Endpoint[]): Promise<Record<string, string>> {
    const checks = new Map<string, Promise<string>>();
    for (const endpoint of endpoints) {
      const parsed = config.safeParse(settingsOf(endpoint));
      if (!parsed.success) {
        checks.set(endpoint.url, Promise.resolve(`invalid configuration: ${parsed.error.issues[0].message}`));
        continue;
      }
      const c = parsed.data;
      const target = `temporal://${c.address}/${c.namespace}`;
      const check = this.check(c);
      const previous = checks.get(target);
      // Endpoints that share a target but not credentials: the target is ok only if every one of them is.
      checks.set(target, previous ? Promise.all([previous, check]).then(([a, b]) => (a === 'ok' ? b : a)) : check);
    }
    const out: Record<string, string> = {};
    for (const [target, check] of checks) out[target] = await check;
    return out;
  }

  private async check(c: TemporalConfig): Promise<string> {
    try {
      const { client, poolKey } = await this.clientFor(c);
      const connection = client.connection as Connection;
      try {
        const deadline = Date.now() + READINESS_DEADLINE_MS;
        await Promise.race([
          connection.withDeadline(deadline, () => connection.workflowService.describeNamespace({ namespace: c.namespace })),
          new Promise((_, reject) => setTimeout(() => reject(new Error(`no answer within ${READINESS_DEADLINE_MS} ms`)), READINESS_DEADLINE_MS + 250).unref()),
        ]);
        return 'ok';
      } catch (error) {
        if (grpcCode(error) === UNAVAILABLE) this.evict(poolKey);
        throw error;
      }
    } catch (error) {
      return describeError(error);
    }
  }

  private async clientFor(c: TemporalConfig): Promise<{ client: Client; poolKey: string }> {
    if (this.closed) throw new Error('the temporal destination is closed');
    const poolKey = JSON.stringify([c.address, c.tls ?? null, c.apiKey ?? null]);
    const pool = this.pools.get(poolKey) ?? (await this.open(poolKey, c));
    pool.lastUsed = Date.now();
    const clientKey = JSON.stringify([c.namespace, c.encryption ?? null]);
    let client = pool.clients.get(clientKey);
    if (!client) {
      const codec = c.encryption ? codecOf(c.encryption) : null;
      const dataConverter: LoadedDataConverter = { payloadConverter, failureConverter: defaultFailureConverter, payloadCodecs: codec ? [codec] : [] };
      client = new Client({ connection: pool.connection, namespace: c.namespace, dataConverter: dataConverter as DataConverter });
      pool.clients.set(clientKey, client);
    }
    return { client, poolKey };
  }

  /** A connection to the address checked by the egress policy; grpc-js then dials only that address, reconnects included. */
  private async open(poolKey: string, c: TemporalConfig): Promise<Pool> {
    const target = await this.dialTarget(c.address);
    if (this.closed) throw new Error('the temporal destination is closed');
    const opened = this.pools.get(poolKey); // by another start while this one resolved
    if (opened) return opened;
    this.closeIdle();
    const connection = Connection.lazy({
      address: target.address,
      channelArgs: target.channelArgs,
      tls: tlsOf(c),
      apiKey: c.apiKey,
      // Few quick tries for a blip; hookrelay's own schedule retries anything longer.
      interceptors: [makeGrpcRetryInterceptor(defaultGrpcRetryOptions({ maxAttempts: 3, initialIntervalMs: () => 100 }))],
    });
    const pool: Pool = { connection, clients: new Map(), lastUsed: Date.now() };
    this.pools.set(poolKey, pool);
    return pool;
  }

  /**
   * `host:port` resolved now and pinned to one allowed address (IPv4 first, as dev servers listen on 127.0.0.1 while
   * `localhost` often resolves to ::1 first); the name stays the gRPC authority and the TLS server name.
   */
  private async dialTarget(address: string): Promise<{ address: string; channelArgs?: Record<string, string> }> {
    const port = address.slice(address.lastIndexOf(':') + 1);
    const host = canonicalHost(hostOf(address)) ?? hostOf(address);
    if (isIP(host)) {
      const refusal = this.egress.refuseLiteral(host);
      if (refusal) throw new EgressRefusedError(refusal);
      return { address: hostPort(host, port) };
    }
    let found: { address: string; family: number }[];
    try {
      found = await this.egress.resolve(host);
    } catch (error) {
      if (error instanceof EgressRefusedError) throw error;
      throw new LookupError(`cannot resolve ${host}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    }
    const chosen = found.find((a) => a.family === 4) ?? found[0];
    return { address: hostPort(chosen.address, port), channelArgs: { 'grpc.default_authority': address, 'grpc.ssl_target_name_override': host } };
  }

  private evict(poolKey: string): void {
    const pool = this.pools.get(poolKey);
    if (!pool) return;
    this.pools.delete(poolKey);
    // Other starts may still be using it; they end within their own timeout.
    setTimeout(() => void pool.connection.close().catch(() => undefined), 60_000).unref();
  }

  private closeIdle(): void {
    const now = Date.now();
    for (const [key, pool] of this.pools) if (now - pool.lastUsed > IDLE_CONNECTION_MS) this.evict(key);
  }

  async close(): Promise<void> {
    this.closed = true;
    const pools = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(pools.map((p) => p.connection.close().catch(() => undefined)));
  }
}

export function codecOf(encryption: NonNullable<TemporalConfig['encryption']>): AesGcmPayloadCodec {
  const keys = new Map<string, Buffer>();
  for (const [id, hex] of Object.entries(encryption.previousKeys ?? {})) keys.set(id, parseHexKey(hex));
  keys.set(encryption.keyId, parseHexKey(encryption.key));
  return new AesGcmPayloadCodec(encryption.keyId, keys);
}

function tlsOf(c: TemporalConfig): TLSConfig | boolean | undefined {
  if (c.tls === undefined || typeof c.tls === 'boolean') return c.tls;
  const { serverName, serverRootCaCert, clientCert, clientKey } = c.tls;
  return {
    serverNameOverride: serverName,
    serverRootCACertificate: serverRootCaCert ? Buffer.from(serverRootCaCert) : undefined,
    clientCertPair: clientCert && clientKey ? { crt: Buffer.from(clientCert), key: Buffer.from(clientKey) } : undefined,
  };
}

/** A name that did not resolve (may heal: retried on the endpoint's schedule). */
class LookupError extends Error {}

/** The host of `host:port` or `[ipv6]:port`, without brackets. */
const hostOf = (address: string) => address.slice(0, address.lastIndexOf(':')).replace(/^\[(.*)\]$/, '$1');
const hostPort = (host: string, port: string) => (host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`);

function settingsOf(endpoint: Endpoint): Record<string, unknown> {
  const { type: _type, ...settings } = endpoint.destination ?? { type: '' };
  return settings;
}

function aborted(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal.aborted) reject(new Error('aborted'));
    signal.addEventListener('abort', () => reject(new Error('aborted')), { once: true });
  });
}

function grpcCode(error: unknown): number | undefined {
  if (isGrpcServiceError(error)) return error.code;
  const cause = (error as { cause?: unknown })?.cause;
  return isGrpcServiceError(cause) ? cause.code : undefined;
}

/** `UNAVAILABLE: No connection established. Last error: connect ECONNREFUSED …`, or the error's own message. */
function describeError(error: unknown): string {
  const grpc = isGrpcServiceError(error) ? error : isGrpcServiceError((error as { cause?: unknown })?.cause) ? ((error as { cause: unknown }).cause as { code: number; details: string }) : null;
  // grpc-js pads its details with an empty resolution note and a doubled `Error:`.
  if (grpc) return `${GRPC_STATUS[grpc.code] ?? `gRPC status ${grpc.code}`}: ${grpc.details.replace(/\.? Resolution note: $/, '').replace('Last error: Error: ', 'Last error: ')}`;
  return (error as Error)?.message ?? String(error);
}

const retry = (error: string): SendResult => ({ kind: 'retry', statusCode: 0, responseBody: '', error, retryAfterMs: null });
const fatal = (error: string): SendResult => ({ kind: 'fatal', statusCode: 0, responseBody: '', error });
