/** Structure checks on JSON text, done by scanning it once, before (or instead of) parsing it. No I/O. */

/**
 * Deepest nesting of objects and arrays an API body may have. V8's JSON.parse copes with far more, but
 * JSON.stringify and schema validation recurse, and 10,000 levels overflow the stack.
 */
export const MAX_JSON_DEPTH = 64;

/**
 * Whether JSON text (e.g. a stored payload, which an inbound request may have nested arbitrarily) can be parsed and
 * written back without overflowing the stack: at most MAX_JSON_DEPTH levels of objects and arrays.
 */
/** `application/json` and the structured `+json` types (`application/vnd.api+json`, …), parameters allowed. */
export const isJsonContentType = (contentType: string): boolean => /^application\/(?:[\w.+-]*\+)?json\s*(?:;|$)/i.test(contentType);

export const nestsWithinLimit = (text: string): boolean => structureProblem(text, false) === null;

/**
 * One pass over the text before parsing it: nesting deeper than MAX_JSON_DEPTH, and (when asked) a number that
 * JSON.parse would turn into Infinity, which JSON.stringify then writes as null, silently changing the data.
 */
export function structureProblem(text: string, numbers: boolean): 'too_deep' | { overflow: string } | null {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      i = closingQuote(text, i);
    } else if (c === 0x5b /* [ */ || c === 0x7b /* { */) {
      if (++depth > MAX_JSON_DEPTH) return 'too_deep';
    } else if (c === 0x5d /* ] */ || c === 0x7d /* } */) {
      depth--;
    } else if (numbers && (c === 0x2d /* - */ || (c >= 0x30 && c <= 0x39))) {
      let end = i + 1;
      while (end < text.length && isNumberChar(text.charCodeAt(end))) end++;
      // Fewer than 16 characters and no exponent cannot overflow a double.
      if (end - i > 15 || /[eE]/.test(text.slice(i, end))) {
        const token = text.slice(i, end);
        if (Math.abs(Number(token)) === Infinity) return { overflow: token };
      }
      i = end - 1;
    }
  }
  return null;
}

const isNumberChar = (c: number) => (c >= 0x30 && c <= 0x39) || c === 0x2e || c === 0x65 || c === 0x45 || c === 0x2b || c === 0x2d;

/** Index of the quote that ends the string opening at `start` (a quote preceded by an even run of backslashes). */
function closingQuote(text: string, start: number): number {
  let from = start + 1;
  for (;;) {
    const quote = text.indexOf('"', from);
    if (quote === -1) return text.length;
    let backslashes = 0;
    while (text.charCodeAt(quote - 1 - backslashes) === 0x5c) backslashes++;
    if (backslashes % 2 === 0) return quote;
    from = quote + 1;
  }
}

const WHITESPACE = new Set([0x20, 0x09, 0x0a, 0x0d]);

/**
 * Byte offsets `[start, end)` of the value of member `name` of the JSON object `json` (the last one when the name
 * repeats, as JSON.parse keeps), or null when the object has no such member. `json` must already be known to be a
 * valid JSON object: this only walks it. It works on the bytes, since every character that structures JSON is ASCII
 * and no byte of a multi-byte UTF-8 sequence is, so the span can be cut out of the request body as sent.
 */
export function memberSpan(json: Uint8Array, name: string): { start: number; end: number } | null {
  let found: { start: number; end: number } | null = null;
  let i = skipSpace(json, 0);
  if (json[i] !== 0x7b /* { */) return null;
  i = skipSpace(json, i + 1);
  while (i < json.length && json[i] === 0x22 /* " */) {
    const keyEnd = closingQuoteByte(json, i) + 1;
    const key = decodeKey(json, i, keyEnd);
    i = skipSpace(json, keyEnd);
    i = skipSpace(json, i + 1); // the colon
    const start = i;
    const end = valueEnd(json, start);
    if (key === name) found = { start, end };
    i = skipSpace(json, end);
    if (json[i] !== 0x2c /* , */) break;
    i = skipSpace(json, i + 1);
  }
  return found;
}

function skipSpace(json: Uint8Array, i: number): number {
  while (i < json.length && WHITESPACE.has(json[i])) i++;
  return i;
}

function decodeKey(json: Uint8Array, start: number, end: number): string {
  const text = Buffer.from(json.buffer, json.byteOffset + start, end - start).toString('utf8');
  return text.includes('\\') ? (JSON.parse(text) as string) : text.slice(1, -1);
}

/** Offset just past the value (string, object, array, number or literal) that starts at `start`. */
function valueEnd(json: Uint8Array, start: number): number {
  const c = json[start];
  if (c === 0x22) return closingQuoteByte(json, start) + 1;
  if (c === 0x7b || c === 0x5b) {
    let depth = 0;
    for (let i = start; i < json.length; i++) {
      const b = json[i];
      if (b === 0x22) i = closingQuoteByte(json, i);
      else if (b === 0x7b || b === 0x5b) depth++;
      else if ((b === 0x7d || b === 0x5d) && --depth === 0) return i + 1;
    }
    return json.length;
  }
  let i = start;
  while (i < json.length && !WHITESPACE.has(json[i]) && json[i] !== 0x2c && json[i] !== 0x7d && json[i] !== 0x5d) i++;
  return i;
}

/** Index of the quote byte that ends the string opening at `start`. */
function closingQuoteByte(json: Uint8Array, start: number): number {
  let from = start + 1;
  for (;;) {
    const quote = json.indexOf(0x22, from);
    if (quote === -1) return json.length;
    let backslashes = 0;
    while (json[quote - 1 - backslashes] === 0x5c) backslashes++;
    if (backslashes % 2 === 0) return quote;
    from = quote + 1;
  }
}
