import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import fc from 'fast-check';
import { ERRORS } from '../../src/domain/errors.js';

/**
 * Shared parts of the property-based fuzz tests: a time-boxed runner that reports how many cases ran, the
 * check every answer must pass, and arbitraries for hostile JSON text, strings and header values.
 */

/** Milliseconds each property may run; `HOOKRELAY_FUZZ_MS` raises it for a longer local soak. */
export const budgetMs = (defaultMs: number) => Number(process.env.HOOKRELAY_FUZZ_MS ?? defaultMs);

/** One seed per file run; `HOOKRELAY_FUZZ_SEED` replays a failure (the diagnostic and the failure report print it). */
export const SEED = Number(process.env.HOOKRELAY_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));

/**
 * Runs `predicate` over `arbitrary` until `numRuns` cases or `timeMs` have passed, whichever is first; fails the
 * test with fast-check's report (seed, counterexample, shrunk) when a case fails. The predicate returns the HTTP
 * statuses it saw, reported as a histogram next to the number of cases, which is returned.
 */
export async function fuzz<T>(
  t: TestContext,
  name: string,
  arbitrary: fc.Arbitrary<T>,
  predicate: (value: T) => Promise<number[] | void>,
  options: { timeMs: number; numRuns?: number },
): Promise<number> {
  let running: Promise<unknown> | null = null;
  const statuses = new Map<number, number>();
  const run = async (value: T) => {
    for (const status of (await predicate(value)) ?? []) statuses.set(status, (statuses.get(status) ?? 0) + 1);
  };
  const started = Date.now();
  const details = await fc.check(
    fc.asyncProperty(arbitrary, (value) => (running = run(value))),
    { seed: SEED, numRuns: options.numRuns ?? 100_000, plugins: [fc.interruptAfterTimeLimit(options.timeMs)] },
  );
  // An interrupted case keeps running; let it finish before the relay it talks to is closed.
  await (running as Promise<unknown> | null)?.catch(() => {});
  const histogram = [...statuses].sort(([a], [b]) => a - b).map(([status, count]) => `${status}×${count}`).join(' ');
  t.diagnostic(`${name}: ${details.numRuns} cases in ${Date.now() - started} ms (seed ${SEED}); statuses ${histogram || 'not recorded'}`);
  if (details.failed) {
    const cause = details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance);
    throw new Error(`${(await fc.asyncDefaultReportMessage(details)) ?? `${name} failed`}\nFailure: ${cause}`);
  }
  assert.ok(details.numRuns > 0, `${name}: no case ran within ${options.timeMs} ms`);
  return details.numRuns;
}

export interface Answer {
  status: number;
  body: any;
  text: string;
}

/**
 * What every answer to any input must be: no 5xx, no dropped connection, and every 4xx in a documented shape —
 * 422 as `{detail: [{loc, msg, type}]}`, the rest as `{code, detail}` with a code whose status is this one.
 */
export function assertWellFormed(answer: Answer, what: string): void {
  assert.ok(answer.status >= 200 && answer.status < 500, `${what} → ${answer.status} ${answer.text.slice(0, 500)}`);
  if (answer.status < 400) return;
  if (answer.status === 422) {
    assert.ok(Array.isArray(answer.body?.detail) && answer.body.detail.length > 0, `${what} → 422 without issues: ${answer.text.slice(0, 500)}`);
    for (const issue of answer.body.detail) {
      assert.ok(Array.isArray(issue.loc) && typeof issue.msg === 'string' && typeof issue.type === 'string', `${what} → malformed issue ${JSON.stringify(issue)}`);
    }
    return;
  }
  const code = answer.body?.code as keyof typeof ERRORS | undefined;
  assert.ok(code && ERRORS[code], `${what} → ${answer.status} with an undocumented code: ${answer.text.slice(0, 500)}`);
  assert.equal(ERRORS[code].status, answer.status, `${what} → code ${code} with status ${answer.status}`);
  assert.equal(typeof answer.body.detail, 'string', `${what} → no detail: ${answer.text.slice(0, 500)}`);
}

// ---- strings ------------------------------------------------------------------------------------

/** Strings that have broken parsers, stores and comparisons before. */
const NASTY_STRINGS = [
  '',
  ' ',
  '\u0000',
  'a\u0000b',
  '\ud800',
  'x\udc00',
  '\ufeff',
  '\u202e',
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'hasOwnProperty',
  '../../etc/passwd',
  '%00',
  '%ZZ',
  "'; DROP TABLE app; --",
  '${jndi:ldap://x}',
  '<script>',
  '\\',
  '"',
  '\r\n',
  'é',
  '😀',
  '𝕳',
  'whsec_',
  'app_',
  'a'.repeat(257),
  'b'.repeat(5000),
];

export const nastyString: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.string({ maxLength: 40 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary-ascii', maxLength: 40 }) },
  { weight: 3, arbitrary: fc.constantFrom(...NASTY_STRINGS) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom(...NASTY_STRINGS), fc.string({ maxLength: 10 })).map(([a, b]) => a + b) },
);

/** A name that passes the id alphabet, so that validation reaches the fields after it. */
export const plausibleName = fc.stringMatching(/^[a-z][a-z0-9._-]{0,20}$/);

// ---- JSON text ----------------------------------------------------------------------------------

/** Number tokens JSON.parse turns into -0, 0 or a rounded value. */
const ODD_NUMBERS = ['-0', '1e308', '1e-999', '123456789012345678901234567890', '9007199254740993', '0.1e1', '5e-324'];
/** Number tokens JSON.parse turns into Infinity, which JSON.stringify writes as null. */
const OVERFLOWING = ['1e999', '-1e999', '1E400'];
/** Tokens that are not JSON at all. */
const NOT_JSON = ['01', '-', '1.', '.5', 'NaN', 'Infinity', '0x10', 'undefined', "'a'", '{', ']'];

const jsonString = nastyString.map((s) => JSON.stringify(s));

const scalarText: fc.Arbitrary<string> = fc.oneof(
  { weight: 20, arbitrary: jsonString },
  { weight: 10, arbitrary: fc.integer().map(String) },
  { weight: 5, arbitrary: fc.double({ noNaN: true, noDefaultInfinity: true }).map((n) => JSON.stringify(n)) },
  { weight: 5, arbitrary: fc.constantFrom(...ODD_NUMBERS) },
  { weight: 1, arbitrary: fc.constantFrom(...OVERFLOWING) },
  { weight: 5, arbitrary: fc.constantFrom('true', 'false', 'null') },
  { weight: 1, arbitrary: fc.constantFrom(...NOT_JSON) },
);

/** Deep nesting as text: around the 64-level limit, and far past it. */
export const deepText: fc.Arbitrary<string> = fc
  .tuple(fc.oneof(fc.integer({ min: 60, max: 70 }), fc.integer({ min: 70, max: 20_000 })), fc.boolean())
  .map(([depth, arrays]) => (arrays ? '['.repeat(depth) + ']'.repeat(depth) : '{"a":'.repeat(depth) + '1' + '}'.repeat(depth)));

const keyText = fc.oneof({ weight: 3, arbitrary: jsonString }, { weight: 1, arbitrary: fc.constantFrom('"__proto__"', '"constructor"', '"prototype"', '"a"') });

const { value: shallowText, object: shallowObjectText } = fc.letrec<{ value: string; array: string; object: string }>((tie) => ({
  value: fc.oneof({ depthSize: 'small', withCrossShrink: true }, scalarText, tie('array'), tie('object')),
  array: fc.array(tie('value'), { maxLength: 5 }).map((items) => `[${items.join(',')}]`),
  object: fc.array(fc.tuple(keyText, tie('value')), { maxLength: 6 }).map((entries) => `{${entries.map(([k, v]) => `${k}:${v}`).join(',')}}`),
}));

/** Any JSON value as text, with hostile strings, numbers, keys (duplicated, `__proto__`) and, now and then, deep nesting. */
export const jsonText: fc.Arbitrary<string> = fc.oneof({ weight: 10, arbitrary: shallowText }, { weight: 1, arbitrary: deepText });

/** A JSON object whose text is `jsonText`-hostile inside. */
export const jsonObjectText: fc.Arbitrary<string> = fc.oneof({ weight: 10, arbitrary: shallowObjectText }, { weight: 1, arbitrary: deepText.map((deep) => `{"deep":${deep}}`) });

/**
 * A request body object with these fields, each absent, plausible (from `fields`) or hostile, sometimes with an
 * extra key: mostly valid enough for validation to reach the later fields.
 */
export function bodyText(fields: Record<string, fc.Arbitrary<string>>): fc.Arbitrary<string> {
  const field = (key: string, value: fc.Arbitrary<string>) => fc.option(value.map((v) => `${JSON.stringify(key)}:${v}`), { nil: null, freq: 6 });
  const build = (entries: (string | null)[]) => `{${entries.filter((e): e is string => e !== null).join(',')}}`;
  const clean = fc.tuple(...Object.entries(fields).map(([key, plausible]) => field(key, plausible))).map(build);
  const mixed = fc
    .tuple(
      fc.tuple(...Object.entries(fields).map(([key, plausible]) => field(key, fc.oneof({ weight: 4, arbitrary: plausible }, { weight: 1, arbitrary: jsonText })))),
      fc.option(fc.tuple(keyText, jsonText).map(([k, v]) => `${k}:${v}`), { nil: null, freq: 5 }),
    )
    .map(([entries, extra]) => build([...entries, extra]));
  return fc.oneof({ weight: 6, arbitrary: clean }, { weight: 6, arbitrary: mixed }, { weight: 1, arbitrary: jsonText }, { weight: 1, arbitrary: fc.string({ maxLength: 30 }) });
}

/** JSON text of a plausible value. */
export const text = <T>(arbitrary: fc.Arbitrary<T>): fc.Arbitrary<string> => arbitrary.map((value) => JSON.stringify(value));

/** Percent-encodes the UTF-8 bytes of `s` (lone surrogates included, which encodeURIComponent refuses) outside the unreserved set. */
export const percentEncode = (s: string): string => [...Buffer.from(s)].map((b) => (/[A-Za-z0-9_.~-]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : '%' + b.toString(16).toUpperCase().padStart(2, '0'))).join('');

/** Canonical form of a JSON text, as hookrelay stores a payload: parsed once, written once. */
export const canonical = (json: string): string => JSON.stringify(JSON.parse(json));
