import { z } from 'zod';
import { HookrelayError, type FieldIssue } from '../domain/errors.js';
import { AddressList, addressEntryProblem } from './address-list.js';
import { BROKER_SECRET_PATHS, BROKER_SOURCE_CONFIGS, isBrokerSourceType, validateBrokerSourceConfig } from './brokers/config.js';
import { ipPresets } from './ip-presets/index.js';
import { PROVIDERS } from './providers/index.js';
import type { Provider, Verifier } from './verifier.js';

/** Settings every source has, whatever its verifier; they live in `config` next to the verifier's fields. */
export const commonSourceConfig = z.object({
  /** Largest body accepted, in bytes. @default 1048576 */
  maxBodyBytes: z.number().int().min(1).max(64 * 1024 * 1024).default(1024 * 1024),
  /** Requests per second accepted from the provider; null = unlimited. */
  rateLimit: z.number().int().min(1).max(1_000_000).nullable().default(null),
  /** How long a delivery id (or body hash) is remembered to drop duplicates, in seconds. @default 86400 */
  dedupeWindowSeconds: z.number().int().min(1).max(30 * 86_400).default(86_400),
  /** The URL the provider calls, when it signs the URL (Twilio, Square, HubSpot) and hookrelay sits behind a proxy. */
  publicUrl: z.url().optional(),
  /** Extra request headers to keep on the message and forward, besides the provider's own. */
  keepHeaders: z.array(z.string().regex(/^[A-Za-z0-9-]+$/).transform((v) => v.toLowerCase())).max(50).default([]),
  /**
   * What a verified request whose payload fails its event type's JSON Schema becomes: `off` (not checked), `mark`
   * (stored, delivered and tagged `schema-invalid`; the provider gets its 2xx) or `refuse` (422, nothing stored).
   * @default "off"
   */
  schemaValidation: z.enum(['off', 'mark', 'refuse']).default('off'),
  /**
   * Client addresses accepted, as CIDRs or single addresses; with `allowedIpPresets`, any other gets 403 before its
   * body is read. Both empty: any address. See `--trusted-proxies` for the address of a client behind a proxy.
   */
  allowedIps: z
    .array(z.string().superRefine((entry, ctx) => {
      const problem = addressEntryProblem(entry);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    }))
    .max(1000)
    .default([]),
  /** Providers' published webhook ranges (src/inbound/ip-presets/presets.json): `github`, `stripe`. */
  allowedIpPresets: z
    .array(z.string().superRefine((name, ctx) => {
      // The presets are read on first use, not at import.
      if (!ipPresets().has(name)) ctx.addIssue({ code: 'custom', message: `must be one of ${[...ipPresets().keys()].join(', ')}` });
    }))
    .max(20)
    .default([]),
});

export type CommonSourceConfig = z.output<typeof commonSourceConfig>;

const COMMON_KEYS = Object.keys(commonSourceConfig.shape);

/** `generic-webhook` is the svix SDK's name for an unverified source. */
export const SOURCE_TYPE_ALIASES: Readonly<Record<string, string>> = { 'generic-webhook': 'none' };
const ALIASES = SOURCE_TYPE_ALIASES;

export interface CompiledSource {
  provider: Provider;
  verifier: Verifier;
  common: CommonSourceConfig;
  /** The addresses requests may come from; null when any may. */
  addresses: AddressList | null;
  /** The request headers kept on a message (lower-cased): content-type, the provider's, then the source's own. */
  keptHeaders: readonly string[];
}

function issuesOf(error: z.ZodError, prefix: (string | number)[]): FieldIssue[] {
  return error.issues.map((issue) => ({
    loc: [...prefix, ...issue.path.map((p) => (typeof p === 'symbol' ? String(p) : p))],
    msg: issue.message,
    type: issue.code,
  }));
}

/** Validates a source's type and config (422 with the field named when wrong) and returns the normalised config. */
export function validateSourceConfig(type: string, config: Record<string, unknown>): Record<string, unknown> {
  if (isBrokerSourceType(type)) return validateBrokerSourceConfig(type, config);
  const provider = PROVIDERS.get(ALIASES[type] ?? type);
  if (!provider) {
    const known = [...PROVIDERS.keys(), ...Object.keys(ALIASES), ...Object.keys(BROKER_SOURCE_CONFIGS)].sort().join(', ');
    throw new HookrelayError('validation', `body.type: unknown source type ${JSON.stringify(type)}`, [{ loc: ['body', 'type'], msg: `must be one of ${known}`, type: 'enum' }]);
  }
  const commonPart: Record<string, unknown> = {};
  const providerPart: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(config)) (COMMON_KEYS.includes(key) ? commonPart : providerPart)[key] = value;
  const common = commonSourceConfig.safeParse(commonPart);
  const own = provider.config.safeParse(providerPart);
  const issues = [...(common.success ? [] : issuesOf(common.error, ['body', 'config'])), ...(own.success ? [] : issuesOf(own.error, ['body', 'config']))];
  if (issues.length > 0) throw new HookrelayError('validation', `${issues[0].loc.join('.')}: ${issues[0].msg}`, issues);
  return { ...(own.data as object), ...common.data! };
}

/** Builds the verifier of a stored (already validated) source. */
export function compileSource(type: string, config: Record<string, unknown>): CompiledSource {
  const provider = PROVIDERS.get(ALIASES[type] ?? type)!;
  const commonPart: Record<string, unknown> = {};
  const providerPart: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(config)) (COMMON_KEYS.includes(key) ? commonPart : providerPart)[key] = value;
  const common = commonSourceConfig.parse(commonPart);
  return {
    provider,
    verifier: provider.create(provider.config.parse(providerPart)),
    common,
    addresses: allowedAddresses(common),
    keptHeaders: [...new Set(['content-type', ...provider.keepHeaders, ...common.keepHeaders])],
  };
}

function allowedAddresses(common: CommonSourceConfig): AddressList | null {
  if (common.allowedIps.length === 0 && common.allowedIpPresets.length === 0) return null;
  return new AddressList([...common.allowedIps, ...common.allowedIpPresets.flatMap((name) => ipPresets().get(name)!.ranges)]);
}

/** Config fields that hold secrets: never returned by the API. */
export const SECRET_FIELDS = new Set(['secret', 'additionalSecrets', 'password', 'hmacKey', 'token', 'verifyToken', 'signingToken', 'additionalSigningTokens']);

/** Secret settings inside an object setting (a broker source's `sasl.password`, `tls.clientKey`). */
export const NESTED_SECRET_PATHS: readonly string[] = BROKER_SECRET_PATHS;

export function redactConfig(config: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(config)) if (!SECRET_FIELDS.has(key)) out[key] = value;
  for (const path of NESTED_SECRET_PATHS) {
    const [head, field] = path.split('.');
    const inner = out[head];
    if (inner !== null && typeof inner === 'object' && !Array.isArray(inner) && field in inner) {
      const { [field]: _secret, ...rest } = inner as Record<string, unknown>;
      out[head] = rest;
    }
  }
  return out;
}
