import assert from 'node:assert/strict';
import { Webhook as StandardWebhook } from 'standardwebhooks';
import { ApiException, Svix, Webhook } from 'svix';
import { ApiException as ApiException1, Svix as Svix1, Webhook as Webhook1 } from 'svix1';
import type { Received, Receiver } from '../helpers/receiver.js';
import type { TestRelay } from '../helpers/relay.js';
import { waitUntil } from '../helpers/wait.js';

/** The receiver's request headers as the flat record `Webhook.verify` takes. */
export function headersOf(request: Received): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers)) if (value !== undefined) out[name] = Array.isArray(value) ? value.join(', ') : value;
  return out;
}

/**
 * Verifies a received webhook with the official classes: svix 2.x (reads `svix-*` first), svix 1.x and
 * standardwebhooks (`webhook-*`); returns the parsed payload.
 */
export function verify(secret: string, request: Received): unknown {
  const body = request.body.toString('utf8');
  const headers = headersOf(request);
  new Webhook(secret).verify(body, headers);
  const viaSvix = new Webhook1(secret).verify(body, headers);
  const viaStandard = new StandardWebhook(secret.replace(/^whsec_/, '')).verify(body, headers);
  assert.deepEqual(viaStandard, viaSvix);
  return viaSvix;
}

export const messageIdOf = (request: Received) => request.headers['webhook-id'] as string;

/** The HTTP status an SDK call (either major) ended with: 200 for any success, else its ApiException's code. */
export async function sdkStatus(call: Promise<unknown>): Promise<number> {
  try {
    await call;
    return 200;
  } catch (error) {
    assert.ok(error instanceof ApiException || error instanceof ApiException1, String(error));
    return error.code;
  }
}

/** Awaits the rejection of an SDK call and checks it is an ApiException with `status`; returns the parsed error body. */
export async function rejectsWith(call: Promise<unknown>, status: number): Promise<any> {
  let result: unknown;
  try {
    result = await call;
  } catch (error) {
    assert.ok(error instanceof ApiException || error instanceof ApiException1, `expected ApiException, got ${String(error)}`);
    assert.equal(error.code, status, `expected HTTP ${status}, got ${error.code}: ${JSON.stringify(error.body)}`);
    return error.body;
  }
  assert.fail(`expected HTTP ${status}, but the call resolved with ${JSON.stringify(result)}`);
}

/** Asserts the `{code, detail}` error shape the SDK parses for 4xx other than 422. */
export function assertErrorBody(body: unknown, code: string): void {
  assert.equal(typeof body, 'object', `error body is not JSON: ${String(body)}`);
  const { code: actual, detail } = body as { code: unknown; detail: unknown };
  assert.equal(actual, code, JSON.stringify(body));
  assert.equal(typeof detail, 'string');
  assert.ok((detail as string).length > 0);
}

/** Asserts the 422 `{detail:[{loc,msg,type}]}` shape and that some issue points at `loc`. */
export function assertValidation(body: unknown, loc: (string | number)[]): void {
  const detail = (body as { detail: { loc: unknown[]; msg: unknown; type: unknown }[] }).detail;
  assert.ok(Array.isArray(detail) && detail.length > 0, `not a validation body: ${JSON.stringify(body)}`);
  for (const issue of detail) {
    assert.ok(Array.isArray(issue.loc));
    assert.equal(typeof issue.msg, 'string');
    assert.equal(typeof issue.type, 'string');
  }
  assert.ok(
    detail.some((issue) => JSON.stringify(issue.loc) === JSON.stringify(loc)),
    `no issue at ${JSON.stringify(loc)} in ${JSON.stringify(detail)}`,
  );
}

interface ListPage<T> {
  data: T[];
  iterator?: string | null;
  done: boolean;
}

/** Follows `iterator` until `done`, returning every item and the number of pages read. */
export async function collectPages<T>(fetchPage: (iterator: string | null) => Promise<ListPage<T>>, maxPages = 100): Promise<{ items: T[]; pages: number }> {
  const items: T[] = [];
  let iterator: string | null = null;
  for (let pages = 1; pages <= maxPages; pages++) {
    const page = await fetchPage(iterator);
    items.push(...page.data);
    if (page.done) return { items, pages };
    assert.ok(page.iterator, 'a page that is not done must carry an iterator');
    iterator = page.iterator;
  }
  assert.fail(`pagination did not finish within ${maxPages} pages`);
}

export interface RecordedCall {
  method: string;
  path: string;
  status: number;
}

function recordingFetch(calls: RecordedCall[]): typeof fetch {
  return async (input, init) => {
    const response = await fetch(input, init);
    const url = new URL(input instanceof Request ? input.url : String(input));
    calls.push({ method: (init?.method ?? 'GET').toUpperCase(), path: url.pathname, status: response.status });
    return response;
  };
}

/** An unchanged SDK client (svix 2.x) whose fetch records each call's method, path and HTTP status. */
export function recordingSvix(relay: TestRelay): { svix: Svix; calls: RecordedCall[] } {
  const calls: RecordedCall[] = [];
  return { svix: new Svix(relay.adminToken, { serverUrl: relay.url, fetch: recordingFetch(calls) }), calls };
}

/** `recordingSvix` with the svix 1.x SDK. */
export function recordingSvix1(relay: TestRelay): { svix: Svix1; calls: RecordedCall[] } {
  const calls: RecordedCall[] = [];
  return { svix: new Svix1(relay.adminToken, { serverUrl: relay.url, fetch: recordingFetch(calls) }), calls };
}

/** Waits until the delivery of `msgId` to `endpointId` reaches `status` (0 success, 2 fail), as listAttemptedMessages reports it. */
export async function waitForDeliveryStatus(svix: Svix, appId: string, endpointId: string, msgId: string, status: number, timeoutMs = 10_000): Promise<void> {
  await waitUntil(
    `delivery of ${msgId} to ${endpointId} to reach status ${status}`,
    async () => {
      const page = await svix.messageAttempt.listAttemptedMessages(appId, endpointId, { limit: 250 });
      return page.data.find((m) => m.id === msgId)?.status === status;
    },
    timeoutMs,
  );
}

/** Resolves once the wall clock has moved past `ms`, so the next record gets a later timestamp. */
export async function clockPast(ms: number): Promise<void> {
  await waitUntil('the clock to advance', () => Date.now() > ms + 1, 1000, 2);
}

/** The first request `receiver` got for message `msgId` (its webhook-id), waiting for it to arrive. */
export function deliveryOf(receiver: Receiver, msgId: string, timeoutMs = 10_000): Promise<Received> {
  return waitUntil(`a delivery of ${msgId}`, () => receiver.received.find((r) => messageIdOf(r) === msgId), timeoutMs) as Promise<Received>;
}

/** Every request `receiver` got for message `msgId`. */
export const deliveriesOf = (receiver: Receiver, msgId: string) => receiver.received.filter((r) => messageIdOf(r) === msgId);
