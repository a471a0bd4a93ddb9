import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_JSON_DEPTH, nestsWithinLimit, structureProblem } from '../../src/domain/json-text.js';
import type { Endpoint, Message } from '../../src/domain/types.js';
import { webhookArgumentJson } from '../../src/pipeline/destinations/temporal.js';

const nested = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);

describe('JSON structure scan', () => {
  it('counts nesting of objects and arrays, not brackets inside strings', () => {
    assert.equal(nestsWithinLimit(nested(MAX_JSON_DEPTH)), true);
    assert.equal(nestsWithinLimit(nested(MAX_JSON_DEPTH + 1)), false);
    assert.equal(nestsWithinLimit(`{"a":${nested(MAX_JSON_DEPTH - 1)}}`), true);
    assert.equal(nestsWithinLimit(JSON.stringify({ s: '[{'.repeat(1000), t: '\\"[[[', u: '\\\\' })), true);
    assert.equal(nestsWithinLimit(nested(1_000_000)), false);
  });

  it('finds numbers JSON.parse would turn into Infinity, and only those', () => {
    assert.deepEqual(structureProblem('{"a":[1e999]}', true), { overflow: '1e999' });
    assert.deepEqual(structureProblem(`[-${'9'.repeat(400)}]`, true), { overflow: `-${'9'.repeat(400)}` });
    for (const fine of ['[1e308, -1e-999, 123456789012345678901234567890, 0.5e1]', '{"n":"1e999"}', '[5e-324]']) assert.equal(structureProblem(fine, true), null, fine);
  });
});

describe('Temporal workflow argument', () => {
  const message = (payload: string) => ({ id: 'msg_1', eventType: 'e', contentType: 'application/json', payload: Buffer.from(payload), sourceId: null, headers: null }) as unknown as Message;
  const endpoint = { headers: {} } as unknown as Endpoint;

  it('hands over JSON nested deeper than the limit as base64 bytes, which the JSON converter could not encode', () => {
    const deep = nested(100_000);
    const data = (payload: string) => JSON.parse(webhookArgumentJson(message(payload), endpoint)).data;
    assert.equal(data(deep), Buffer.from(deep).toString('base64'));
    assert.deepEqual(data(nested(3)), [[[]]]);
  });
});
