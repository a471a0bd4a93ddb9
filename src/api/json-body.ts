import { HookrelayError } from '../domain/errors.js';
import { MAX_JSON_DEPTH, memberSpan, structureProblem } from '../domain/json-text.js';

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Parses an API request body: UTF-8 only, at most MAX_JSON_DEPTH levels deep, numbers within a double's range. */
export function parseJsonBody(body: Buffer, contentType: string | undefined): unknown {
  const charset = /;\s*charset\s*=\s*"?([^";\s]+)/i.exec(contentType ?? '')?.[1];
  if (charset && !/^utf-?8$/i.test(charset)) {
    throw new HookrelayError('unsupported_media_type', `the request body must be UTF-8 JSON, not charset=${charset.slice(0, 40)}`);
  }
  let text: string;
  try {
    text = utf8.decode(body);
  } catch {
    throw new HookrelayError('invalid_json', 'the request body is not valid UTF-8');
  }
  if (text.trim() === '') return undefined;
  const problem = structureProblem(text, true);
  if (problem === 'too_deep') throw new HookrelayError('json_too_deep', `the request body nests objects and arrays more than ${MAX_JSON_DEPTH} levels deep`);
  if (problem) throw new HookrelayError('invalid_json', `the number ${problem.overflow.length > 40 ? problem.overflow.slice(0, 40) + '…' : problem.overflow} is too large for a JSON number (a 64-bit double)`);
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new HookrelayError('invalid_json', `the request body is not valid JSON: ${(error as Error).message}`);
  }
}

/**
 * The bytes of one member of a JSON object body exactly as the client sent them (escapes, whitespace, `1.0`, integers
 * beyond 2^53), cut out of the body instead of re-serialised from the parsed value. The body must have parsed.
 */
export function memberBytes(body: Buffer, name: string): Buffer | null {
  const span = memberSpan(body, name);
  return span === null ? null : body.subarray(span.start, span.end);
}
