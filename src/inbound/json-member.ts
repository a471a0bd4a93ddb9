/** A body's top-level JSON members, read without parsing the whole body where its first members are enough. */

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COLON = 0x3a;
const COMMA = 0x2c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
/** How a scalar other than a string (number, true, false, null) may look; anything else needs the full parse. */
const SCALAR = /^(?:-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null)$/;

const isSpace = (c: number | undefined) => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;

function skipSpace(body: Uint8Array, i: number): number {
  while (isSpace(body[i])) i++;
  return i;
}

/** Where the string that opens at `start` (a quote) closes, and whether it holds escapes; null when it is not a valid one. */
function stringAt(body: Uint8Array, start: number): { end: number; escaped: boolean } | null {
  let escaped = false;
  for (let i = start + 1; i < body.length; i++) {
    const c = body[i];
    if (c === QUOTE) return { end: i, escaped };
    // JSON forbids raw control characters in strings: the full parse decides what such a body means.
    if (c < 0x20) return null;
    if (c === BACKSLASH) {
      escaped = true;
      i++;
    }
  }
  return null;
}

const text = (body: Buffer, start: number, end: number, encoding: 'utf8' | 'latin1' = 'utf8') => body.toString(encoding, start, end);

/** The string between the quotes at `start` and `end`; undefined when an escape in it is not valid JSON. */
function decode(body: Buffer, start: number, end: number, escaped: boolean): string | undefined {
  if (!escaped) return text(body, start + 1, end);
  // Escapes, and the checks of what follows each backslash, are the JSON parser's.
  try {
    return JSON.parse(text(body, start, end + 1)) as string;
  } catch {
    return undefined;
  }
}

/**
 * The value of the top-level member `name` when it is a string, read from the object's leading members: found among
 * the members before the first object or array value, it is returned without parsing (a webhook names its type first —
 * GitHub's `action`, a Standard Webhook's `type` — and the rest may be many kilobytes). `undefined` when the leading
 * members do not settle it.
 */
function leadingString(body: Buffer, name: string): string | undefined {
  let i = skipSpace(body, 0);
  if (body[i] !== OPEN_BRACE) return undefined;
  i = skipSpace(body, i + 1);
  while (body[i] === QUOTE) {
    const key = stringAt(body, i);
    const keyText = key && decode(body, i, key.end, key.escaped);
    if (!key || keyText === undefined) return undefined;
    const matches = keyText === name;
    i = skipSpace(body, key.end + 1);
    if (body[i] !== COLON) return undefined;
    i = skipSpace(body, i + 1);
    if (body[i] === QUOTE) {
      const value = stringAt(body, i);
      if (!value) return undefined;
      if (matches) return decode(body, i, value.end, value.escaped);
      i = value.end + 1;
    } else {
      const start = i;
      while (i < body.length && body[i] !== COMMA && body[i] !== CLOSE_BRACE && !isSpace(body[i])) i++;
      // An object or array value (or anything unexpected) is left to the full parse, as is a member of that name that is no string.
      if (matches || !SCALAR.test(text(body, start, i, 'latin1'))) return undefined;
    }
    i = skipSpace(body, i);
    if (body[i] !== COMMA) return undefined;
    i = skipSpace(body, i + 1);
  }
  return undefined;
}

/**
 * The string value of the top-level member `name` of a JSON object body; null when the body is not JSON, not an
 * object, or has no such string member. For a valid body with no repeated member names this is what a full parse gives.
 */
export function stringMember(body: Buffer, name: string): string | null {
  const leading = leadingString(body, name);
  if (leading !== undefined) return leading;
  try {
    const value = (JSON.parse(text(body, 0, body.byteLength)) as Record<string, unknown> | null)?.[name];
    return typeof value === 'string' ? value : null;
  } catch {
    return null;
  }
}
