import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { DEFAULT_HTTP_LIMITS, type HttpLimits } from './api/http-limits.js';
import { DEFAULT_HEALTH_POLICY, type HealthPolicy } from './domain/health.js';
import { DEFAULT_RETRY_POLICY, parseSchedule } from './domain/retry.js';
import { DEFAULT_VERIFICATION_SCHEDULE_MS } from './domain/verification.js';
import { AllowList } from './egress/allow-list.js';
import { AddressList } from './inbound/address-list.js';
import { checkDnsServers } from './egress/policy.js';
import { parseKeyFile, parseMasterKey } from './secrets/box.js';
import type { SignatureHeaderSet } from './signing/standard-webhooks.js';
import { otelProblems } from './observability/tracing.js';

/**
 * One validated configuration object. Each setting has a flag, an environment variable and a default;
 * a flag beats the environment, which beats the default. Nothing here runs at import time.
 */
export interface Settings {
  port: number;
  host: string;
  db: string;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** JSON lines (one object per line, ISO timestamps) or coloured one-line text for a terminal. @default 'json' */
  logFormat: 'json' | 'pretty';
  /** One log line per API request (method, route, status, duration; never bodies or tokens). @default false */
  requestLog: boolean;
  adminToken: string | null;
  /** A bearer token that may read `GET /metrics` and nothing else. @default none (the admin token only) */
  metricsToken: string | null;
  tls: { cert: string; key: string } | null;
  /** Largest request body the API accepts, in bytes. @default 1048576 */
  maxPayloadBytes: number;
  sqliteSynchronous: 'FULL' | 'NORMAL';
  retryScheduleMs: number[];
  /** Delays before each retry of an endpoint registration handshake (domain/verification.ts). @default 5s,30s,2m,10m,30m,1h */
  verificationScheduleMs: number[];
  deliveryTimeoutMs: number;
  connectTimeoutMs: number;
  responseBodyLimit: number;
  /** Attempts in flight in this process, all endpoints together. @default 512 */
  maxInFlight: number;
  /** Default cap of attempts in flight per endpoint. @default 32 */
  endpointConcurrency: number;
  idempotencyTtlMs: number;
  shutdownGraceMs: number;
  /** How long a lease outlives the delivery timeout before another dispatcher may take the delivery over. @default 30000 */
  leaseMarginMs: number;
  /** Payloads of finished messages, attempts and expired idempotency records older than this are pruned. @default 30 days */
  retentionMs: number;
  /** Which names the signature headers of a delivery go by: `webhook-*`, Svix's `svix-*`, or both (same values). @default 'both' */
  signatureHeaders: SignatureHeaderSet;
  /** Whether this process delivers; off makes an API-only process in front of a shared PostgreSQL database. @default true */
  dispatch: boolean;
  /** HTTP deliveries go out from a thread of their own (the main thread keeps the API, claims and commits). @default true */
  deliveryThread: boolean;
  pollMs: number;
  /** How often retention runs. @default 60000 */
  pruneIntervalMs: number;
  /** CIDRs, addresses and host names deliveries may reach although they are loopback, private, link-local… @default none */
  allowNetworks: readonly string[];
  /** DNS servers for delivery look-ups instead of the system resolver. @default none (getaddrinfo) */
  dnsServers: readonly string[];
  /** Proxies (CIDRs, addresses) whose X-Forwarded-For / Forwarded headers name an ingest request's client. @default none */
  trustedProxies: readonly string[];
  /**
   * The key secrets are encrypted with at rest (AES-256-GCM), and older keys still accepted for decryption during a
   * rotation. null: SQLite generates one beside the database; PostgreSQL refuses to start.
   */
  masterKey: { current: Buffer; previous: Buffer[]; from: string } | null;
  /**
   * The standard OpenTelemetry variables (OTEL_*): traces are exported over OTLP/HTTP when they name an endpoint
   * (src/observability/tracing.ts). Empty: tracing off.
   */
  otel: Readonly<Record<string, string>>;
  /** Circuit breaker and auto-disable of failing endpoints (domain/health.ts). */
  health: HealthPolicy;
  /** What clients of the HTTP server may send, and how slowly (api/http-limits.ts). */
  http: HttpLimits;
  /** A delivery's n-th failed attempt in a row sends the operational webhook `message.attempt.failing`; 0 = never. @default 4 */
  operationalFailingAfter: number;
  /** Origins that may show the customer portal in an iframe (CSP frame-ancestors). @default none */
  portalFrameAncestors: readonly string[];
}

/** Where each setting can come from: [flag, environment variable]. */
export const SETTING_SOURCES = {
  port: ['port', 'HOOKRELAY_PORT'],
  host: ['host', 'HOOKRELAY_HOST'],
  db: ['db', 'HOOKRELAY_DB'],
  logLevel: ['log-level', 'HOOKRELAY_LOG_LEVEL'],
  logFormat: ['log-format', 'HOOKRELAY_LOG_FORMAT'],
  requestLog: ['request-log', 'HOOKRELAY_REQUEST_LOG'],
  adminToken: [null, 'HOOKRELAY_ADMIN_TOKEN'],
  metricsToken: [null, 'HOOKRELAY_METRICS_TOKEN'],
  tlsCert: ['tls-cert', 'HOOKRELAY_TLS_CERT'],
  tlsKey: ['tls-key', 'HOOKRELAY_TLS_KEY'],
  maxPayloadBytes: ['max-payload-bytes', 'HOOKRELAY_MAX_PAYLOAD_BYTES'],
  sqliteSynchronous: ['sqlite-synchronous', 'HOOKRELAY_SQLITE_SYNCHRONOUS'],
  retrySchedule: ['retry-schedule', 'HOOKRELAY_RETRY_SCHEDULE'],
  verificationSchedule: ['verification-schedule', 'HOOKRELAY_VERIFICATION_SCHEDULE'],
  deliveryTimeout: ['delivery-timeout', 'HOOKRELAY_DELIVERY_TIMEOUT'],
  connectTimeout: ['connect-timeout', 'HOOKRELAY_CONNECT_TIMEOUT'],
  responseBodyLimit: [null, 'HOOKRELAY_RESPONSE_BODY_LIMIT'],
  maxInFlight: ['max-in-flight', 'HOOKRELAY_MAX_IN_FLIGHT'],
  endpointConcurrency: ['endpoint-concurrency', 'HOOKRELAY_ENDPOINT_CONCURRENCY'],
  shutdownGrace: ['shutdown-grace', 'HOOKRELAY_SHUTDOWN_GRACE'],
  leaseMargin: ['lease-margin', 'HOOKRELAY_LEASE_MARGIN'],
  retention: ['retention', 'HOOKRELAY_RETENTION'],
  dispatch: ['dispatch', 'HOOKRELAY_DISPATCH'],
  deliveryThread: ['delivery-thread', 'HOOKRELAY_DELIVERY_THREAD'],
  signatureHeaders: ['signature-headers', 'HOOKRELAY_SIGNATURE_HEADERS'],
  allowNetworks: ['allow-networks', 'HOOKRELAY_ALLOW_NETWORKS'],
  dnsServers: ['dns-servers', 'HOOKRELAY_DNS_SERVERS'],
  trustedProxies: ['trusted-proxies', 'HOOKRELAY_TRUSTED_PROXIES'],
  masterKey: [null, 'HOOKRELAY_MASTER_KEY'],
  masterKeyFile: ['master-key-file', 'HOOKRELAY_MASTER_KEY_FILE'],
  previousMasterKeys: [null, 'HOOKRELAY_PREVIOUS_MASTER_KEYS'],
  circuitThreshold: ['circuit-threshold', 'HOOKRELAY_CIRCUIT_THRESHOLD'],
  circuitCooldown: ['circuit-cooldown', 'HOOKRELAY_CIRCUIT_COOLDOWN'],
  circuitMaxCooldown: ['circuit-max-cooldown', 'HOOKRELAY_CIRCUIT_MAX_COOLDOWN'],
  disableAfter: ['disable-after', 'HOOKRELAY_DISABLE_AFTER'],
  disableAfterParked: ['disable-after-parked', 'HOOKRELAY_DISABLE_AFTER_PARKED'],
  requestTimeout: ['request-timeout', 'HOOKRELAY_REQUEST_TIMEOUT'],
  headersTimeout: ['headers-timeout', 'HOOKRELAY_HEADERS_TIMEOUT'],
  maxHeaderBytes: ['max-header-bytes', 'HOOKRELAY_MAX_HEADER_BYTES'],
  maxHeaders: ['max-headers', 'HOOKRELAY_MAX_HEADERS'],
  maxUrlBytes: ['max-url-bytes', 'HOOKRELAY_MAX_URL_BYTES'],
  maxConnections: ['max-connections', 'HOOKRELAY_MAX_CONNECTIONS'],
  operationalFailingAfter: ['operational-failing-after', 'HOOKRELAY_OPERATIONAL_FAILING_AFTER'],
  portalFrameAncestors: ['portal-frame-ancestors', 'HOOKRELAY_PORTAL_FRAME_ANCESTORS'],
} as const;

export type RawSettings = Partial<Record<keyof typeof SETTING_SOURCES, string>>;

const DEFAULT_HEALTH = DEFAULT_HEALTH_POLICY;

const int = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, 'must be a whole number')
    .transform(Number)
    .pipe(z.number().int().min(min, `must be at least ${min}`).max(max, `must be at most ${max}`));

const duration = z.string().transform((text, ctx) => {
  try {
    const [ms] = parseSchedule(text);
    if (parseSchedule(text).length !== 1) throw new Error('expected one duration, e.g. 15s');
    return ms;
  } catch (error) {
    ctx.addIssue({ code: 'custom', message: (error as Error).message });
    return z.NEVER;
  }
});

/** A comma-separated list of durations (`0,30s,5m`). */
const schedule = z.string().transform((text, ctx) => {
  try {
    return parseSchedule(text);
  } catch (error) {
    ctx.addIssue({ code: 'custom', message: (error as Error).message });
    return z.NEVER;
  }
});

const pemFile = z.string().transform((path, ctx) => {
  try {
    const text = readFileSync(path, 'utf8');
    if (!text.includes('-----BEGIN')) throw new Error('is not a PEM file');
    return text;
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (error as Error).message;
    ctx.addIssue({ code: 'custom', message: `${path}: ${reason}` });
    return z.NEVER;
  }
});

/** A comma-separated list, each entry checked by `check` (which throws with the reason). */
const list = (check: (entries: string[]) => unknown) =>
  z.string().transform((text, ctx) => {
    const entries = text.split(',').map((e) => e.trim()).filter(Boolean);
    try {
      check(entries);
      return entries;
    } catch (error) {
      ctx.addIssue({ code: 'custom', message: (error as Error).message });
      return z.NEVER;
    }
  });
/** base64 master keys, separated by commas or white space. */
const masterKeys = z.string().transform((text, ctx) => {
  try {
    const keys = text.split(/[\s,]+/).filter((k) => k !== '');
    return keys.map((key, i) => parseMasterKey(key, keys.length > 1 ? `key ${i + 1}` : ''));
  } catch (error) {
    ctx.addIssue({ code: 'custom', message: (error as Error).message });
    return z.NEVER;
  }
});

const keyFile = z.string().transform((path, ctx) => {
  try {
    return { path, keys: parseKeyFile(readFileSync(path, 'utf8'), path) };
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? `${path}: no such file` : (error as Error).message;
    ctx.addIssue({ code: 'custom', message: reason });
    return z.NEVER;
  }
});

/** A CSP frame-ancestors source: `'self'`, or an http(s) origin whose host may start with `*.`. */
const FRAME_ANCESTOR = /^(?:'self'|https?:\/\/(?:\*\.)?[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*(?::\d{1,5})?)$/;
const checkFrameAncestors = (entries: string[]) => {
  const bad = entries.find((e) => !FRAME_ANCESTOR.test(e));
  if (bad !== undefined) throw new Error(`${JSON.stringify(bad)} is not an origin such as https://app.example.com, https://*.example.com or 'self'`);
};

const schema = z
  .object({
    port: int(0, 65535).default(8080),
    host: z.string().min(1).default('127.0.0.1'),
    db: z
      .string()
      .min(1)
      .superRefine((db, ctx) => {
        const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(db)?.[1];
        if (scheme === undefined || /^(postgres|postgresql|sqlite|file)$/i.test(scheme)) return;
        ctx.addIssue({ code: 'custom', message: `unknown database scheme "${scheme}://"; use a SQLite file path (or sqlite:<path>, file:<path>) or postgres://user:password@host:5432/database` });
      })
      .default('./hookrelay.db'),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    logFormat: z.enum(['json', 'pretty']).default('json'),
    requestLog: z.enum(['on', 'off']).default('off'),
    adminToken: z.string().min(16, 'must be at least 16 characters').optional(),
    metricsToken: z.string().regex(/^\S+$/, 'must not contain white space').min(16, 'must be at least 16 characters').optional(),
    tlsCert: pemFile.optional(),
    tlsKey: pemFile.optional(),
    maxPayloadBytes: int(1024, 64 * 1024 * 1024).default(1024 * 1024),
    sqliteSynchronous: z.enum(['FULL', 'NORMAL']).default('FULL'),
    retrySchedule: schedule.optional(),
    verificationSchedule: schedule.optional(),
    deliveryTimeout: duration.default(15_000),
    connectTimeout: duration.default(15_000),
    responseBodyLimit: int(0, 1024 * 1024).default(20_000),
    maxInFlight: int(1, 100_000).default(512),
    endpointConcurrency: int(1, 10_000).default(32),
    shutdownGrace: duration.default(10_000),
    leaseMargin: duration.default(30_000),
    retention: duration.pipe(z.number().min(60_000, 'must be at least 1m')).default(30 * 86_400_000),
    dispatch: z.enum(['on', 'off']).default('on'),
    deliveryThread: z.enum(['on', 'off']).default('on'),
    signatureHeaders: z.enum(['both', 'webhook', 'svix']).default('both'),
    allowNetworks: list((entries) => new AllowList(entries)).default([]),
    dnsServers: list(checkDnsServers).default([]),
    trustedProxies: list((entries) => new AddressList(entries)).default([]),
    portalFrameAncestors: list(checkFrameAncestors).default([]),
    masterKey: masterKeys.pipe(z.array(z.instanceof(Buffer)).length(1, 'must be one key (previous keys go in HOOKRELAY_PREVIOUS_MASTER_KEYS)')).optional(),
    masterKeyFile: keyFile.optional(),
    previousMasterKeys: masterKeys.optional(),
    circuitThreshold: int(0, 1_000_000).default(DEFAULT_HEALTH.threshold),
    circuitCooldown: duration.pipe(z.number().min(100, 'must be at least 100ms').max(86_400_000, 'must be at most 1d')).default(DEFAULT_HEALTH.cooldownMs),
    circuitMaxCooldown: duration.pipe(z.number().min(100, 'must be at least 100ms').max(7 * 86_400_000, 'must be at most 7d')).default(DEFAULT_HEALTH.maxCooldownMs),
    disableAfter: duration.default(DEFAULT_HEALTH.disableAfterMs),
    disableAfterParked: int(0, 1_000_000_000).default(DEFAULT_HEALTH.disableAfterParked),
    requestTimeout: duration.pipe(z.number().min(100, 'must be at least 100ms')).default(DEFAULT_HTTP_LIMITS.requestTimeoutMs),
    headersTimeout: duration.pipe(z.number().min(100, 'must be at least 100ms')).default(DEFAULT_HTTP_LIMITS.headersTimeoutMs),
    maxHeaderBytes: int(1024, 1024 * 1024).default(DEFAULT_HTTP_LIMITS.maxHeaderBytes),
    maxHeaders: int(8, 2000).default(DEFAULT_HTTP_LIMITS.maxHeaders),
    maxUrlBytes: int(256, 1024 * 1024).default(DEFAULT_HTTP_LIMITS.maxUrlBytes),
    maxConnections: int(1, 1_000_000).default(DEFAULT_HTTP_LIMITS.maxConnections),
    operationalFailingAfter: int(0, 1000).default(4),
  })
  .refine((s) => Boolean(s.tlsCert) === Boolean(s.tlsKey), { message: '--tls-cert and --tls-key go together', path: ['tlsCert'] })
  .refine((s) => !(s.masterKey && s.masterKeyFile), { message: 'set the master key either in HOOKRELAY_MASTER_KEY or in a file, not both', path: ['masterKeyFile'] })
  .refine((s) => s.circuitMaxCooldown >= s.circuitCooldown, { message: 'must not be shorter than --circuit-cooldown', path: ['circuitMaxCooldown'] })
  .refine((s) => s.headersTimeout <= s.requestTimeout, { message: 'must not exceed --request-timeout', path: ['headersTimeout'] })
  .refine((s) => s.maxUrlBytes < s.maxHeaderBytes, { message: 'must be less than --max-header-bytes (the URL is part of the header block)', path: ['maxUrlBytes'] });

/** The master key setting: from the environment, or from a file whose first key is current and the rest previous. */
function masterKeyOf(s: z.output<typeof schema>): Settings['masterKey'] {
  const previous = s.previousMasterKeys ?? [];
  if (s.masterKey) return { current: s.masterKey[0], previous, from: 'HOOKRELAY_MASTER_KEY' };
  if (!s.masterKeyFile) return null;
  const [current, ...older] = s.masterKeyFile.keys;
  return { current, previous: [...older, ...previous], from: s.masterKeyFile.path };
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
}

/** Merges flags over environment, validates everything, and reports every bad setting at once. */
export function loadSettings(flags: RawSettings, env: NodeJS.ProcessEnv): Readonly<Settings> {
  const raw: Record<string, string> = {};
  for (const [key, [flag, variable]] of Object.entries(SETTING_SOURCES)) {
    const value = (flag !== null ? flags[key as keyof RawSettings] : undefined) ?? env[variable];
    if (value !== undefined && value !== '') raw[key] = value;
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((issue) => {
        const key = String(issue.path[0] ?? '') as keyof typeof SETTING_SOURCES;
        const [flag, variable] = SETTING_SOURCES[key] ?? [null, key];
        const where = flag ? `--${flag} (${variable})` : variable;
        return `${where}: ${issue.message}`;
      }),
    );
  }
  const s = parsed.data;
  const otel: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) if (name.startsWith('OTEL_') && value !== undefined && value !== '') otel[name] = value;
  const otelIssues = otelProblems(otel);
  if (otelIssues.length > 0) throw new ConfigError(otelIssues);
  return Object.freeze({
    port: s.port,
    host: s.host,
    db: s.db,
    logLevel: s.logLevel,
    logFormat: s.logFormat,
    requestLog: s.requestLog === 'on',
    adminToken: s.adminToken ?? null,
    metricsToken: s.metricsToken ?? null,
    tls: s.tlsCert && s.tlsKey ? { cert: s.tlsCert, key: s.tlsKey } : null,
    maxPayloadBytes: s.maxPayloadBytes,
    sqliteSynchronous: s.sqliteSynchronous,
    retryScheduleMs: s.retrySchedule ?? DEFAULT_RETRY_POLICY.scheduleMs,
    verificationScheduleMs: s.verificationSchedule ?? DEFAULT_VERIFICATION_SCHEDULE_MS,
    deliveryTimeoutMs: s.deliveryTimeout,
    connectTimeoutMs: s.connectTimeout,
    responseBodyLimit: s.responseBodyLimit,
    maxInFlight: s.maxInFlight,
    endpointConcurrency: s.endpointConcurrency,
    idempotencyTtlMs: 24 * 3600 * 1000,
    shutdownGraceMs: s.shutdownGrace,
    leaseMarginMs: s.leaseMargin,
    retentionMs: s.retention,
    dispatch: s.dispatch === 'on',
    deliveryThread: s.deliveryThread === 'on',
    signatureHeaders: s.signatureHeaders,
    pollMs: 1000,
    pruneIntervalMs: 60_000,
    allowNetworks: Object.freeze(s.allowNetworks),
    dnsServers: Object.freeze(s.dnsServers),
    trustedProxies: Object.freeze(s.trustedProxies),
    masterKey: masterKeyOf(s),
    otel: Object.freeze(otel),
    health: {
      threshold: s.circuitThreshold,
      cooldownMs: s.circuitCooldown,
      maxCooldownMs: s.circuitMaxCooldown,
      disableAfterMs: s.disableAfter,
      disableAfterParked: s.disableAfterParked,
    },
    http: {
      requestTimeoutMs: s.requestTimeout,
      headersTimeoutMs: s.headersTimeout,
      maxHeaderBytes: s.maxHeaderBytes,
      maxHeaders: s.maxHeaders,
      maxUrlBytes: s.maxUrlBytes,
      maxConnections: s.maxConnections,
    },
    operationalFailingAfter: s.operationalFailingAfter,
    portalFrameAncestors: Object.freeze(s.portalFrameAncestors),
  });
}
