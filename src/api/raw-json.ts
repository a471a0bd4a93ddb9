import { randomBytes } from 'node:crypto';

/**
 * JSON text written into a response as it is, never parsed into JS values: a stored payload keeps every digit of
 * `820982911946154508`, `1.0` and `-0`, its escapes and its whitespace. (`JSON.rawJSON` does this natively from
 * Node 21; hookrelay also runs on Node 20.)
 */
export class RawJson {
  constructor(readonly text: string) {}

  /** Inside `serializeJson`: a placeholder swapped for the text afterwards. Anywhere else: the parsed value. */
  toJSON(): unknown {
    if (collected === null) return JSON.parse(this.text);
    collected.push(this.text);
    return `${MARK}${collected.length - 1}`;
  }
}

// A placeholder is a string starting with NUL, which JSON.stringify writes as the escape `\u0000`; the per-process
// nonce keeps a client's own string from ever matching one.
const NONCE = randomBytes(12).toString('hex');
const MARK = `\u0000hookrelay-raw-${NONCE}-`;
const PLACEHOLDER = new RegExp(`"\\\\u0000hookrelay-raw-${NONCE}-(\\d+)"`, 'g');
let collected: string[] | null = null;

/** `JSON.stringify`, with every `RawJson` in `value` written as its text. */
export function serializeJson(value: unknown): string {
  const outer = collected;
  const raws: string[] = [];
  collected = raws;
  try {
    const text = JSON.stringify(value) as string | undefined;
    if (text === undefined) return '';
    if (raws.length === 0) return text;
    return text.replace(PLACEHOLDER, (match, index: string) => raws[Number(index)] ?? match);
  } finally {
    collected = outer;
  }
}
