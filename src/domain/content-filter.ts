import RE2 from 're2';

/**
 * Content filters: which messages an endpoint receives, decided on the message's payload and (for messages received
 * through a source) the provider's headers. The syntax is the JSON one Convoy's and Hookdeck's users know; the full
 * rules, and where hookrelay differs from both, are in docs/routing.md.
 *
 *   { "body": { "type": "invoice.paid", "data.amount": { "$gte": 1000 }, "$or": [ … ] }, "headers": { … } }
 *
 * A filter is validated and compiled once (per endpoint version) into a tree of closures; matching walks only the
 * paths the filter names. Regular expressions run on RE2, whose matching time is linear in the input, so no pattern
 * can make fan-out hang.
 */

/** What a filter is matched against: the payload parsed as JSON (undefined when it is not JSON) and the kept headers. */
export interface FilterSubject {
  body: unknown;
  headers: Readonly<Record<string, string>>;
}

export type ContentFilter = (subject: FilterSubject) => boolean;

/** Why a filter was refused, located inside the filter document (`['body', 'data', '$regex']`). */
export class FilterProblem extends Error {
  constructor(
    readonly path: (string | number)[],
    readonly msg: string,
  ) {
    super(`${path.join('.')}: ${msg}`);
  }
}

export const FILTER_LIMITS = {
  /** Serialized size of one filter document. */
  bytes: 16_384,
  /** Nesting of objects, `$and`/`$or`/`$not` included. */
  depth: 16,
  /** Elements of one `$in`/`$nin`/`$and`/`$or` list. */
  list: 1_000,
  /** Length of one `$regex` pattern. */
  regex: 1_024,
} as const;

const SCOPES = ['body', 'headers'] as const;
const COMPARISONS = ['$eq', '$neq', '$gt', '$gte', '$lt', '$lte', '$in', '$nin', '$exist', '$regex', '$not'] as const;
const LOGICAL = ['$and', '$or', '$not'] as const;

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Test = (value: unknown) => boolean;
/** A condition on one value; `missing` says whether it holds where the path leads nowhere. */
interface Condition {
  test: Test;
  missing: boolean;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isScalar = (v: unknown): v is string | number | boolean | null => v === null || ['string', 'number', 'boolean'].includes(typeof v);

/**
 * Validates a filter document and compiles it. Throws `FilterProblem` naming the first bad operator, path or value.
 * `null` (no filter) is not a filter: callers store null instead.
 */
export function compileFilter(doc: unknown): ContentFilter {
  if (!isObject(doc)) throw new FilterProblem([], 'must be an object with "body" and/or "headers"');
  if (JSON.stringify(doc).length > FILTER_LIMITS.bytes) throw new FilterProblem([], `must be at most ${FILTER_LIMITS.bytes} characters of JSON`);
  const keys = Object.keys(doc);
  if (keys.length === 0) throw new FilterProblem([], 'must name "body" and/or "headers"');
  const parts: ContentFilter[] = [];
  for (const key of keys) {
    if (!(SCOPES as readonly string[]).includes(key)) throw new FilterProblem([key], `unknown scope (expected ${SCOPES.map((s) => `"${s}"`).join(' or ')})`);
    const match = compileDocument(doc[key], [key], 1, key === 'headers');
    parts.push(key === 'body' ? (s) => match(s.body) : (s) => match(s.headers));
  }
  return parts.length === 1 ? parts[0] : (s) => parts.every((part) => part(s));
}

/** A filter document: field conditions and `$and`/`$or`/`$not`, all of which must hold. */
function compileDocument(doc: unknown, at: (string | number)[], depth: number, headers: boolean): Test {
  if (depth > FILTER_LIMITS.depth) throw new FilterProblem(at, `nests deeper than ${FILTER_LIMITS.depth} levels`);
  if (!isObject(doc)) throw new FilterProblem(at, 'must be an object of fields and operators');
  const tests: Test[] = [];
  for (const [key, value] of Object.entries(doc)) {
    const here = [...at, key];
    if (key.startsWith('$')) {
      if (!(LOGICAL as readonly string[]).includes(key)) throw new FilterProblem(here, `unknown operator (where a field is expected: ${LOGICAL.join(', ')}; ${COMPARISONS.join(', ')} go inside a field)`);
      if (key === '$not') {
        const inner = compileDocument(value, here, depth + 1, headers);
        tests.push((v) => !inner(v));
        continue;
      }
      const items = list(value, here).map((item, i) => compileDocument(item, [...here, i], depth + 1, headers));
      if (items.length === 0) throw new FilterProblem(here, 'must list at least one filter');
      tests.push(key === '$and' ? (v) => items.every((t) => t(v)) : (v) => items.some((t) => t(v)));
      continue;
    }
    const path = fieldPath(key, here, headers);
    const condition = compileValue(value, here, depth + 1, headers);
    tests.push((v) => holdsAt(v, path, 0, condition));
  }
  return tests.length === 1 ? tests[0] : (v) => tests.every((t) => t(v));
}

/**
 * A dotted key is a path (`"data.object.id"`); a segment of digits also indexes an array. Header names are
 * case-insensitive, so they are matched lower-cased (the stored names are).
 */
function fieldPath(key: string, at: (string | number)[], headers: boolean): string[] {
  if (key === '') throw new FilterProblem(at, 'a field name must not be empty');
  if (headers) return [key.toLowerCase()];
  const path = key.split('.');
  if (path.some((segment) => segment === '')) throw new FilterProblem(at, 'a dotted path must not have empty segments');
  return path;
}

/**
 * Follows `path` from `value`. An array on the way is searched: the condition holds if it holds for any element
 * (a digit segment picks one element instead). A path that leads nowhere gives the condition's `missing` answer.
 */
function holdsAt(value: unknown, path: string[], i: number, condition: Condition): boolean {
  if (i === path.length) return condition.test(value);
  const segment = path[i];
  if (Array.isArray(value)) {
    if (/^\d+$/.test(segment)) {
      const index = Number(segment);
      return index < value.length ? holdsAt(value[index], path, i + 1, condition) : condition.missing;
    }
    if (value.length === 0) return condition.missing;
    // Negative conditions ($neq, $nin, $exist: false) must hold for every element, positive ones for one.
    return condition.missing ? value.every((item) => holdsAt(item, path, i, condition)) : value.some((item) => holdsAt(item, path, i, condition));
  }
  if (!isObject(value) || !Object.prototype.hasOwnProperty.call(value, segment)) return condition.missing;
  return holdsAt(value[segment], path, i + 1, condition);
}

/** The value of a field: a literal (equality), an operator object, or a nested document. */
function compileValue(value: unknown, at: (string | number)[], depth: number, headers: boolean): Condition {
  if (depth > FILTER_LIMITS.depth) throw new FilterProblem(at, `nests deeper than ${FILTER_LIMITS.depth} levels`);
  if (isScalar(value) || Array.isArray(value)) return { test: equals(literal(value, at)), missing: false };
  if (!isObject(value)) throw new FilterProblem(at, 'must be a JSON value');
  const keys = Object.keys(value);
  const operators = keys.filter((k) => k.startsWith('$'));
  if (operators.length === 0) {
    if (headers) throw new FilterProblem(at, 'header values are strings: use a string or an operator object');
    const nested = compileDocument(value, at, depth, headers);
    // An array of objects matches when one of its objects does.
    return { test: (v) => (isObject(v) ? nested(v) : Array.isArray(v) && v.some((item) => isObject(item) && nested(item))), missing: false };
  }
  if (operators.length !== keys.length) throw new FilterProblem(at, 'must not mix operators ($…) and field names in one object');
  const conditions = keys.map((op) => compileOperator(op, value[op], [...at, op], depth, headers));
  if (conditions.length === 1) return conditions[0];
  return { test: (v) => conditions.every((c) => c.test(v)), missing: conditions.every((c) => c.missing) };
}

function compileOperator(op: string, operand: unknown, at: (string | number)[], depth: number, headers: boolean): Condition {
  switch (op) {
    case '$eq':
      return { test: equals(literal(operand, at)), missing: false };
    case '$neq': {
      const eq = equals(literal(operand, at));
      return { test: (v) => !eq(v), missing: true };
    }
    case '$gt':
    case '$gte':
    case '$lt':
    case '$lte':
      return { test: compare(op, orderable(operand, at)), missing: false };
    case '$in':
    case '$nin': {
      const tests = list(operand, at).map((item, i) => equals(literal(item, [...at, i])));
      const any = (v: unknown) => tests.some((t) => t(v)) || (Array.isArray(v) && v.some((item) => tests.some((t) => t(item))));
      return op === '$in' ? { test: any, missing: false } : { test: (v) => !any(v), missing: true };
    }
    case '$exist': {
      if (typeof operand !== 'boolean') throw new FilterProblem(at, 'must be true or false');
      return { test: () => operand, missing: !operand };
    }
    case '$regex': {
      const re = regex(operand, at);
      const one = (v: unknown) => typeof v === 'string' && re.test(v);
      return { test: (v) => one(v) || (Array.isArray(v) && v.some(one)), missing: false };
    }
    case '$not': {
      const inner = compileValue(operand, at, depth + 1, headers);
      return { test: (v) => !inner.test(v), missing: !inner.missing };
    }
    default:
      throw new FilterProblem(at, `unknown operator (expected one of ${COMPARISONS.join(', ')})`);
  }
}

function list(value: unknown, at: (string | number)[]): unknown[] {
  if (!Array.isArray(value)) throw new FilterProblem(at, 'must be an array');
  if (value.length > FILTER_LIMITS.list) throw new FilterProblem(at, `must have at most ${FILTER_LIMITS.list} elements`);
  return value;
}

function literal(value: unknown, at: (string | number)[]): Json {
  if (isScalar(value)) return value;
  if (Array.isArray(value)) return value.map((item, i) => literal(item, [...at, i]));
  if (isObject(value)) {
    const bad = Object.keys(value).find((k) => k.startsWith('$'));
    if (bad !== undefined) throw new FilterProblem([...at, bad], 'an operator is not allowed inside a literal value');
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, literal(v, [...at, k])]));
  }
  throw new FilterProblem(at, 'must be a JSON value');
}

function orderable(value: unknown, at: (string | number)[]): number | string {
  if (typeof value === 'number' || typeof value === 'string') return value;
  throw new FilterProblem(at, 'must be a number or a string');
}

/**
 * Equality of a literal with a value: scalars by `===` (numbers as doubles), arrays element by element, objects key
 * by key. A scalar literal also matches an array holding it ("array contains").
 */
function equals(expected: Json): Test {
  if (isScalar(expected)) return (v) => v === expected || (Array.isArray(v) && v.includes(expected));
  return (v) => deepEqual(expected, v) || (Array.isArray(v) && !Array.isArray(expected) && v.some((item) => deepEqual(expected, item)));
}

function deepEqual(a: Json, b: unknown): boolean {
  if (isScalar(a)) return a === b;
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((item, i) => deepEqual(item, b[i]));
  if (!isObject(b)) return false;
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => Object.prototype.hasOwnProperty.call(b, k) && deepEqual(a[k], b[k]));
}

/** Numbers compare with numbers, strings with strings (by UTF-16 code units, which orders ISO 8601 timestamps); nothing else matches. */
function compare(op: '$gt' | '$gte' | '$lt' | '$lte', bound: number | string): Test {
  const one = (v: unknown): boolean => {
    if (typeof v !== typeof bound) return false;
    const x = v as number | string;
    return op === '$gt' ? x > bound : op === '$gte' ? x >= bound : op === '$lt' ? x < bound : x <= bound;
  };
  return (v) => one(v) || (Array.isArray(v) && v.some(one));
}

/**
 * One compiled RE2 per pattern, shared by every filter that uses it, remembering its last answer: the endpoints of an
 * app often test the same field with the same pattern, and one accept hands them all the same string. A call into
 * RE2 costs about 0.8 µs (the string is converted to UTF-8 each time); a repeat costs a comparison.
 */
class SharedRegex {
  private lastInput: string | undefined;
  private lastResult = false;
  constructor(private readonly re: RE2) {}

  test(input: string): boolean {
    if (input === this.lastInput) return this.lastResult;
    const result = this.re.test(input);
    // Only short strings are remembered, so the cache never holds on to large payload fields.
    if (input.length <= 4096) {
      this.lastInput = input;
      this.lastResult = result;
    }
    return result;
  }
}

/** Patterns kept compiled at most; past it the cache starts again. */
const MAX_PATTERNS = 10_000;
const patterns = new Map<string, SharedRegex>();

function regex(pattern: unknown, at: (string | number)[]): SharedRegex {
  if (typeof pattern !== 'string') throw new FilterProblem(at, 'must be a string (an RE2 regular expression)');
  if (pattern.length > FILTER_LIMITS.regex) throw new FilterProblem(at, `must be at most ${FILTER_LIMITS.regex} characters`);
  const known = patterns.get(pattern);
  if (known) return known;
  let re: RE2;
  try {
    re = new RE2(pattern, 'u');
  } catch (error) {
    throw new FilterProblem(at, `is not a regular expression RE2 accepts (no backreferences or lookaround): ${(error as Error).message}`);
  }
  if (patterns.size >= MAX_PATTERNS) patterns.clear();
  const shared = new SharedRegex(re);
  patterns.set(pattern, shared);
  return shared;
}

/**
 * Parses a payload for matching only: the stored and delivered bytes are never touched. Not JSON (or not valid
 * UTF-8 JSON) gives `undefined`, on which every body condition sees missing fields.
 */
export function parsePayloadCopy(payload: Uint8Array | null): unknown {
  if (payload === null || payload.byteLength === 0) return undefined;
  try {
    return JSON.parse(Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('utf8'));
  } catch {
    return undefined;
  }
}
