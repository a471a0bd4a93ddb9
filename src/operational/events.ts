import type { Logger } from 'pino';
import { conflict } from '../domain/errors.js';
import type { HealthChange } from '../domain/health.js';
import type { App, ClaimedDelivery, Endpoint } from '../domain/types.js';
import type { Intake } from '../pipeline/intake.js';
import type { HandshakeObserver } from '../pipeline/handshake.js';
import type { PipelineObserver } from '../pipeline/observer.js';
import type { AttemptOutcome, Store } from '../store/store.js';

/**
 * Operational webhooks: events about hookrelay itself, delivered through its own pipeline. They are messages of one
 * application reserved for them (uid `hookrelay-operational-webhooks`), whose endpoints are the operator's
 * operational-webhook endpoints (`/api/v1/operational-webhook/endpoint`): each event is accepted, fanned out by the
 * endpoints' event-type filters, signed with their secrets, retried and recorded like any message. Events about the
 * reserved application's own endpoints and deliveries are never emitted (an operational endpoint that fails must not
 * feed itself).
 *
 * The body is `{"type": "...", "data": {...}}`, the shapes of Svix's operational webhooks; `endpoint.disabled` adds
 * `reason`, hookrelay's explanation. `endpoint.verified` and `endpoint.verification_failed` (with `reason`) are
 * hookrelay's own, about the registration handshake.
 */

export const OPERATIONAL_EVENT_TYPES = [
  'endpoint.created',
  'endpoint.updated',
  'endpoint.deleted',
  'endpoint.disabled',
  'endpoint.enabled',
  'endpoint.verified',
  'endpoint.verification_failed',
  'message.attempt.failing',
  'message.attempt.exhausted',
  'message.attempt.recovered',
] as const;
export type OperationalEventType = (typeof OPERATIONAL_EVENT_TYPES)[number];

export const OPERATIONAL_APP_UID = 'hookrelay-operational-webhooks';
const OPERATIONAL_APP_MARK = { hookrelay: 'operational-webhooks' };

/** How long "are there operational endpoints at all?" is remembered: events are dropped unread when there are none. */
const ENDPOINTS_KNOWN_MS = 5_000;
const APP_CACHE_SIZE = 1_000;
/** Attempt events wait for their outcome's commit; a batch that fails to commit leaves its events here, so bound it. */
const MAX_WAITING = 10_000;

export interface OperationalOptions {
  /** A delivery's n-th failed attempt in a row sends `message.attempt.failing`; 0 = never. @default 4 */
  failingAfter: number;
  idempotencyTtlMs: number;
  now: () => number;
}

type Data = Record<string, unknown>;

const iso = (ms: number | null | undefined) => (ms === null || ms === undefined ? null : new Date(ms).toISOString());

export class OperationalWebhooks implements PipelineObserver, HandshakeObserver {
  /** The reserved application's id: undefined until looked up, null while it does not exist. */
  private appId: string | null | undefined = undefined;
  private endpointsKnownAt = -Infinity;
  private hasEndpoints = false;
  private readonly apps = new Map<string, App | null>();
  private readonly waiting = new Map<string, { type: OperationalEventType; data: Data }>();
  private queue: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: Store,
    private readonly intake: Intake,
    private readonly log: Logger,
    private readonly options: OperationalOptions,
  ) {}

  /** The reserved application, created when `create` (the first operational endpoint); null while there is none. */
  async app(create: boolean): Promise<App | null> {
    let app = await this.store.getApp(OPERATIONAL_APP_UID);
    if (!app && create) {
      try {
        app = await this.store.createApp({ name: 'hookrelay operational webhooks', uid: OPERATIONAL_APP_UID, rateLimit: null, metadata: OPERATIONAL_APP_MARK }, this.options.now());
      } catch (error) {
        // Another process created it at the same moment.
        app = await this.store.getApp(OPERATIONAL_APP_UID);
        if (!app) throw error;
      }
    }
    // Only the application made for the purpose: another one that took the uid must not receive every tenant's events.
    if (app && app.metadata.hookrelay !== OPERATIONAL_APP_MARK.hookrelay) {
      throw conflict(`the application uid ${OPERATIONAL_APP_UID} is reserved for operational webhooks; give application ${app.id} another uid`);
    }
    this.appId = app?.id ?? null;
    return app;
  }

  /** Operational endpoints changed here: look again before the next event instead of waiting for the cache to expire. */
  endpointsChanged(): void {
    this.endpointsKnownAt = -Infinity;
  }

  isOperational(appId: string): boolean {
    return this.appId !== undefined && this.appId !== null && appId === this.appId;
  }

  // ---- endpoint events, reported by the API's store (reportEndpointChanges) -------------------------------------

  endpointChanged(type: 'endpoint.created' | 'endpoint.updated' | 'endpoint.deleted' | 'endpoint.enabled' | 'endpoint.verified', endpoint: Endpoint): void {
    this.emit(type, endpoint.appId, async (app) => ({ appId: endpoint.appId, appUid: app?.uid ?? null, endpointId: endpoint.id, endpointUid: endpoint.uid }));
  }

  endpointDisabled(endpoint: Pick<Endpoint, 'id' | 'uid' | 'appId'>, trigger: 'manual' | 'automatic', reason: string | null, failSince: number | null): void {
    this.emit('endpoint.disabled', endpoint.appId, async (app) => ({
      appId: endpoint.appId,
      appUid: app?.uid ?? null,
      endpointId: endpoint.id,
      endpointUid: endpoint.uid,
      failSince: iso(failSince),
      trigger,
      reason,
    }));
  }

  // ---- registration handshake events, from pipeline/handshake.ts (hookrelay's own, not Svix's) ------------------

  endpointVerified(endpoint: Endpoint): void {
    this.endpointChanged('endpoint.verified', endpoint);
  }

  endpointVerificationFailed(endpoint: Endpoint, reason: string): void {
    this.emit('endpoint.verification_failed', endpoint.appId, async (app) => ({
      appId: endpoint.appId,
      appUid: app?.uid ?? null,
      endpointId: endpoint.id,
      endpointUid: endpoint.uid,
      reason,
    }));
  }

  // ---- attempt events, from the dispatcher (PipelineObserver) ---------------------------------------------------

  attempted(claimed: ClaimedDelivery, { attempt, next }: AttemptOutcome): void {
    if (this.isOperational(attempt.appId)) return;
    const { failingAfter } = this.options;
    // The delivery's attempts so far, this one included; a success ends the run of failures.
    const tries = claimed.delivery.retryIndex + 1;
    let type: OperationalEventType | null = null;
    if (attempt.succeeded) {
      if (failingAfter > 0 && tries > failingAfter) type = 'message.attempt.recovered';
    } else if (next.kind === 'parked') type = 'message.attempt.exhausted';
    else if (failingAfter > 0 && tries === failingAfter) type = 'message.attempt.failing';
    if (type === null) return;
    if (this.waiting.size >= MAX_WAITING) this.waiting.delete(this.waiting.keys().next().value!);
    this.waiting.set(attempt.id, {
      type,
      data: {
        appId: attempt.appId,
        msgId: attempt.messageId,
        msgEventId: claimed.message.eventId,
        endpointId: attempt.endpointId,
        lastAttempt: { id: attempt.id, timestamp: iso(attempt.startedAt), responseStatusCode: attempt.statusCode },
      },
    });
  }

  /** Attempt events go out once their outcomes are committed, and the dispatcher's automatic disables with them. */
  recorded(batch: readonly AttemptOutcome[], changes: readonly HealthChange[]): void {
    for (const { attempt } of batch) {
      const event = this.waiting.get(attempt.id);
      if (!event) continue;
      this.waiting.delete(attempt.id);
      this.emit(event.type, attempt.appId, async (app) => ({ ...event.data, appUid: app?.uid ?? null }));
    }
    for (const change of changes) {
      if (!change.disabled || this.isOperational(change.appId)) continue;
      const reason = change.disabled;
      this.emit('endpoint.disabled', change.appId, async (app) => {
        const endpoint = await this.store.getEndpoint(change.appId, change.endpointId);
        return {
          appId: change.appId,
          appUid: app?.uid ?? null,
          endpointId: change.endpointId,
          endpointUid: endpoint?.uid ?? null,
          failSince: iso(endpoint?.health.failingSince),
          trigger: 'automatic',
          reason,
        };
      });
    }
  }

  /** Resolves once every event emitted so far was accepted (or dropped). */
  flush(): Promise<void> {
    return this.queue;
  }

  /** Queues one event; events are accepted in the order they were emitted, off the caller's path. */
  private emit(type: OperationalEventType, appId: string, data: (app: App | null) => Promise<Data>): void {
    this.queue = this.queue.then(async () => {
      try {
        if (this.appId === undefined) await this.app(false);
        if (this.appId === null || appId === this.appId || !(await this.anyEndpoint())) return;
        const body = { type, data: await data(await this.appOf(appId)) };
        const now = this.options.now();
        await this.intake.accept(
          {
            appId: this.appId!,
            eventType: type,
            eventId: null,
            payload: Buffer.from(JSON.stringify(body)),
            contentType: 'application/json',
            channels: null,
            tags: null,
            idempotencyKey: null,
            idempotencyTtlMs: this.options.idempotencyTtlMs,
            now,
          },
          'operational',
        );
      } catch (error) {
        this.log.error({ err: error, type, appId }, 'an operational webhook could not be accepted');
      }
    });
  }

  private async anyEndpoint(): Promise<boolean> {
    const now = this.options.now();
    if (now - this.endpointsKnownAt < ENDPOINTS_KNOWN_MS) return this.hasEndpoints;
    // Another process may have created the reserved app since this one looked.
    if (this.appId === null) await this.app(false);
    this.hasEndpoints = this.appId !== null && (await this.store.listEndpoints(this.appId!, { limit: 1 })).data.length > 0;
    this.endpointsKnownAt = now;
    return this.hasEndpoints;
  }

  private async appOf(appId: string): Promise<App | null> {
    if (this.apps.has(appId)) return this.apps.get(appId)!;
    const app = await this.store.getApp(appId);
    if (this.apps.size >= APP_CACHE_SIZE) this.apps.clear();
    this.apps.set(appId, app);
    return app;
  }
}
