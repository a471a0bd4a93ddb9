import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { stringMember } from '../../src/inbound/json-member.js';

/** What a full parse says: the reference `stringMember` must agree with for every valid body. */
function parsed(text: string, name: string): string | null {
  try {
    const value = (JSON.parse(text) as Record<string, unknown> | null)?.[name];
    return typeof value === 'string' ? value : null;
  } catch {
    return null;
  }
}

const member = (text: string, name: string) => stringMember(Buffer.from(text, 'utf8'), name);

describe('stringMember (a top-level string member of a JSON body)', () => {
  it('reads a leading member without the rest of the body, however it is spaced', () => {
    assert.equal(member('{"action":"opened","issue":{"number":1}}', 'action'), 'opened');
    assert.equal(member(' \n{ "action" :\t"closed" , "issue": [1, 2] }', 'action'), 'closed');
    // After scalar members of every kind.
    assert.equal(member('{"id":12,"ok":true,"none":null,"f":-1.5e3,"type":"invoice.paid","data":{}}', 'type'), 'invoice.paid');
  });

  it('finds a member after an object or array value, through the full parse', () => {
    assert.equal(member('{"data":{"type":"nested"},"type":"outer"}', 'type'), 'outer');
    assert.equal(member('{"list":[{"action":"x"}],"action":"real"}', 'action'), 'real');
  });

  it('decodes escapes and UTF-8 in keys and values as JSON does', () => {
    assert.equal(member('{"action":"say \\"hi\\" \\u00e9\\n"}', 'action'), 'say "hi" é\n');
    assert.equal(member('{"act\\u0069on":"escaped key"}', 'action'), 'escaped key');
    assert.equal(member('{"action":"déjà vu ✓ 😀"}', 'action'), 'déjà vu ✓ 😀');
  });

  it('is null for a member that is absent or no string, and for a body that is not a JSON object', () => {
    for (const [text, name] of [
      ['{"ref":"refs/heads/main","commits":[]}', 'action'],
      ['{"action":5,"b":"c"}', 'action'],
      ['{"action":{"x":"y"}}', 'action'],
      ['{"action":null}', 'action'],
      ['["action","opened"]', 'action'],
      ['"action"', 'action'],
      ['', 'action'],
      ['not json', 'action'],
      ['{"action":"bad \\x escape"}', 'action'],
      ['{"action":"raw\tcontrol"}', 'action'],
      ['{"n":01,"action":"leading zero"}', 'action'],
    ] as const) {
      assert.equal(member(text, name), parsed(text, name), text);
      assert.equal(member(text, name), null, text);
    }
  });

  it('names a leading member of a body that is cut short after it (the body is not parsed past it)', () => {
    assert.equal(member('{"action":"opened","issue":{"trunc', 'action'), 'opened');
    assert.equal(member('{"issue":{"trunc', 'action'), null);
  });

  it('agrees with a full parse on generated bodies', () => {
    let seed = 7;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const pick = <T>(items: T[]) => items[Math.floor(random() * items.length)];
    const names = ['action', 'type', 'id', 'data', 'act"ion', 'é'];
    const values = (): unknown => pick([() => 'opened', () => 'quote " and \\ and \n', () => 42, () => -0.5, () => true, () => null, () => ({ action: 'inner' }), () => ['type'], () => '✓'])();
    for (let n = 0; n < 2000; n++) {
      const object: Record<string, unknown> = {};
      const count = Math.floor(random() * 5);
      for (let k = 0; k < count; k++) object[pick(names)] = values();
      const text = JSON.stringify(object, null, random() < 0.5 ? undefined : pick([1, '\t']));
      for (const name of ['action', 'type', 'act"ion']) assert.equal(member(text, name), parsed(text, name), `${name} in ${text}`);
    }
  });

  it('reads a body that is a view into a larger buffer', () => {
    const whole = Buffer.from('xxxx{"type":"in.view"}yyyy');
    assert.equal(stringMember(whole.subarray(4, whole.length - 4), 'type'), 'in.view');
  });
});
