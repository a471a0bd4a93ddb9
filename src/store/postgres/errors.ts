import { HookrelayError } from '../../domain/errors.js';

/**
 * Which failures mean "the database cannot be reached or cannot take the write right now": the caller should
 * retry later (the API answers 503 with Retry-After). Everything else is a bug or a constraint and is left alone.
 */
const NETWORK = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNABORTED']);
const SQLSTATE = new Set([
  '53300', // too_many_connections
  '57P01', // admin_shutdown (pg_ctl stop -m fast, failover)
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now (starting up, recovering)
  '40001', // serialization_failure
  '40P01', // deadlock_detected
  '55P03', // lock_not_available
  '25006', // read_only_sql_transaction (a standby after failover)
]);
// node-postgres reports a dropped socket or pool timeout with a message only.
const MESSAGES = /Connection terminated|timeout exceeded when trying to connect|connection error and is not queryable|Client was closed|Connection refused/i;

export function isUnavailable(error: unknown): boolean {
  if (error instanceof HookrelayError) return error.code === 'unavailable';
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  if (typeof code === 'string' && (NETWORK.has(code) || SQLSTATE.has(code) || code.startsWith('08'))) return true;
  if (error instanceof AggregateError) return error.errors.some(isUnavailable);
  return typeof message === 'string' && MESSAGES.test(message);
}

/** The store boundary: transient database failures become `unavailable`, anything else passes through unchanged. */
export function translate(error: unknown): unknown {
  if (error instanceof HookrelayError || !isUnavailable(error)) return error;
  const reason = (error as Error).message || (error as { code?: string }).code || 'unknown';
  return new HookrelayError('unavailable', `the database is unavailable (${reason}); retry later`);
}

export const isUniqueViolation = (error: unknown) => (error as { code?: string }).code === '23505';
export const isForeignKeyViolation = (error: unknown) => (error as { code?: string }).code === '23503';
