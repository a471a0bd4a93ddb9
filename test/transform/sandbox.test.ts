import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { DEFAULT_SANDBOX_LIMITS, Sandbox } from '../../src/transform/sandbox.js';

const identity = 'function handler(w) { return w; }';

describe('transformation sandbox', () => {
  const sandboxes: Sandbox[] = [];
  const open = (limits: Partial<typeof DEFAULT_SANDBOX_LIMITS> = {}) => {
    const sandbox = new Sandbox({ ...DEFAULT_SANDBOX_LIMITS, ...limits });
    sandboxes.push(sandbox);
    return sandbox;
  };
  after(async () => {
    for (const sandbox of sandboxes) await sandbox.close();
  });

  it('runs handler on a parsed copy of the input and returns its JSON', async () => {
    const result = await open().run('function handler(w) { w.payload.n += 1; return w; }', JSON.stringify({ payload: { n: 41 } }));
    assert.deepEqual(result, { ok: true, value: '{"payload":{"n":42}}' });
  });

  it('ends loops, recursion and memory bombs inside the engine, retires that thread and serves the next run on a fresh one', async () => {
    // 4 MiB of heap: the memory bomb reaches it within milliseconds, long before the 200 ms time limit.
    const sandbox = open({ timeoutMs: 200, memoryBytes: 4 * 1048576, threads: 1 });
    const cases: [string, RegExp][] = [
      ['function handler() { for (;;) {} }', /^timed out: the transformation ran longer than 200 ms$/],
      ['function handler() { const f = (n) => f(n + 1) + 1; return f(0); }', /stack overflow/],
      ['function handler() { const a = []; for (;;) a.push([a.length]); }', /^out of memory/],
      ['function handler() { let s = "x"; for (;;) s += s; }', /string too long|out of memory/],
    ];
    for (const [code, expected] of cases) {
      const result = await sandbox.run(code, '{}');
      assert.equal(result.ok, false, code);
      assert.match((result as { error: string }).error, expected, code);
    }
    assert.equal(sandbox.replaced, 0, 'the engine stopped every run itself');
    assert.equal(sandbox.retired, cases.length, 'each thread that hit a limit ended without disposing that runtime');
    assert.deepEqual(await sandbox.run(identity, '{"a":1}'), { ok: true, value: '{"a":1}' });
  });

  it('ends a thread that outlives the host deadline, replaces it, and goes on', async () => {
    // split/reverse/join of 2 million characters runs in native code for about 250 ms on the development machine
    // without consulting the interrupt handler: with a 10 ms limit and 40 ms of grace, only the host's deadline stops it.
    const sandbox = open({ timeoutMs: 10, graceMs: 40, memoryBytes: 512 * 1048576, threads: 1 });
    const slow = await sandbox.run('function handler() { return "ab".repeat(2e6).split("").reverse().join("").length; }', '{}');
    assert.deepEqual(slow, { ok: false, error: 'timed out: the sandbox did not answer within 50 ms and was replaced' });
    assert.equal(sandbox.replaced, 1);
    assert.deepEqual(await sandbox.run(identity, '{"after":true}'), { ok: true, value: '{"after":true}' });
  });

  it('survives the engine failing under it: recursion past the thread stack ends that thread only', async () => {
    // With QuickJS's stack limit (3 MiB) close to the thread's own (4 MiB), endless recursion can overflow V8's stack
    // inside the engine: a RangeError out of the middle of QuickJS, after which disposing the runtime fails a
    // WebAssembly assertion (JS_FreeRuntime: list_empty(&rt->gc_obj_list)) and aborts the instance. Whatever the engine
    // does, it happens on a sandbox thread that is then retired: this process and the next run go on.
    const sandbox = open({ stackBytes: 3 * 1048576, threads: 1 });
    const crashed = await sandbox.run('function handler() { const f = (n) => f(n + 1) + 1; return f(0); }', '{}');
    assert.equal(crashed.ok, false);
    assert.equal(sandbox.retired + sandbox.replaced, 1, 'the thread that ran it is gone');
    assert.deepEqual(await sandbox.run(identity, '{"still":"here"}'), { ok: true, value: '{"still":"here"}' });
  });

  it('queues runs beyond its threads and answers every one', async () => {
    const sandbox = open({ threads: 2 });
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => sandbox.run('function handler(w) { return w.i * 2; }', JSON.stringify({ i }))));
    assert.deepEqual(results, Array.from({ length: 20 }, (_, i) => ({ ok: true, value: String(i * 2) })));
  });

  it('checks code without calling handler', async () => {
    const sandbox = open();
    assert.deepEqual(await sandbox.check('function handler() { throw new Error("not called"); }'), { ok: true, value: undefined });
    const missing = await sandbox.check('var handler = 3;');
    assert.equal(missing.ok, false);
  });
});
