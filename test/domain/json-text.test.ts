import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { memberSpan } from '../../src/domain/json-text.js';

const slice = (json: string, name: string) => {
  const bytes = Buffer.from(json);
  const span = memberSpan(bytes, name);
  return span === null ? null : bytes.subarray(span.start, span.end).toString('utf8');
};

describe('memberSpan: a member of a JSON object cut out of the bytes as sent', () => {
  it('keeps numbers, escapes and spaces exactly as written', () => {
    const payload = '{ "id" : 820982911946154508, "f": 1.0, "z": -0, "e": "caf\\u00e9 \\"q\\" }{", "u": "日本語 🎉", "n": [1e2, 12345678901234567890] }';
    assert.equal(slice(`{"eventType":"x","payload":${payload}}`, 'payload'), payload);
    assert.equal(slice(`{"payload":  ${payload}  ,"eventType":"x"}`, 'payload'), payload);
    assert.equal(slice(`\n{\t"payload"\r\n:\n${payload}\n}\n`, 'payload'), payload);
  });

  it('finds keys written with escapes, takes the last of repeated keys (as JSON.parse does), and answers null when absent', () => {
    assert.equal(slice('{"pay\\u006coad":{"a":1}}', 'payload'), '{"a":1}');
    assert.equal(slice('{"payload":{"a":1},"payload":{"b":2}}', 'payload'), '{"b":2}');
    assert.equal(slice('{"payloads":{"a":1},"x":{"payload":2}}', 'payload'), null);
    assert.equal(slice('{}', 'payload'), null);
    assert.equal(slice('[{"payload":1}]', 'payload'), null);
  });

  it('skips strings holding brackets, quotes and backslashes in members before the one asked for', () => {
    const before = JSON.stringify({ s: '}]"\\', t: '\\', u: ['{', '"'] });
    assert.equal(slice(`{"a":${before},"b":"\\\\","payload":[true,null,"x"]}`, 'payload'), '[true,null,"x"]');
    assert.equal(slice('{"a":"\\\\\\"","payload":false}', 'payload'), 'false');
  });

  it('gives back, for any object and any indentation, text that parses to each member', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue()), fc.constantFrom(undefined, 0, 1, 2, '\t', ' \r\n'), (object, indent) => {
        const json = JSON.stringify(object, null, indent as string | number | undefined);
        for (const key of Object.keys(object)) {
          const text = slice(json, key);
          assert.notEqual(text, null, `${key} in ${json}`);
          assert.deepEqual(JSON.parse(text!), JSON.parse(JSON.stringify(object[key])));
        }
      }),
      { numRuns: 300 },
    );
  });
});
