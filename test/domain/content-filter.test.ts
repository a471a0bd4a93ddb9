import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileFilter, FilterProblem, parsePayloadCopy } from '../../src/domain/content-filter.js';

const order = {
  type: 'order.created',
  amount: 1250,
  currency: 'EUR',
  created: '2026-03-01T10:00:00Z',
  customer: { id: 'cus_1', email: 'ada@example.com', vip: true, note: null },
  tags: ['priority', 'gift'],
  items: [
    { sku: 'A-1', qty: 2, price: 500 },
    { sku: 'B-7', qty: 1, price: 250 },
  ],
};

const matches = (filter: unknown, body: unknown = order, headers: Record<string, string> = {}) => compileFilter(filter)({ body, headers });

describe('content filters: matching', () => {
  it('matches literals on nested paths, by nested objects or dotted keys alike', () => {
    assert.equal(matches({ body: { type: 'order.created' } }), true);
    assert.equal(matches({ body: { type: 'order.updated' } }), false);
    assert.equal(matches({ body: { customer: { id: 'cus_1', vip: true } } }), true);
    assert.equal(matches({ body: { 'customer.id': 'cus_1' } }), true);
    assert.equal(matches({ body: { 'customer.id': 'cus_2' } }), false);
    assert.equal(matches({ body: { 'customer.note': null } }), true, 'null is a value');
    assert.equal(matches({ body: { 'customer.missing': null } }), false, 'a missing field is not null');
    assert.equal(matches({ body: { amount: '1250' } }), false, 'no type coercion');
  });

  it('searches arrays: a scalar is contained, a nested document matches one element, a digit segment indexes', () => {
    assert.equal(matches({ body: { tags: 'gift' } }), true);
    assert.equal(matches({ body: { tags: 'sale' } }), false);
    assert.equal(matches({ body: { tags: ['priority', 'gift'] } }), true, 'an array literal equals the whole array');
    assert.equal(matches({ body: { tags: ['gift'] } }), false);
    assert.equal(matches({ body: { items: { sku: 'B-7', qty: 1 } } }), true);
    assert.equal(matches({ body: { items: { sku: 'B-7', qty: 2 } } }), false, 'both conditions on the same element');
    assert.equal(matches({ body: { 'items.sku': 'A-1' } }), true);
    assert.equal(matches({ body: { 'items.0.sku': 'A-1' } }), true);
    assert.equal(matches({ body: { 'items.1.sku': 'A-1' } }), false);
    assert.equal(matches({ body: { 'items.5.sku': { $exist: false } } }), true);
  });

  it('compares with $eq $neq $gt $gte $lt $lte, numbers with numbers and strings with strings', () => {
    assert.equal(matches({ body: { amount: { $gte: 1250 } } }), true);
    assert.equal(matches({ body: { amount: { $gt: 1250 } } }), false);
    assert.equal(matches({ body: { amount: { $gt: 1000, $lt: 2000 } } }), true);
    assert.equal(matches({ body: { amount: { $lte: 1249 } } }), false);
    assert.equal(matches({ body: { amount: { $gt: '1000' } } }), false, 'a number is not compared with a string');
    assert.equal(matches({ body: { created: { $gte: '2026-01-01', $lt: '2027-01-01' } } }), true, 'ISO timestamps order as strings');
    assert.equal(matches({ body: { 'items.price': { $lt: 300 } } }), true, 'any element');
    assert.equal(matches({ body: { currency: { $eq: 'EUR' } } }), true);
    assert.equal(matches({ body: { currency: { $neq: 'EUR' } } }), false);
    assert.equal(matches({ body: { currency: { $neq: 'USD' } } }), true);
    assert.equal(matches({ body: { region: { $neq: 'eu' } } }), true, '$neq holds where the field is missing');
    assert.equal(matches({ body: { tags: { $neq: 'gift' } } }), false, '$neq on an array: no element may equal');
    assert.equal(matches({ body: { 'items.sku': { $neq: 'Z-9' } } }), true);
    assert.equal(matches({ body: { 'items.sku': { $neq: 'A-1' } } }), false);
  });

  it('tests membership with $in and $nin, and presence with $exist', () => {
    assert.equal(matches({ body: { currency: { $in: ['EUR', 'GBP'] } } }), true);
    assert.equal(matches({ body: { currency: { $in: ['USD'] } } }), false);
    assert.equal(matches({ body: { tags: { $in: ['sale', 'gift'] } } }), true, 'an array field shares an element');
    assert.equal(matches({ body: { currency: { $nin: ['USD', 'JPY'] } } }), true);
    assert.equal(matches({ body: { tags: { $nin: ['gift'] } } }), false);
    assert.equal(matches({ body: { region: { $nin: ['eu'] } } }), true);
    assert.equal(matches({ body: { 'customer.note': { $exist: true } } }), true);
    assert.equal(matches({ body: { 'customer.phone': { $exist: true } } }), false);
    assert.equal(matches({ body: { 'customer.phone': { $exist: false } } }), true);
    assert.equal(matches({ body: { 'items.qty': { $exist: true } } }), true);
    assert.equal(matches({ body: { 'items.discount': { $exist: false } } }), true, 'no element has it');
  });

  it('combines with $and, $or and $not, at any level', () => {
    assert.equal(matches({ body: { $or: [{ currency: 'USD' }, { amount: { $gt: 1000 } }] } }), true);
    assert.equal(matches({ body: { $or: [{ currency: 'USD' }, { amount: { $gt: 5000 } }] } }), false);
    assert.equal(matches({ body: { $and: [{ currency: 'EUR' }, { $not: { 'customer.vip': false } }] } }), true);
    assert.equal(matches({ body: { $not: { type: 'order.created' } } }), false);
    assert.equal(matches({ body: { amount: { $not: { $gt: 2000 } } } }), true);
    assert.equal(matches({ body: { $or: [{ 'customer.id': 'cus_9' }, { customer: { email: { $regex: '@example\\.com$' } } }] } }), true);
  });

  it('matches $regex on strings only, with RE2', () => {
    assert.equal(matches({ body: { type: { $regex: '^order\\.(created|updated)$' } } }), true);
    assert.equal(matches({ body: { type: { $regex: '^invoice\\.' } } }), false);
    assert.equal(matches({ body: { amount: { $regex: '1250' } } }), false, 'a number is not a string');
    assert.equal(matches({ body: { tags: { $regex: '^gi' } } }), true, 'any element of an array');
    assert.equal(matches({ body: { 'customer.email': { $regex: '(?i)ADA@' } } }), true, 'RE2 inline flags');
  });

  it('keeps evaluation linear on patterns that make backtracking engines explode', () => {
    // (a+)+$ against "aaaa…!" takes exponential time on a backtracking engine (about 2^40 steps here); RE2 is linear.
    const subject = { body: { text: 'a'.repeat(40) + '!' }, headers: {} };
    assert.equal(compileFilter({ body: { text: { $regex: '(a+)+$' } } })(subject), false);
    assert.equal(compileFilter({ body: { text: { $regex: '^(a|aa)*$' } } })({ body: { text: 'a'.repeat(100_000) + 'b' }, headers: {} }), false);
  });

  it('matches headers case-insensitively by name, and a non-JSON body as absent', () => {
    const headers = { 'x-github-event': 'push', 'x-request-id': 'r1' };
    assert.equal(matches({ headers: { 'X-GitHub-Event': 'push' } }, order, headers), true);
    assert.equal(matches({ headers: { 'x-github-event': { $in: ['issues', 'pull_request'] } } }, order, headers), false);
    assert.equal(matches({ headers: { 'x-github-event': 'push' }, body: { type: 'order.created' } }, order, headers), true, 'both scopes must match');
    assert.equal(matches({ headers: { 'x-github-event': 'push' }, body: { type: 'other' } }, order, headers), false);
    const body = parsePayloadCopy(Buffer.from('not json'));
    assert.equal(body, undefined);
    assert.equal(compileFilter({ body: { type: 'x' } })({ body, headers: {} }), false);
    assert.equal(compileFilter({ body: { type: { $exist: false } } })({ body, headers: {} }), true);
  });

  it('reads big integers approximately (as doubles) and never changes the bytes it parses', () => {
    const bytes = Buffer.from('{"id":12345678901234567890,"n":1}');
    const copy = Buffer.from(bytes);
    const body = parsePayloadCopy(bytes);
    assert.deepEqual(bytes, copy);
    assert.equal(compileFilter({ body: { id: { $gt: 12345678901234567000 } } })({ body, headers: {} }), false, '…890 and …000 are the same double');
    assert.equal(compileFilter({ body: { id: { $gte: 12345678901234567000 } } })({ body, headers: {} }), true);
  });
});

describe('content filters: validation', () => {
  const problem = (filter: unknown) => {
    try {
      compileFilter(filter);
    } catch (error) {
      assert.ok(error instanceof FilterProblem, String(error));
      return { path: error.path, msg: error.msg };
    }
    assert.fail(`accepted ${JSON.stringify(filter)}`);
  };

  it('names the bad operator, scope or path', () => {
    assert.deepEqual(problem({ body: { amount: { $between: [1, 2] } } }).path, ['body', 'amount', '$between']);
    assert.deepEqual(problem({ body: { $nor: [] } }).path, ['body', '$nor']);
    assert.deepEqual(problem({ query: { a: 1 } }).path, ['query']);
    assert.deepEqual(problem({ body: { 'a..b': 1 } }).path, ['body', 'a..b']);
    assert.deepEqual(problem({ body: { a: { $in: 'x' } } }).path, ['body', 'a', '$in']);
    assert.deepEqual(problem({ body: { a: { $exist: 'yes' } } }).path, ['body', 'a', '$exist']);
    assert.deepEqual(problem({ body: { a: { $gt: true } } }).path, ['body', 'a', '$gt']);
    assert.deepEqual(problem({ body: { a: { $eq: 1, b: 2 } } }).path, ['body', 'a']);
    assert.deepEqual(problem({ body: { $or: [{ a: 1 }, { b: { $lt: null } }] } }).path, ['body', '$or', 1, 'b', '$lt']);
    assert.deepEqual(problem({ headers: { 'x-a': { nested: 1 } } }).path, ['headers', 'x-a']);
    assert.deepEqual(problem({}).path, []);
    assert.deepEqual(problem([]).path, []);
  });

  it('refuses regular expressions RE2 cannot run in linear time, and oversized ones', () => {
    const backreference = problem({ body: { a: { $regex: '(a)\\1' } } });
    assert.deepEqual(backreference.path, ['body', 'a', '$regex']);
    assert.match(backreference.msg, /RE2/);
    assert.deepEqual(problem({ body: { a: { $regex: 'x(?=y)' } } }).path, ['body', 'a', '$regex']);
    assert.deepEqual(problem({ body: { a: { $regex: '[' } } }).path, ['body', 'a', '$regex']);
    assert.match(problem({ body: { a: { $regex: 'a'.repeat(1025) } } }).msg, /1024/);
  });

  it('bounds depth, list lengths and size', () => {
    let deep: Record<string, unknown> = { a: 1 };
    for (let i = 0; i < 20; i++) deep = { $not: deep };
    assert.match(problem({ body: deep }).msg, /deeper/);
    assert.match(problem({ body: { a: { $in: Array.from({ length: 1001 }, (_, i) => i) } } }).msg, /at most 1000/);
    assert.match(problem({ body: { a: 'x'.repeat(20_000) } }).msg, /16384/);
  });
});
