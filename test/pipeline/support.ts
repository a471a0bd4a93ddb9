import assert from 'node:assert/strict';
import { Webhook as StandardWebhook } from 'standardwebhooks';
import { Webhook as SvixWebhook } from 'svix';
import { Webhook as SvixWebhook1 } from 'svix1';
import type { Received } from '../helpers/receiver.js';
import type { TestRelay } from '../helpers/relay.js';

/** Shared steps of the pipeline tests: set-up through the public API, verification with the official libraries. */

let appCounter = 0;

export async function createApp(relay: TestRelay): Promise<string> {
  const app = await relay.svix.application.create({ name: `pipeline-${++appCounter}` });
  return app.id;
}

/** Creates an endpoint over raw HTTP, so that hookrelay's extension fields (ordering, maxInFlight) reach the server. */
export async function createEndpoint(relay: TestRelay, appId: string, body: Record<string, unknown>): Promise<{ id: string; secret: string }> {
  const response = await relay.api('POST', `/api/v1/app/${appId}/endpoint`, body);
  assert.equal(response.status, 201, response.text);
  const { key } = await relay.svix.endpoint.getSecret(appId, response.body.id);
  return { id: response.body.id, secret: key };
}

export async function send(relay: TestRelay, appId: string, payload: Record<string, unknown>, eventType = 'test.event'): Promise<string> {
  const message = await relay.svix.message.create(appId, { eventType, payload });
  return message.id;
}

/** Sends `count` messages, `concurrency` at a time; returns their ids in the order of `payloadOf(i)`. */
export async function sendMany(relay: TestRelay, appId: string, count: number, concurrency: number, payloadOf: (i: number) => Record<string, unknown>): Promise<string[]> {
  const ids: string[] = new Array(count);
  for (let start = 0; start < count; start += concurrency) {
    const batch = Array.from({ length: Math.min(concurrency, count - start) }, (_, k) => start + k);
    await Promise.all(batch.map(async (i) => (ids[i] = await send(relay, appId, payloadOf(i)))));
  }
  return ids;
}

export function headerOf(request: Received, name: string): string {
  const value = request.headers[name];
  assert.equal(typeof value, 'string', `header ${name} missing`);
  return value as string;
}

/** Checks the request's signature with both official verifiers; returns the verified payload. */
export function verifySignature(request: Received, secret: string): unknown {
  const body = request.body.toString('utf8');
  const headers = {
    'webhook-id': headerOf(request, 'webhook-id'),
    'webhook-timestamp': headerOf(request, 'webhook-timestamp'),
    'webhook-signature': headerOf(request, 'webhook-signature'),
  };
  new SvixWebhook(secret).verify(body, headers);
  const viaSvix = new SvixWebhook1(secret).verify(body, headers);
  const viaStandard = new StandardWebhook(secret.replace(/^whsec_/, '')).verify(body, headers);
  assert.deepEqual(viaStandard, viaSvix);
  return viaSvix;
}

export const webhookIds = (received: Received[]) => received.map((r) => r.headers['webhook-id'] as string);

/** The status of one message's delivery to one endpoint, as the API reports it (0 success, 1 pending, 2 fail, 3 sending). */
export async function deliveryStatus(relay: TestRelay, appId: string, msgId: string, endpointId: string): Promise<{ status: number; statusText: string } | undefined> {
  const destinations = await relay.svix.messageAttempt.listAttemptedDestinations(appId, msgId, { limit: 250 });
  const found = destinations.data.find((d) => d.id === endpointId);
  return found && { status: found.status, statusText: found.statusText };
}

/** Every attempt of a message, oldest first. */
export async function attemptsOf(relay: TestRelay, appId: string, msgId: string, endpointId?: string) {
  const page = await relay.svix.messageAttempt.listByMsg(appId, msgId, { endpointId, limit: 250 });
  return [...page.data].sort((a, b) => a.timestamp.getTime() - b.timestamp.getTime() || a.id.localeCompare(b.id));
}

/** All messages of an endpoint with a given delivery status, following the iterator. */
export async function attemptedMessages(relay: TestRelay, appId: string, endpointId: string, status?: 0 | 1 | 2 | 3) {
  const all = [];
  let iterator: string | null = null;
  for (;;) {
    const page = await relay.svix.messageAttempt.listAttemptedMessages(appId, endpointId, { limit: 250, iterator, status, withContent: false });
    all.push(...page.data);
    if (page.done) return all;
    iterator = page.iterator;
  }
}
