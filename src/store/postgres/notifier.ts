import pg from 'pg';

export interface NotifierOptions {
  url: string;
  channel: string;
  /** Notifications whose payload is this are this process's own (it has woken itself already) and are ignored. */
  self: string;
  /** At most one wake-up per this many ms; notifications in between are folded into one at the end. @default 25 */
  throttleMs?: number;
  onError: (error: Error) => void;
  /** First and longest wait before reconnecting. @default 100, 10000 */
  minBackoffMs?: number;
  maxBackoffMs?: number;
}

/**
 * A dedicated LISTEN connection (a pooled one would lose its LISTEN when returned). A notification is only a hint
 * that work may be due: dispatchers poll anyway. When the connection drops it reconnects with exponential backoff
 * and jitter, and tells the listeners at once after reconnecting, because notifications sent meanwhile are lost.
 */
export class Notifier {
  private readonly listeners = new Set<() => void>();
  private client: pg.Client | null = null;
  private connecting = false;
  private timer: NodeJS.Timeout | null = null;
  private backoffMs: number;
  private stopped = false;
  private lastEmit = 0;
  private trailing: NodeJS.Timeout | null = null;

  constructor(private readonly options: NotifierOptions) {
    this.backoffMs = options.minBackoffMs ?? 100;
  }

  add(listener: () => void): () => void {
    this.listeners.add(listener);
    if (!this.client && !this.connecting && !this.timer && !this.stopped) void this.connect();
    return () => this.listeners.delete(listener);
  }

  async close(): Promise<void> {
    this.stopped = true;
    if (this.trailing) clearTimeout(this.trailing);
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const client = this.client;
    this.client = null;
    await client?.end().catch(() => undefined);
  }

  /** Wakes this process's listeners directly (work this process made due, e.g. leases it returned). */
  poke(): void {
    if (!this.stopped) this.emit();
  }

  private emit(): void {
    this.lastEmit = Date.now();
    for (const listener of this.listeners) listener();
  }

  /** Under load every accept batch of every process notifies; a dispatcher needs one wake-up per claim, not each. */
  private notified(payload: string | undefined): void {
    if (payload === this.options.self || this.trailing || this.stopped) return;
    const wait = this.lastEmit + (this.options.throttleMs ?? 25) - Date.now();
    if (wait <= 0) return this.emit();
    this.trailing = setTimeout(() => {
      this.trailing = null;
      this.emit();
    }, wait);
  }

  private async connect(): Promise<void> {
    this.timer = null;
    this.connecting = true;
    const client = new pg.Client({ connectionString: this.options.url, keepAlive: true, connectionTimeoutMillis: 5_000, application_name: 'hookrelay-listen' });
    let lost = false;
    const onLost = (error: Error | null) => {
      if (lost) return;
      lost = true;
      if (error) this.options.onError(error);
      if (this.client === client) this.client = null;
      client.end().catch(() => undefined);
      if (!this.connecting) this.retry();
    };
    client.on('error', onLost);
    client.on('end', () => onLost(null));
    client.on('notification', (message) => this.notified(message.payload));
    try {
      await client.connect();
      await client.query(`LISTEN ${pg.escapeIdentifier(this.options.channel)}`);
    } catch (error) {
      onLost(error as Error);
    }
    this.connecting = false;
    if (lost) return this.retry();
    if (this.stopped) {
      await client.end().catch(() => undefined);
      return;
    }
    this.client = client;
    this.backoffMs = this.options.minBackoffMs ?? 100;
    this.emit();
  }

  private retry(): void {
    if (this.stopped || this.timer || this.connecting) return;
    const delay = this.backoffMs * (0.5 + Math.random() / 2);
    this.backoffMs = Math.min(this.backoffMs * 2, this.options.maxBackoffMs ?? 10_000);
    this.timer = setTimeout(() => void this.connect(), delay);
    this.timer.unref();
  }
}
