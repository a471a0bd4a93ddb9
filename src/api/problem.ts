import { HookrelayError } from '../domain/errors.js';

/** How a HookrelayError is answered, by the API and the ingest door alike: `{code, detail}`, or 422 with the field issues. */
export function problemOf(error: HookrelayError): { status: number; headers: Record<string, string>; body: unknown } {
  if (error.code === 'validation') return { status: 422, headers: {}, body: { detail: error.issues ?? [{ loc: [], msg: error.message, type: 'value_error' }] } };
  return { status: error.status, headers: error.code === 'unavailable' ? { 'retry-after': '1' } : {}, body: { code: error.code, detail: error.message } };
}
