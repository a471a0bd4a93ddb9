import type { SecretRow, Store } from '../store/store.js';
import { MasterKeyError } from './box.js';
import type { SecretFields } from './fields.js';

export interface ResealReport {
  /** Rows looked at. */
  rows: number;
  /** Rows rewritten: plain values sealed (a database from before encryption at rest) or values under an old key re-sealed. */
  rewritten: number;
}

/**
 * Brings every stored secret under the current master key: the upgrade step for databases written before secrets
 * were encrypted, and the second half of a key rotation. Idempotent, and safe while other processes write (each row
 * is replaced only if unchanged). Fails, after looking at everything, when some value needs a key that is not
 * configured: a wrong or missing master key stops the start instead of signing with garbage later.
 */
export async function resealSecrets(store: Store, fields: SecretFields, batch = 200): Promise<ResealReport> {
  const report: ResealReport = { rows: 0, rewritten: 0 };
  const problems = new Map<string, number>();
  for (const kind of ['endpoint', 'source'] as const) {
    let after = '';
    for (;;) {
      const rows = await store.scanSecrets(kind, after, batch);
      if (rows.length === 0) break;
      after = rows[rows.length - 1].id;
      report.rows += rows.length;
      const changes: { previous: SecretRow; next: SecretRow }[] = [];
      for (const previous of rows) {
        try {
          const next = fields.reseal(previous);
          if (next) changes.push({ previous, next });
        } catch (error) {
          if (!(error instanceof MasterKeyError)) throw error;
          problems.set(error.message, (problems.get(error.message) ?? 0) + 1);
        }
      }
      report.rewritten += await store.rewriteSecrets(changes);
    }
  }
  if (problems.size > 0) {
    const [[message, count]] = problems;
    const rows = [...problems.values()].reduce((a, b) => a + b, 0);
    throw new MasterKeyError(`${rows} stored row(s) hold secrets this master key configuration cannot open${count < rows ? ' (first problem shown)' : ''}: ${message}`);
  }
  return report;
}
