import { CliError, serverOf } from './client.js';
import { printJson, printTable, type Out } from './output.js';

/** `hookrelay source types`: every source type and its config fields, read from the running server's OpenAPI document. */

interface FieldSchema {
  type?: string;
  enum?: unknown[];
  const?: unknown;
  items?: FieldSchema;
  format?: string;
  anyOf?: FieldSchema[];
  default?: unknown;
  writeOnly?: boolean;
}

interface ConfigSchema {
  properties?: Record<string, FieldSchema>;
  required?: string[];
}

export interface SourceTypeField {
  name: string;
  /** `string`, `integer`, `boolean`, `string[]`, `sha1|sha256`, … */
  value: string;
  required: boolean;
  /** Sent on create and update, never returned by the API. */
  secret: boolean;
  default?: unknown;
}

export interface SourceTypeFields {
  type: string;
  /** A broker source (hookrelay consumes it): its fields are all its own. */
  broker: boolean;
  fields: SourceTypeField[];
}

const COMMON = '(every HTTP type)';

function valueOf(field: FieldSchema): string {
  if (field.const !== undefined) return JSON.stringify(field.const);
  if (field.anyOf) return field.anyOf.map(valueOf).join('|');
  if (field.enum) return field.enum.map(String).join('|');
  if (field.type === 'array') return `${field.items ? valueOf(field.items) : 'any'}[]`;
  if (field.format === 'uri') return 'url';
  return field.type ?? 'any';
}

/** Reads the source types from the OpenAPI document: the `IngestSourceIn` discriminator maps each type to its variant. */
export function sourceTypesOf(document: any): SourceTypeFields[] {
  const schemas = document?.components?.schemas ?? {};
  const mapping: Record<string, string> | undefined = schemas.IngestSourceIn?.discriminator?.mapping;
  if (!mapping) throw new CliError('this hookrelay does not describe its source types (its OpenAPI document has no IngestSourceIn discriminator)', 1);
  const resolve = (schema: any) => (typeof schema?.$ref === 'string' ? schemas[schema.$ref.split('/').pop()] : schema);
  return Object.entries(mapping).map(([type, $ref]) => {
    const config: ConfigSchema = resolve(resolve({ $ref }).properties.config);
    const required = new Set(config.required ?? []);
    const fields = Object.entries(config.properties ?? {}).map(([name, field]) => ({
      name,
      value: valueOf(field),
      required: required.has(name),
      secret: field.writeOnly === true,
      ...(field.default !== undefined ? { default: field.default } : {}),
    }));
    return { type, broker: (config as Record<string, unknown>)['x-hookrelay-broker'] === true, fields };
  });
}

/** Prints the types as a table: each type's own fields, then once the settings every HTTP type shares. */
export function printSourceTypes(out: Out, types: SourceTypeFields[], json: boolean): void {
  if (json) return printJson(out, types);
  const http = types.filter((t) => !t.broker);
  const shared = http.length > 1 ? http.slice(1).reduce((names, t) => names.filter((n) => t.fields.some((f) => f.name === n)), http[0].fields.map((f) => f.name)) : [];
  const rows: (SourceTypeField & { type: string })[] = [];
  for (const t of types) for (const f of t.fields) if (t.broker || !shared.includes(f.name)) rows.push({ ...f, type: t.type });
  for (const f of http[0]?.fields ?? []) if (shared.includes(f.name)) rows.push({ ...f, type: COMMON });
  printTable(out, rows, [
    { title: 'type', value: (r) => r.type },
    { title: 'field', value: (r) => r.name },
    { title: 'value', value: (r) => r.value },
    { title: 'required', value: (r) => (r.required ? 'yes' : 'no') },
    { title: 'secret', value: (r) => (r.secret ? 'secret' : '') },
    { title: 'default', value: (r) => (r.default === undefined ? '' : JSON.stringify(r.default)) },
  ]);
}

export async function sourceTypesCommand(values: { server?: string; json?: boolean }, only: string | undefined, out: Out): Promise<number> {
  const server = serverOf(values);
  let response: Response;
  try {
    // The document is public: no token needed to ask what a server accepts.
    response = await fetch(`${server}/api/v1/openapi.json`);
  } catch (error) {
    throw new CliError(`cannot reach hookrelay at ${server}: ${(error as Error & { cause?: Error }).cause?.message ?? (error as Error).message}`, 1);
  }
  if (!response.ok) throw new CliError(`GET /api/v1/openapi.json failed (${response.status})`, 1);
  let types = sourceTypesOf(await response.json());
  if (only !== undefined) {
    types = types.filter((t) => t.type === only);
    if (types.length === 0) throw new CliError(`unknown source type ${JSON.stringify(only)}: run "hookrelay source types" for the list`, 2);
  }
  printSourceTypes(out, types, values.json === true);
  return 0;
}
