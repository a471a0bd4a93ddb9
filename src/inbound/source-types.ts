import { z } from 'zod';
import { BROKER_SECRET_PATHS, BROKER_SOURCE_CONFIGS, type BrokerSourceType } from './brokers/config.js';
import { PROVIDERS } from './providers/index.js';
import { SOURCE_TYPE_ALIASES, SECRET_FIELDS, commonSourceConfig } from './source-config.js';

/** A JSON Schema object, as `z.toJSONSchema` writes it. */
export type JsonSchema = Record<string, unknown> & { properties?: Record<string, JsonSchema>; required?: string[] };

export interface SourceTypeSchema {
  /** The `type` a source is created with. */
  type: string;
  /** The type whose verifier it uses, when `type` is another name for it (`generic-webhook` → `none`). */
  aliasOf: string | null;
  /**
   * The whole `config` a source of this type takes: the verifier's fields, then the settings every source has.
   * Secret fields are `writeOnly` (sent on create and update, never returned).
   */
  config: JsonSchema;
  /** A broker source (docs/brokers.md): hookrelay consumes it, and it has none of the HTTP sources' common settings. */
  broker: boolean;
}

function jsonSchemaOf(schema: z.ZodType): JsonSchema {
  const { $schema: _, ...rest } = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
  return rest;
}

function configSchema(providerType: string): JsonSchema {
  const provider = PROVIDERS.get(providerType)!;
  const own = jsonSchemaOf(provider.config);
  const common = jsonSchemaOf(commonSourceConfig);
  const shape = (provider.config as z.ZodType & { shape?: Record<string, z.ZodType> }).shape ?? {};
  const properties: Record<string, JsonSchema> = {};
  for (const [name, field] of Object.entries(own.properties ?? {})) {
    // A default behind a transform (a header name, lower-cased) is not in the input schema: ask the field itself.
    const fallback = field.default === undefined ? shape[name]?.safeParse(undefined) : undefined;
    const filled = fallback?.success && fallback.data !== undefined ? { ...field, default: fallback.data } : field;
    properties[name] = SECRET_FIELDS.has(name) ? { ...filled, writeOnly: true } : filled;
  }
  Object.assign(properties, common.properties);
  // The verifier's fields and the common ones are checked as two strict objects, so together they stay closed.
  return { type: 'object', properties, ...(own.required?.length ? { required: own.required } : {}), additionalProperties: false };
}

/** A broker source's config: its own settings (secrets `writeOnly`), marked `x-hookrelay-broker` for clients. */
function brokerConfigSchema(type: BrokerSourceType): JsonSchema {
  const own = jsonSchemaOf(BROKER_SOURCE_CONFIGS[type]);
  const properties = Object.fromEntries(Object.entries(own.properties ?? {}).map(([name, field]) => [name, SECRET_FIELDS.has(name) ? { ...field, writeOnly: true } : field]));
  // A secret inside an object setting (`sasl.password`; `tls.clientKey` in the object variant of `tls`).
  const secretIn = (schema: JsonSchema, field: string): JsonSchema =>
    schema.properties?.[field] ? { ...schema, properties: { ...schema.properties, [field]: { ...schema.properties[field], writeOnly: true } } } : schema;
  for (const path of BROKER_SECRET_PATHS) {
    const [head, field] = path.split('.');
    const setting = properties[head];
    if (!setting) continue;
    const variants = setting.anyOf as JsonSchema[] | undefined;
    properties[head] = variants ? { ...setting, anyOf: variants.map((v) => secretIn(v, field)) } : secretIn(setting, field);
  }
  return { ...own, properties, additionalProperties: false, 'x-hookrelay-broker': true };
}

let catalog: SourceTypeSchema[] | undefined;

/** Every source type and its config schema, in the order the types are registered, aliases, then broker types. Built on first use. */
export function sourceTypes(): SourceTypeSchema[] {
  catalog ??= [
    ...[...PROVIDERS.keys()].map((type) => ({ type, aliasOf: null, config: configSchema(type), broker: false })),
    ...Object.entries(SOURCE_TYPE_ALIASES).map(([type, target]) => ({ type, aliasOf: target, config: configSchema(target), broker: false })),
    ...(Object.keys(BROKER_SOURCE_CONFIGS) as BrokerSourceType[]).map((type) => ({ type, aliasOf: null, config: brokerConfigSchema(type), broker: true })),
  ];
  return catalog;
}

/** The config a source of this type is returned with: its schema without the secret fields. */
export function redactedConfigSchema(config: JsonSchema): JsonSchema {
  const properties = Object.fromEntries(Object.entries(config.properties ?? {}).filter(([name]) => !SECRET_FIELDS.has(name)));
  const required = (config.required ?? []).filter((name) => !SECRET_FIELDS.has(name));
  // Returned configs carry their defaults, but older sources may lack a later field: nothing more is promised.
  return { type: 'object', properties, ...(required.length ? { required } : {}) };
}

/** `standard-webhooks` → `StandardWebhooks`, for OpenAPI component names. */
export const pascalCase = (type: string) => type.split(/[^A-Za-z0-9]+/).map((part) => part.charAt(0).toUpperCase() + part.slice(1)).join('');
