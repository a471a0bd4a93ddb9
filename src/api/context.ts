import type { FastifyRequest } from 'fastify';
import { notFound } from '../domain/errors.js';
import type { App, Endpoint, Message } from '../domain/types.js';
import type { EgressPolicy } from '../egress/policy.js';
import type { Ingest } from '../inbound/ingest.js';
import type { ConsumerState } from '../inbound/brokers/consumer.js';
import type { Intake } from '../pipeline/intake.js';
import type { ListenerHub } from '../pipeline/destinations/listen.js';
import type { OperationalWebhooks } from '../operational/events.js';
import type { Store } from '../store/store.js';
import type { Sandbox } from '../transform/sandbox.js';
import { mayAccess, principalOf } from './auth.js';

/** What route handlers need from the rest of hookrelay. */
export interface ApiContext {
  store: Store;
  intake: Intake;
  ingest: Ingest;
  now: () => number;
  endpointConcurrency: number;
  idempotencyTtlMs: number;
  /** Replayed deliveries are due now: tell the dispatcher. */
  wake: () => void;
  /** Refuses endpoint targets that are internal whatever DNS says (IP literals, localhost) when they are saved. */
  egress: EgressPolicy;
  /** Operational webhooks: their endpoints' routes, and the reserved application they are messages of. */
  operational: OperationalWebhooks;
  /** Runs endpoint transformations: checks code at save, and the simulate route. */
  sandbox: Sandbox;
  /** The `hookrelay listen` connections of this process; null when it does not deliver (--dispatch off). */
  listeners?: ListenerHub | null;
  /** The consumers of broker sources in this process: told when a source changes, asked for a source's state. */
  brokerSources?: { sync(): Promise<void>; stateOf(sourceId: string): ConsumerState | null } | null;
}

type Params = Record<string, string>;

/** The app named in the path (id or uid), if the caller may see it; otherwise 404. */
export async function appOf(ctx: ApiContext, request: FastifyRequest): Promise<App> {
  const id = (request.params as Params).app_id;
  const app = await ctx.store.getApp(id);
  if (!app || !mayAccess(principalOf(request), app)) throw notFound('application', id);
  return app;
}

export async function endpointOf(ctx: ApiContext, app: App, request: FastifyRequest): Promise<Endpoint> {
  const id = (request.params as Params).endpoint_id;
  const endpoint = await ctx.store.getEndpoint(app.id, id);
  if (!endpoint) throw notFound('endpoint', id);
  return endpoint;
}

export async function messageOf(ctx: ApiContext, app: App, request: FastifyRequest): Promise<Message> {
  const id = (request.params as Params).msg_id;
  const message = await ctx.store.getMessage(app.id, id);
  if (!message) throw notFound('message', id);
  return message;
}
