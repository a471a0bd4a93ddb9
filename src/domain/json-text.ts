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
