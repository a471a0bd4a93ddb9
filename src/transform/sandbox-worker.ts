/**
 * One sandbox thread: runs transformation code in QuickJS compiled to WebAssembly. Each run gets a new runtime (its own
 * heap, capped) and context; nothing of the host is put into it: no `process`, `require`, timers, network or file
 * access exist inside, only the ECMAScript built-ins. The host (sandbox.ts) replaces this thread if it dies or hangs.
 */
import { parentPort } from 'node:worker_threads';
import { newQuickJSWASMModuleFromVariant, type QuickJSContext, type QuickJSHandle, type QuickJSSyncVariant } from 'quickjs-emscripten-core';
import variant from '@jitl/quickjs-wasmfile-release-sync';

export interface RunRequest {
  id: number;
  code: string;
  /** The input as JSON text; parsed inside the sandbox. Absent: only compile the code and look for `handler`. */
  input?: string;
  timeoutMs: number;
  memoryBytes: number;
  stackBytes: number;
}

/**
 * `value` is the handler's return value as JSON text (`undefined` when it returned nothing JSON can hold).
 * `retire`: the run hit a limit or failed oddly; this thread ends instead of running again (see `run`).
 */
export type RunReply = { id: number; ok: true; value?: string } | { id: number; ok: false; error: string; retire?: boolean };

/** Exceptions user code throws in the ordinary way; anything else (InternalError, a thrown non-Error) retires the thread. */
const ORDINARY = new Set(['Error', 'TypeError', 'RangeError', 'ReferenceError', 'SyntaxError', 'EvalError', 'URIError', 'AggregateError']);

// Kept from before the user's code runs, so a handler that replaces JSON only spoils its own result.
const RUNNER = `(function () {
  const parse = JSON.parse, stringify = JSON.stringify;
  return function (handler, input) { return stringify(handler(parse(input))); };
})()`;

// The variant package's types describe its CommonJS build; the ESM import is the variant itself.
const quickjs = await newQuickJSWASMModuleFromVariant(variant as unknown as QuickJSSyncVariant);

function describe(context: QuickJSContext, handle: QuickJSHandle): { text: string; ordinary: boolean } {
  const error = context.dump(handle) as unknown;
  return { text: describeError(error), ordinary: !!error && typeof error === 'object' && ORDINARY.has(String((error as { name?: unknown }).name)) };
}

function describeError(error: unknown): string {
  if (error && typeof error === 'object' && 'message' in error) {
    const { name, message, stack } = error as { name?: string; message?: string; stack?: string };
    const where = typeof stack === 'string' ? stack.split('\n').find((line) => line.trim().startsWith('at '))?.trim() : undefined;
    return `${name ?? 'Error'}: ${message}${where ? ` (${where})` : ''}`;
  }
  // QuickJS throws null when it runs out of memory while building the error itself.
  if (error === null) return 'uncaught null (thrown by the handler, or by the engine when the handler exhausted its memory)';
  return `uncaught ${JSON.stringify(error) ?? String(error)}`;
}

function run(request: RunRequest): RunReply {
  const { id } = request;
  const runtime = quickjs.newRuntime();
  runtime.setMemoryLimit(request.memoryBytes);
  // Below the thread's own stack (sandbox.ts gives it 4 MiB), so deep recursion ends as a catchable QuickJS
  // "stack overflow" rather than a host RangeError in the middle of the engine.
  runtime.setMaxStackSize(request.stackBytes);
  const deadline = Date.now() + request.timeoutMs;
  let interrupted = false;
  runtime.setInterruptHandler(() => (interrupted = Date.now() > deadline));
  const context = runtime.newContext();
  // A run that hit a limit (time, memory, stack) or failed in an odd way is not cleaned up: its runtime is left as it
  // is and the thread ends (the host starts another). Disposing a QuickJS runtime after such a failure has been seen
  // to fail a WebAssembly assertion; a fresh thread is the state that is known to be good.
  let retire = false;
  const fail = (handle: QuickJSHandle): RunReply => {
    const { text, ordinary } = describe(context, handle);
    retire = interrupted || !ordinary;
    const error = interrupted ? `timed out: the transformation ran longer than ${request.timeoutMs} ms` : text;
    if (!retire) handle.dispose();
    return { id, ok: false, retire, error: /out of memory/i.test(error) ? `out of memory: the transformation used more than ${request.memoryBytes / 1048576} MiB (${error})` : error };
  };
  try {
    const runner = context.evalCode(RUNNER, 'runner.js');
    if (runner.error) return fail(runner.error);
    const script = context.evalCode(request.code, 'transformation.js');
    if (script.error) {
      runner.value.dispose();
      return fail(script.error);
    }
    script.value.dispose();
    const handler = context.getProp(context.global, 'handler');
    if (context.typeof(handler) !== 'function') {
      handler.dispose();
      runner.value.dispose();
      return { id, ok: false, error: 'the code must define a function named handler: function handler(webhook) { …; return webhook; }' };
    }
    if (request.input === undefined) {
      handler.dispose();
      runner.value.dispose();
      return { id, ok: true };
    }
    const input = context.newString(request.input);
    const result = context.callFunction(runner.value, context.undefined, handler, input);
    input.dispose();
    handler.dispose();
    runner.value.dispose();
    if (result.error) return fail(result.error);
    const value = context.typeof(result.value) === 'string' ? context.getString(result.value) : undefined;
    result.value.dispose();
    return { id, ok: true, value };
  } catch (error) {
    // The engine itself failed (a host RangeError out of the middle of QuickJS when V8's stack ran out first, an
    // aborted WebAssembly instance): nothing of this runtime is touched again.
    retire = true;
    return { id, ok: false, retire, error: `sandbox failure: ${(error as Error).message}` };
  } finally {
    if (!retire) {
      context.dispose();
      runtime.dispose();
    }
  }
}

parentPort!.on('message', (request: RunRequest) => {
  let reply: RunReply;
  try {
    reply = run(request);
  } catch (error) {
    // Cleaning up failed (not the user's code): answer, then end this thread; the host starts a fresh one.
    parentPort!.postMessage({ id: request.id, ok: false, retire: true, error: `sandbox failure: ${(error as Error).message}` } satisfies RunReply);
    process.exit(1);
  }
  parentPort!.postMessage(reply);
  if (!reply.ok && reply.retire) process.exit(0);
});
parentPort!.postMessage({ ready: true });
