/**
 * Every error a client or operator can see, with its stable code and HTTP status.
 * The API renders them as `{ "code", "detail" }` (the shape the svix SDK parses);
 * docs/errors.md lists the same table and a test keeps the two in sync.
 */
export const ERRORS = {
  unauthorized: { status: 401, title: 'Missing or invalid bearer token.' },
  forbidden: { status: 403, title: 'The token may not touch this resource.' },
  not_found: { status: 404, title: 'No such resource (or route).' },
  verification_failed: { status: 401, title: 'An inbound request failed signature verification (missing, wrong or stale).' },
  rate_limited: { status: 429, title: 'The source received more requests than its rate limit; retry after Retry-After.' },
  conflict: { status: 409, title: 'A resource with this uid, name or eventId already exists.' },
  verification_not_enabled: { status: 409, title: 'The endpoint does not use the registration handshake (its verification is none).' },
  bad_request: { status: 400, title: 'The request is not well-formed HTTP, or its URL is not valid percent-encoding.' },
  invalid_json: { status: 400, title: 'The request body is not valid JSON.' },
  json_too_deep: { status: 400, title: 'The JSON body nests objects and arrays deeper than the limit.' },
  request_timeout: { status: 408, title: 'The request headers or body did not arrive within the time limit.' },
  unsupported_media_type: { status: 415, title: 'The request body must be application/json.' },
  payload_too_large: { status: 413, title: 'The request body exceeds the configured limit.' },
  uri_too_long: { status: 414, title: 'The request URL exceeds the configured limit.' },
  headers_too_large: { status: 431, title: 'The request has too many headers, or they are too large.' },
  validation: { status: 422, title: 'A field is missing, of the wrong type or out of range.' },
  schema_mismatch: { status: 422, title: "An inbound request's payload does not match its event type's JSON Schema (a source set to refuse)." },
  unavailable: { status: 503, title: 'Storage could not accept the write; retry later.' },
  not_implemented: { status: 501, title: 'A route of the Svix API that hookrelay does not serve; the detail names the feature.' },
  internal: { status: 500, title: 'An unexpected server error (logged, never from user input).' },
} as const;

export type ErrorCode = keyof typeof ERRORS;

export interface FieldIssue {
  loc: (string | number)[];
  msg: string;
  type: string;
}

export class HookrelayError extends Error {
  readonly status: number;

  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly issues?: FieldIssue[],
  ) {
    super(message);
    this.name = 'HookrelayError';
    this.status = ERRORS[code].status;
  }
}

export const notFound = (what: string, id: string) => new HookrelayError('not_found', `${what} ${JSON.stringify(id)} not found`);
export const conflict = (message: string) => new HookrelayError('conflict', message);
export const invalid = (loc: (string | number)[], msg: string) =>
  new HookrelayError('validation', `${loc.join('.')}: ${msg}`, [{ loc, msg, type: 'value_error' }]);
