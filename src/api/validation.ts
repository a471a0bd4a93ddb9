import { z } from 'zod';
import { HookrelayError, type FieldIssue } from '../domain/errors.js';

/**
 * Parses request input with a zod schema; every problem becomes a 422 issue located like `['body', 'url']`.
 * `opaque` names top-level body fields kept as bytes (a message payload), which the storable-text check skips.
 */
export function parse<S extends z.ZodType>(schema: S, value: unknown, where: 'body' | 'query' | 'path', opaque: readonly string[] = []): z.output<S> {
  const unstorable = where === 'path' ? null : firstUnstorable(value, opaque);
  if (unstorable) {
    const loc = [where, ...unstorable.path];
    throw new HookrelayError('validation', `${loc.join('.')}: ${unstorable.msg}`, [{ loc, msg: unstorable.msg, type: 'value_error' }]);
  }
  const result = schema.safeParse(value ?? (where === 'body' ? undefined : {}));
  if (result.success) return result.data;
  const issues: FieldIssue[] = result.error.issues.map((issue) => ({
    loc: [where, ...issue.path.map((p) => (typeof p === 'symbol' ? String(p) : p))],
    msg: issue.message,
    type: issue.code,
  }));
  const first = issues[0];
  throw new HookrelayError('validation', `${first.loc.join('.')}: ${first.msg}`, issues);
}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** Why a string cannot be stored as text: PostgreSQL refuses NUL in text and jsonb, and unpaired surrogates are not UTF-8. */
function textProblem(text: string): string | null {
  if (text.includes('\u0000')) return 'must not contain NUL (\\u0000) characters';
  if (LONE_SURROGATE.test(text)) return 'must not contain unpaired UTF-16 surrogates';
  return null;
}

/**
 * The first string or key in `value` that no store can keep as text, or a `__proto__` key (which zod and plain
 * assignment would turn into a prototype, silently dropping it). Iterative: the JSON parser bounds depth, not this.
 */
function firstUnstorable(value: unknown, opaque: readonly string[]): { path: (string | number)[]; msg: string } | null {
  const stack: [unknown, (string | number)[]][] = [[value, []]];
  while (stack.length > 0) {
    const [item, path] = stack.pop()!;
    if (typeof item === 'string') {
      const problem = textProblem(item);
      if (problem) return { path, msg: problem };
    } else if (Array.isArray(item)) {
      for (let i = item.length - 1; i >= 0; i--) stack.push([item[i], [...path, i]]);
    } else if (item !== null && typeof item === 'object') {
      for (const [key, child] of Object.entries(item).reverse()) {
        if (path.length === 0 && opaque.includes(key)) continue;
        if (key === '__proto__') return { path: [...path, key], msg: '"__proto__" is not allowed as a key' };
        const problem = textProblem(key);
        if (problem) return { path: [...path, key], msg: `keys ${problem}` };
        stack.push([child, [...path, key]]);
      }
    }
  }
  return null;
}
