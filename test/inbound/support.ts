import assert from 'node:assert/strict';
import { Webhook as StandardWebhook } from 'standardwebhooks';
import { Webhook as SvixWebhook } from 'svix';
import type { Received } from '../helpers/receiver.js';
import type { TestRelay } from '../helpers/relay.js';

/** Shared steps of the inbound tests: sources over the public API, provider requests over real HTTP. */

export interface CreatedSource {
  id: string;
  appId: string;
  ingestUrl: string;
}

let sourceCounter = 0;

/** Creates a source over raw HTTP (generic verifier types are not in the svix SDK's type list). */
export async function createSource(relay: TestRelay, type: string, config: Record<string, unknown>): Promise<CreatedSource> {
  const response = await relay.api('POST', '/ingest/api/v1/source', { name: `inbound-${type}-${++sourceCounter}`, type, config });
  assert.equal(response.status, 201, response.text);
  return { id: response.body.id, appId: response.body.appId, ingestUrl: response.body.ingestUrl };
}

/** Adds an HTTP endpoint to a source with the official SDK; returns its id and signing secret. */
export async function addEndpoint(relay: TestRelay, sourceId: string, url: string): Promise<{ id: string; secret: string }> {
  const endpoint = await relay.svix.ingest.endpoint.create(sourceId, { url });
  const { key } = await relay.svix.ingest.endpoint.getSecret(sourceId, endpoint.id);
  return { id: endpoint.id, secret: key };
}

export interface IngestResponse {
  status: number;
  headers: Headers;
  body: any;
  text: string;
}

/** Sends a provider request to an ingest URL exactly as given (bytes and headers untouched). */
export async function post(url: string, body: string | Buffer | null, headers: Record<string, string> = {}, method = 'POST'): Promise<IngestResponse> {
  const response = await fetch(url, { method, headers, body: body ?? undefined });
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    /* not JSON */
  }
  return { status: response.status, headers: response.headers, body: parsed, text };
}

/** Asserts the ingest answer is 200 with a new (or, with `duplicate`, a known) message id; returns the id. */
export function accepted(response: IngestResponse, duplicate = false): string {
  assert.equal(response.status, 200, response.text);
  assert.match(response.body.id, /^msg_/);
  assert.equal(response.body.duplicate, duplicate);
  return response.body.id;
}

/** Asserts a 401 verification failure and returns its detail. */
export function refused(response: IngestResponse): string {
  assert.equal(response.status, 401, response.text);
  assert.equal(response.body.code, 'verification_failed');
  assert.equal(typeof response.body.detail, 'string');
  return response.body.detail;
}

/** Every message id of a source's app. */
export async function messageIds(relay: TestRelay, appId: string): Promise<string[]> {
  const response = await relay.api('GET', `/api/v1/app/${appId}/msg?limit=250`);
  assert.equal(response.status, 200, response.text);
  return response.body.data.map((m: { id: string }) => m.id);
}

export async function getMessage(relay: TestRelay, appId: string, id: string): Promise<any> {
  const response = await relay.api('GET', `/api/v1/app/${appId}/msg/${id}`);
  assert.equal(response.status, 200, response.text);
  return response.body;
}

export function headersOf(request: Received): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers)) if (value !== undefined) out[name] = Array.isArray(value) ? value.join(', ') : value;
  return out;
}

/** Verifies hookrelay's signature on a delivery with the official standardwebhooks and svix verifiers. */
export function verifyDelivery(secret: string, request: Received): void {
  const headers = headersOf(request);
  const body = request.body.toString('utf8');
  new StandardWebhook(secret.replace(/^whsec_/, '')).verify(body, headers, { jsonParse: false });
  // svix's verifier always JSON-parses the payload, so it can only check JSON deliveries.
  if (/^application\/json/.test(headers['content-type'] ?? '')) new SvixWebhook(secret).verify(body, headers);
}

/** Changes one byte of `body` (a letter in the middle), keeping its length. */
export function tamper(body: string): string {
  const at = Math.floor(body.length / 2);
  const index = body.slice(at).search(/[a-z]/) + at;
  const c = body[index];
  return body.slice(0, index) + (c === 'x' ? 'y' : 'x') + body.slice(index + 1);
}
