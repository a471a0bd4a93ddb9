import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ID_PREFIX, newId } from '../src/domain/ids.js';
import type { AttemptOutcome, EndpointInput } from '../src/store/store.js';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { benchPayload, now } from './shared.js';

export interface StoreOnlyResult {
  acceptPerSecond: number;
  /** [claim batch size, deliveries claimed and completed per second, cycles per second] */
  cycles: { batch: number; perSecond: number; cyclesPerSecond: number; claimMs: number; completeMs: number }[];
  nextDueAtMs: number;
  backlog: number;
}

/**
 * The dispatcher's store work without HTTP: accept a backlog straight into the store, then claim and
 * complete it in cycles of a fixed batch size, as the dispatcher would if every attempt succeeded at once.
 */
export async function storeOnly(messages: number, synchronous: 'FULL' | 'NORMAL', batches: number[]): Promise<StoreOnlyResult> {
  const dir = mkdtempSync(join(tmpdir(), 'hookrelay-bench-store-'));
  const store = new SqliteStore({ path: join(dir, 'store.db'), synchronous });
  try {
    const t = Date.now();
    const app = await store.createApp({ name: 'bench', uid: null, rateLimit: null, metadata: {} }, t);
    await store.createEndpoint(
      app.id,
      // Cast: the input grows fields (e.g. destination) that a plain HTTP endpoint leaves null.
      { uid: null, url: 'http://127.0.0.1:9/e', description: '', version: 1, filterTypes: null, channels: null, filter: null, headers: {}, disabled: false, rateLimit: null, ordering: 'parallel', maxInFlight: 10_000, metadata: {}, destination: null } as EndpointInput,
      'whsec_' + Buffer.alloc(24, 7).toString('base64'),
      t,
    );
    const payload = Buffer.from(JSON.stringify(benchPayload(0)));
    const acceptStart = now();
    for (let done = 0; done < messages; ) {
      const chunk = Math.min(64, messages - done);
      await Promise.all(
        Array.from({ length: chunk }, () =>
          store.accept({ appId: app.id, eventType: 'bench.event', eventId: null, payload, contentType: 'application/json', channels: null, tags: null, idempotencyKey: null, idempotencyTtlMs: 0, now: Date.now(), dueAt: Date.now() }),
        ),
      );
      done += chunk;
    }
    const acceptPerSecond = messages / ((now() - acceptStart) / 1000);

    const dueStart = now();
    for (let i = 0; i < 5; i++) await store.nextDueAt();
    const nextDueAtMs = (now() - dueStart) / 5;

    const owner = 'bench-store-only';
    const share = Math.floor(messages / batches.length);
    const cycles: StoreOnlyResult['cycles'] = [];
    for (const batch of batches) {
      let done = 0;
      let n = 0;
      let claimMs = 0;
      let completeMs = 0;
      const start = now();
      while (done < share) {
        const c0 = now();
        const claimed = await store.claim({ owner, now: Date.now(), limit: Math.min(batch, share - done), leaseMs: 60_000 });
        claimMs += now() - c0;
        if (claimed.length === 0) break;
        const finished = Date.now();
        const outcomes: AttemptOutcome[] = claimed.map(({ delivery, endpoint: ep }) => ({
          owner,
          attempt: {
            id: newId(ID_PREFIX.attempt, finished),
            deliveryId: delivery.id,
            messageId: delivery.messageId,
            endpointId: delivery.endpointId,
            appId: delivery.appId,
            url: ep.url,
            startedAt: finished,
            durationMs: 1,
            statusCode: 200,
            succeeded: true,
            responseBody: 'ok',
            error: null,
            request: null,
            trigger: 'scheduled',
          },
          next: { kind: 'succeeded' },
        }));
        const k0 = now();
        await store.complete(outcomes);
        completeMs += now() - k0;
        done += claimed.length;
        n++;
      }
      const seconds = (now() - start) / 1000;
      cycles.push({ batch, perSecond: done / seconds, cyclesPerSecond: n / seconds, claimMs: claimMs / n, completeMs: completeMs / n });
    }
    return { acceptPerSecond, cycles, nextDueAtMs, backlog: messages };
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
