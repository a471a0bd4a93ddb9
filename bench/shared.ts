import type { ChildProcess } from 'node:child_process';

/** Wall-clock milliseconds with sub-millisecond resolution, comparable across processes on one machine. */
export const now = (): number => performance.timeOrigin + performance.now();

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index];
}

export interface LatencySummary {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export function summarize(values: number[]): LatencySummary {
  const sorted = Float64Array.from(values).sort();
  const arr = Array.from(sorted);
  return { count: arr.length, p50: percentile(arr, 50), p90: percentile(arr, 90), p99: percentile(arr, 99), max: arr.length ? arr[arr.length - 1] : NaN };
}

/** About 1 KiB of JSON, the same shape for the ceiling loop and for hookrelay's messages. */
export function benchPayload(seq: number): Record<string, unknown> {
  return { type: 'bench.event', seq, data: { pad: 'x'.repeat(960), at: '2025-01-01T00:00:00.000Z' } };
}

// ---- request/reply over a child process's IPC channel ------------------------------------------

export interface Call {
  kind: string;
  [key: string]: unknown;
}

export function rpcClient(child: ChildProcess): <T>(call: Call) => Promise<T> {
  let next = 0;
  const pending = new Map<number, { resolve: (v: any) => void; reject: (e: Error) => void }>();
  child.on('message', (message: any) => {
    const waiter = pending.get(message?.rpc);
    if (!waiter) return;
    pending.delete(message.rpc);
    if (message.error) waiter.reject(new Error(message.error));
    else waiter.resolve(message.result);
  });
  child.on('exit', (code) => {
    for (const waiter of pending.values()) waiter.reject(new Error(`child exited (${code}) with calls pending`));
    pending.clear();
  });
  return <T>(call: Call) =>
    new Promise<T>((resolve, reject) => {
      const rpc = ++next;
      pending.set(rpc, { resolve, reject });
      child.send({ ...call, rpc });
    });
}

/** The child side: answers each call with the handler's result (or its error). */
export function serveRpc(handler: (call: Call) => Promise<unknown>): void {
  process.on('message', (message: any) => {
    handler(message).then(
      (result) => process.send!({ rpc: message.rpc, result }),
      (error: Error) => process.send!({ rpc: message.rpc, error: error.message }),
    );
  });
  // The parent going away ends the child.
  process.on('disconnect', () => process.exit(0));
}
