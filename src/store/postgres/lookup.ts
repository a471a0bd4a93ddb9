/**
 * Batches the point reads of one event-loop turn into one query (the reads every API request makes, such as its
 * app): on PostgreSQL each query is a round trip, and under load dozens of requests ask at once. The answer is
 * as fresh as a query of its own would be; only the round trips are shared.
 */
export class Lookup<V> {
  private pending = new Map<string, { resolve: (value: V | null) => void; reject: (error: unknown) => void }[]>();

  constructor(
    /** Fetches rows for all keys at once; `pick` then chooses each key's value among them. */
    private readonly fetch: (keys: string[]) => Promise<V[]>,
    private readonly pick: (key: string, rows: V[]) => V | null,
  ) {}

  get(key: string): Promise<V | null> {
    return new Promise((resolve, reject) => {
      const waiting = this.pending.get(key);
      if (waiting) return void waiting.push({ resolve, reject });
      if (this.pending.size === 0) setImmediate(() => void this.flush());
      this.pending.set(key, [{ resolve, reject }]);
    });
  }

  private async flush(): Promise<void> {
    const batch = this.pending;
    this.pending = new Map();
    try {
      const rows = await this.fetch([...batch.keys()]);
      for (const [key, waiters] of batch) {
        const value = this.pick(key, rows);
        for (const waiter of waiters) waiter.resolve(value);
      }
    } catch (error) {
      for (const waiters of batch.values()) for (const waiter of waiters) waiter.reject(error);
    }
  }
}
