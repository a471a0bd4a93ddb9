import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { newId } from '../domain/ids.js';
import type { ClaimedDelivery, Endpoint } from '../domain/types.js';
import { verificationAfterAttempt, type HandshakeResult } from '../domain/verification.js';
import { constantTimeEqual } from '../signing/standard-webhooks.js';
import type { Store } from '../store/store.js';
import type { Destination, SendResult } from './destinations/destination.js';

/** Handshakes running at once in one process. */
const MAX_IN_FLIGHT = 16;

export interface HandshakeOptions {
  /** Identifies this process's handshake leases (each claim adds its own sequence number). */
  owner: string;
  /** Delays before each retry of a handshake that did not verify; when they run out the endpoint is `failed`. */
  scheduleMs: readonly number[];
  /** A lease outlives the request timeout, so that no other process starts the same handshake meanwhile. */
  leaseMs: number;
  /** Longest sleep between looks for due handshakes (another process may have created an endpoint). */
  pollMs: number;
  now?: () => number;
}

/** Told when a handshake ends (operational webhooks). */
export interface HandshakeObserver {
  endpointVerified(endpoint: Endpoint): void;
  endpointVerificationFailed(endpoint: Endpoint, reason: string): void;
}

/**
 * Runs endpoint registration handshakes (docs/api.md#registration-handshake): leases endpoints whose handshake is due
 * (Store.claimVerifications, one process at a time per endpoint), POSTs each a signed `endpoint.verification` request
 * carrying a fresh random challenge through the HTTP destination (so the egress policy, timeouts and signing are those
 * of deliveries), and records whether the endpoint echoed it. An endpoint that verifies has its held deliveries
 * claimed from then on: `onVerified` wakes this process's dispatcher, and a shared store notifies the others.
 */
export class Handshakes {
  private readonly inFlight = new Set<Promise<void>>();
  private shutdown = new AbortController();
  private readonly now: () => number;
  private running = false;
  private loop: Promise<void> | null = null;
  private wakeUp: (() => void) | null = null;
  private woken = false;
  private sequence = 0;

  constructor(
    private readonly store: Store,
    private readonly http: Destination,
    private readonly options: HandshakeOptions,
    private readonly log: Logger,
    private readonly onVerified: () => void,
    private readonly observer?: HandshakeObserver,
  ) {
    this.now = options.now ?? Date.now;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    if (this.shutdown.signal.aborted) this.shutdown = new AbortController();
    this.loop = this.run();
  }

  /** A handshake may be due (an endpoint was created or changed): look without waiting for the poll. */
  wake(): void {
    this.woken = true;
    this.wakeUp?.();
  }

  /** Stops looking, aborts handshakes in flight and hands their endpoints back unchanged (due at once on the next start). */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.wake();
    await this.loop;
    this.shutdown.abort();
    await Promise.all(this.inFlight);
  }

  private async run(): Promise<void> {
    while (this.running) {
      this.woken = false;
      const room = MAX_IN_FLIGHT - this.inFlight.size;
      if (room > 0) {
        try {
          const now = this.now();
          const owner = `${this.options.owner}:${++this.sequence}`;
          for (const endpoint of await this.store.claimVerifications(owner, now, now + this.options.leaseMs, room)) this.launch(endpoint, owner);
        } catch (error) {
          this.log.error({ err: error }, 'looking for due endpoint handshakes failed; backing off');
        }
      }
      if (this.woken || !this.running) continue;
      await this.sleep(await this.untilNextDue());
    }
  }

  private launch(endpoint: Endpoint, owner: string): void {
    const attempt = this.attempt(endpoint, owner).catch((error) => this.log.error({ err: error, endpointId: endpoint.id }, 'recording an endpoint handshake failed'));
    this.inFlight.add(attempt);
    void attempt.finally(() => {
      this.inFlight.delete(attempt);
      this.wake();
    });
  }

  private async attempt(endpoint: Endpoint, owner: string): Promise<void> {
    const challenge = randomBytes(24).toString('base64url');
    const { signal } = this.shutdown;
    const sent = await this.http.send(handshakeDelivery(endpoint, challenge, this.now()), signal);
    if (signal.aborted) {
      // Not an attempt: the endpoint is handed back as it was, due again as soon as a process looks.
      await this.store.finishVerification(endpoint.id, owner, endpoint.verification);
      return;
    }
    const result = judgeHandshake(sent, challenge);
    const next = verificationAfterAttempt(endpoint.verification, result, this.options.scheduleMs, this.now());
    if (!(await this.store.finishVerification(endpoint.id, owner, next))) return; // changed or re-triggered meanwhile
    const about = { endpointId: endpoint.id, appId: endpoint.appId, attempts: next.attempts };
    if (next.state === 'verified') {
      this.log.info(about, 'endpoint verified');
      this.onVerified();
      this.observer?.endpointVerified(endpoint);
    } else if (next.state === 'failed') {
      this.log.warn({ ...about, reason: next.reason }, 'endpoint verification failed');
      this.observer?.endpointVerificationFailed(endpoint, next.reason!);
    }
  }

  private async untilNextDue(): Promise<number> {
    try {
      const due = await this.store.nextVerificationAt();
      if (due === null) return this.options.pollMs;
      return Math.min(this.options.pollMs, Math.max(due - this.now(), 10));
    } catch {
      return this.options.pollMs;
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      // Woken while the next due time was being read: look again at once.
      if (this.woken) return resolve();
      const timer = setTimeout(done, ms);
      this.wakeUp = done;
      function done() {
        clearTimeout(timer);
        resolve();
      }
    });
  }
}

/**
 * The handshake request as a one-off delivery that is never stored: body
 * `{"type":"endpoint.verification","challenge":"…","endpointId":"ep_…"}`, signed with the endpoint's keys like any
 * delivery, its custom headers included. It is sent in clear even to an endpoint with encryption keys: the challenge is
 * no secret, and the receiver answers it before it handles payloads.
 */
export function handshakeDelivery(endpoint: Endpoint, challenge: string, now: number): ClaimedDelivery {
  const body = Buffer.from(JSON.stringify({ type: 'endpoint.verification', challenge, endpointId: endpoint.id }));
  const id = newId('msg', now);
  return {
    delivery: { id: 0, messageId: id, appId: endpoint.appId, endpointId: endpoint.id, status: 'in_flight', attemptCount: 0, retryIndex: 0, nextAttemptAt: null, manual: false, createdAt: now, updatedAt: now },
    message: { id, appId: endpoint.appId, eventType: 'endpoint.verification', eventId: null, payload: body, contentType: 'application/json', channels: null, tags: null, createdAt: now },
    endpoint: { ...endpoint, encryptionKeys: [] },
  };
}

/** Whether the answer verifies the endpoint: a 2xx whose body is JSON `{"challenge": "…"}` with the value sent. */
export function judgeHandshake(sent: SendResult, challenge: string): HandshakeResult {
  if (sent.kind === 'fatal') return { kind: 'fatal', reason: sent.error };
  if (sent.kind !== 'success') {
    const error = sent.kind === 'retry' ? sent.error : null;
    return { kind: 'retry', reason: sent.statusCode !== 0 ? `status ${sent.statusCode}` : (error ?? 'no answer') };
  }
  const echoed = echoedChallenge(sent.responseBody);
  if (echoed === null) return { kind: 'retry', reason: `status ${sent.statusCode} without {"challenge": "…"} in a JSON body` };
  if (!constantTimeEqual(echoed, challenge)) return { kind: 'retry', reason: 'wrong challenge' };
  return { kind: 'verified' };
}

function echoedChallenge(body: string): string | null {
  try {
    const parsed: unknown = JSON.parse(body);
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return null;
    const value = (parsed as Record<string, unknown>).challenge;
    return typeof value === 'string' ? value : null;
  } catch {
    return null;
  }
}
