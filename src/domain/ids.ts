import { randomBytes } from 'node:crypto';

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

let lastMs = 0;
let counter = 0;

function base62(value: bigint, width: number): string {
  let out = '';
  for (let i = 0; i < width; i++) {
    out = ALPHABET[Number(value % 62n)] + out;
    value /= 62n;
  }
  return out;
}

/**
 * Time-sortable ids (`msg_2Xk…`): 8 base62 chars of milliseconds, 3 of a per-ms counter, 14 random.
 * Sorting ids as strings sorts by creation time, which cursor pagination relies on.
 */
export function newId(prefix: string, now = Date.now()): string {
  if (now === lastMs) counter++;
  else {
    lastMs = now;
    counter = 0;
  }
  const random = BigInt('0x' + randomBytes(11).toString('hex'));
  return `${prefix}_${base62(BigInt(now), 8)}${base62(BigInt(counter), 3)}${base62(random, 14)}`;
}

/** The smallest id a record created at `ms` can have: lets `before`/`after` times become id cursors. */
export function idFloor(prefix: string, ms: number): string {
  return `${prefix}_${base62(BigInt(Math.max(0, ms)), 8)}`;
}

export const ID_PREFIX = {
  app: 'app',
  endpoint: 'ep',
  message: 'msg',
  attempt: 'atmpt',
  source: 'src',
} as const;
