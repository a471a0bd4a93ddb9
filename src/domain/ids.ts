import { randomFillSync } from 'node:crypto';

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const RANDOM_CHARS = 14;

let lastMs = -1;
let counter = 0;
// Random bytes are drawn in bulk: one syscall per ~290 ids instead of one per id.
const pool = Buffer.alloc(4096);
let poolAt = pool.length;
const CODES = Buffer.from(ALPHABET, 'latin1');
/** Where an id is written before it becomes one string (prefixes are short ASCII names). */
const scratch = Buffer.alloc(64);
/** The 8 characters of `lastMs`, written once per millisecond. */
const timeChars = Buffer.alloc(8);

/** `value` in base62, `width` characters, written into `into` ending before `end`. */
function writeBase62(into: Buffer, end: number, value: number, width: number): void {
  for (let i = 1; i <= width; i++) {
    into[end - i] = CODES[value % 62];
    value = Math.floor(value / 62);
  }
}

function base62(value: number, width: number): string {
  const out = Buffer.alloc(width);
  writeBase62(out, width, value, width);
  return out.toString('latin1');
}

/**
 * Time-sortable ids (`msg_2Xk…`): 8 base62 chars of milliseconds, 3 of a per-ms counter, 14 random (83 bits).
 * Sorting ids as strings sorts by creation time, which cursor pagination relies on. Written into one buffer and read
 * as one string: every message and every attempt gets one, and joining 25 characters one by one made 25 strings.
 */
export function newId(prefix: string, now = Date.now()): string {
  if (now === lastMs) counter++;
  else {
    lastMs = now;
    counter = 0;
    writeBase62(timeChars, 8, now, 8);
  }
  let at = scratch.write(prefix, 0, 'latin1');
  scratch[at++] = 0x5f; // _
  timeChars.copy(scratch, at);
  at += 8;
  writeBase62(scratch, at + 3, counter % 238_328, 3);
  at += 3;
  // 248 = 4 × 62: bytes at or above it are skipped so every character is equally likely.
  for (const end = at + RANDOM_CHARS; at < end; ) {
    if (poolAt >= pool.length) {
      randomFillSync(pool);
      poolAt = 0;
    }
    const byte = pool[poolAt++];
    if (byte < 248) scratch[at++] = CODES[byte % 62];
  }
  return scratch.toString('latin1', 0, at);
}

/** The largest time 8 base62 characters hold (the year 8900). */
const MAX_ID_MS = 62 ** 8 - 1;

/**
 * The smallest id of `prefix` made at `ms` or later: ids of a time range are an id range (an index range scan). A time
 * before 1970 gives the floor of every id, one past the year 8900 the ceiling of every id made until then.
 */
export function idFloor(prefix: string, ms: number): string {
  return `${prefix}_${base62(ms > 0 ? Math.min(Math.floor(ms), MAX_ID_MS) : 0, 8)}`;
}

export const ID_PREFIX = {
  app: 'app',
  endpoint: 'ep',
  message: 'msg',
  attempt: 'atmpt',
  source: 'src',
  apiKey: 'key',
} as const;
