import { randomFillSync } from 'node:crypto';

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const RANDOM_CHARS = 14;

let lastMs = 0;
let counter = 0;
// Random bytes are drawn in bulk: one syscall per ~290 ids instead of one per id.
const pool = Buffer.alloc(4096);
let poolAt = pool.length;

function base62(value: number, width: number): string {
  let out = '';
  for (let i = 0; i < width; i++) {
    out = ALPHABET[value % 62] + out;
    value = Math.floor(value / 62);
  }
  return out;
}

function randomChars(count: number): string {
  let out = '';
  // 248 = 4 × 62: bytes at or above it are skipped so every character is equally likely.
  while (out.length < count) {
    if (poolAt >= pool.length) {
      randomFillSync(pool);
      poolAt = 0;
    }
    const byte = pool[poolAt++];
    if (byte < 248) out += ALPHABET[byte % 62];
  }
  return out;
}

/**
 * Time-sortable ids (`msg_2Xk…`): 8 base62 chars of milliseconds, 3 of a per-ms counter, 14 random (83 bits).
 * Sorting ids as strings sorts by creation time, which cursor pagination relies on.
 */
export function newId(prefix: string, now = Date.now()): string {
  if (now === lastMs) counter++;
  else {
    lastMs = now;
    counter = 0;
  }
  return `${prefix}_${base62(now, 8)}${base62(counter % 238_328, 3)}${randomChars(RANDOM_CHARS)}`;
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
