import { z } from 'zod';
import { HookrelayError, type FieldIssue } from '../domain/errors.js';

/** Parses request input with a zod schema; every problem becomes a 422 issue located like `['body', 'url']`. */
export function parse<S extends z.ZodType>(schema: S, value: unknown, where: 'body' | 'query' | 'path'): z.output<S> {
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
