import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import RE2 from 're2';
import { invalid } from '../domain/errors.js';
import type { EventType } from '../domain/types.js';
import type { Store } from '../store/store.js';

/**
 * Event type schemas: a message's payload checked against the JSON Schema of its event type (the `schemas` map's
 * latest version, `{"1": {…}, "2": {…}}` → "2"), with ajv. Each schema version is compiled once; `pattern` keywords
 * run on RE2, so a schema's regular expressions cannot hang the process either. See docs/routing.md.
 */

/** Where a payload fails its schema: a path inside the payload and ajv's message. */
export interface SchemaIssue {
  path: (string | number)[];
  msg: string;
}

/** A schema refused at save, located inside the `schemas` map (`['1', 'properties', 'id', 'type']`). */
export class SchemaProblem extends Error {
  constructor(
    readonly path: (string | number)[],
    readonly msg: string,
  ) {
    super(`${path.join('.')}: ${msg}`);
  }
}

// ajv-formats is CommonJS with a default export; under NodeNext it arrives as the module object.
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as (ajv: Ajv) => Ajv;

function newAjv(): Ajv {
  // addUsedSchema: false — two event types may reuse one `$id`; each schema is compiled on its own.
  const ajv = new Ajv({ allErrors: false, strict: false, addUsedSchema: false, code: { regExp: RE2 as never } });
  addFormats(ajv);
  return ajv;
}

/** The latest version of a schemas map: the greatest numeric key (Svix numbers versions "1", "2", …), else the last key. */
export function latestSchema(schemas: Record<string, unknown> | null): { version: string; schema: unknown } | null {
  if (!schemas) return null;
  const versions = Object.keys(schemas);
  if (versions.length === 0) return null;
  const numeric = versions.filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(a) - Number(b));
  const version = numeric.length > 0 ? numeric[numeric.length - 1] : versions[versions.length - 1];
  return { version, schema: schemas[version] };
}

/** ajv's failure as a path into the payload: `instancePath` (a JSON pointer), plus the missing property of `required`. */
function issueOf(error: ErrorObject): SchemaIssue {
  const path: (string | number)[] = error.instancePath
    .split('/')
    .slice(1)
    .map((segment) => segment.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((segment) => (/^\d+$/.test(segment) ? Number(segment) : segment));
  if (error.keyword === 'required') path.push((error.params as { missingProperty: string }).missingProperty);
  return { path, msg: error.message ?? `fails ${error.keyword}` };
}

/** Compiled schemas kept at most; past it the cache starts again. */
const MAX_COMPILED = 1_000;

/**
 * Checks payloads against their event type's schema. Event types are read through a short-lived cache (`ttlMs`),
 * so an accept costs no extra query; this process forgets an event type it writes at once, others within `ttlMs`.
 */
export class PayloadSchemas {
  private ajv = newAjv();
  private readonly compiled = new Map<string, ValidateFunction>();
  private readonly eventTypes = new Map<string, { until: number; eventType: EventType | null }>();

  constructor(
    private readonly store: Pick<Store, 'getEventType'>,
    private readonly now: () => number = Date.now,
    private readonly ttlMs = 5_000,
  ) {}

  /** Validates every version of a schemas map at save; throws `SchemaProblem` for the first one ajv refuses. */
  static check(schemas: Record<string, unknown>): void {
    const ajv = newAjv();
    for (const [version, schema] of Object.entries(schemas)) {
      if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) {
        if (typeof schema !== 'boolean') throw new SchemaProblem([version], 'must be a JSON Schema (an object or a boolean)');
      }
      try {
        ajv.compile(schema as object);
      } catch (error) {
        throw new SchemaProblem([version], `is not a JSON Schema ajv can compile: ${(error as Error).message}`);
      }
    }
  }

  /** Drops what this process knows of an event type (after writing it). */
  forget(name: string): void {
    this.eventTypes.delete(name);
  }

  /** The event type as cached (read through the store at most once per `ttlMs`). */
  async eventType(name: string): Promise<EventType | null> {
    const now = this.now();
    const known = this.eventTypes.get(name);
    if (known && known.until > now) return known.eventType;
    const eventType = await this.store.getEventType(name);
    if (this.eventTypes.size >= MAX_COMPILED * 10) this.eventTypes.clear();
    this.eventTypes.set(name, { until: now + this.ttlMs, eventType });
    return eventType;
  }

  /**
   * For a message created through the API: when its event type asks for validation (`validatePayloads`), a payload
   * failing the latest schema is a 422 located inside `body.payload`. Costs a map lookup when nothing is asked.
   */
  async enforce(eventTypeName: string, payload: unknown): Promise<void> {
    const eventType = await this.eventType(eventTypeName);
    if (!eventType?.validatePayloads) return;
    const issue = this.validate(eventType, payload);
    if (issue) throw invalid(['body', 'payload', ...issue.path], issue.msg);
  }

  /**
   * Checks a payload against the latest schema of `eventType`: null when it passes or there is no schema, otherwise
   * where it fails. `payload` is the parsed JSON, or `undefined` when the body is not JSON (which fails any schema).
   */
  validate(eventType: EventType, payload: unknown): SchemaIssue | null {
    const latest = latestSchema(eventType.schemas);
    if (!latest) return null;
    if (payload === undefined) return { path: [], msg: 'is not JSON, and the event type has a JSON Schema' };
    const key = `${eventType.name}\0${eventType.updatedAt}\0${latest.version}`;
    let validate = this.compiled.get(key);
    if (!validate) {
      if (this.compiled.size >= MAX_COMPILED) {
        // Start again with a fresh ajv too: it keeps its own references to what it compiled.
        this.compiled.clear();
        this.ajv = newAjv();
      }
      try {
        validate = this.ajv.compile(latest.schema as object);
      } catch (error) {
        // Saved before validation at save existed, or by hand: the schema cannot judge anything.
        return { path: [], msg: `the event type's schema version ${latest.version} does not compile: ${(error as Error).message}` };
      }
      this.compiled.set(key, validate);
    }
    if (validate(payload)) return null;
    return issueOf(validate.errors![0]);
  }
}
