/**
 * The most recent verification failures of each source, with their reasons, for the operator's dashboard. Kept in
 * memory by the process that answered them, bounded (the last 20 per source, 10,000 sources), and never stored: a
 * flood of forged requests must not become a flood of writes. Each process of a shared deployment shows its own.
 */
export const FAILURES_PER_SOURCE = 20;
const MAX_SOURCES = 10_000;

export interface VerificationFailure {
  at: number;
  reason: string;
}

export class VerificationFailures {
  private readonly bySource = new Map<string, { recent: VerificationFailure[]; total: number }>();

  record(sourceId: string, at: number, reason: string): void {
    let entry = this.bySource.get(sourceId);
    if (entry) this.bySource.delete(sourceId);
    else {
      if (this.bySource.size >= MAX_SOURCES) this.bySource.delete(this.bySource.keys().next().value!);
      entry = { recent: [], total: 0 };
    }
    // Re-inserted last, so the map's first key is the source that failed least recently.
    this.bySource.set(sourceId, entry);
    entry.total++;
    entry.recent.unshift({ at, reason });
    if (entry.recent.length > FAILURES_PER_SOURCE) entry.recent.pop();
  }

  /** Newest first, and how many failures this process has seen since it started. */
  of(sourceId: string): { recent: readonly VerificationFailure[]; total: number } {
    return this.bySource.get(sourceId) ?? { recent: [], total: 0 };
  }
}
