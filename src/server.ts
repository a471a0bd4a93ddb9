import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join, basename } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { buildApi } from './api/app.js';
import type { Settings } from './config.js';
import { DEFAULT_RETRY_POLICY } from './domain/retry.js';
import { EgressPolicy } from './egress/policy.js';
import { Ingest } from './inbound/ingest.js';
import { HttpDestination } from './pipeline/destinations/http.js';
import { Destinations } from './pipeline/destinations/index.js';
import { Dispatcher } from './pipeline/dispatcher.js';
import { Intake } from './pipeline/intake.js';
import { Retention } from './pipeline/retention.js';
import { openSealedStore } from './secrets/open-sealed-store.js';
import { sqlitePath } from './store/open-store.js';
import type { Store } from './store/store.js';
import { VERSION } from './version.js';

export interface Hookrelay {
  url: string;
  adminToken: string;
  store: Store;
  dispatcher: Dispatcher;
  server: FastifyInstance;
  /** Stops taking requests, drains the dispatcher within the grace period, closes the store. */
  close(): Promise<void>;
}

/** Where an admin token generated on first start is kept, beside the database file. */
export function adminTokenFile(db: string): string | null {
  const path = sqlitePath(db);
  if (path === null || path === ':memory:') return null;
  return join(dirname(path), `${basename(path).replace(/\.[^.]*$/, '')}.admin-token`);
}

function resolveAdminToken(settings: Settings, log: Logger): { token: string; generated: boolean; file: string | null } {
  if (settings.adminToken) return { token: settings.adminToken, generated: false, file: null };
  const file = adminTokenFile(settings.db);
  if (file && existsSync(file)) return { token: readFileSync(file, 'utf8').trim(), generated: false, file };
  const token = `hr_admin_${randomBytes(24).toString('base64url')}`;
  if (file) {
    writeFileSync(file, token + '\n', { mode: 0o600 });
    chmodSync(file, 0o600);
  }
  log.info({ file }, 'generated an admin token (set HOOKRELAY_ADMIN_TOKEN to choose your own)');
  return { token, generated: true, file };
}

/** Sources that accept unsigned requests are allowed only when asked for; say so at every start. */
async function warnAboutUnverifiedSources(store: Store, log: Logger): Promise<void> {
  let iterator: string | null = null;
  for (;;) {
    const page = await store.listSources({ limit: 250, iterator, order: 'ascending' });
    for (const source of page.data) {
      if (source.type === 'none' || source.type === 'generic-webhook') {
        log.warn({ sourceId: source.id, name: source.name }, 'source accepts requests WITHOUT verification (type none, insecure: true)');
      }
    }
    if (page.done || page.data.length === 0) return;
    iterator = page.iterator;
  }
}

/** The composition root: wires store, pipeline and API, and starts serving. */
export async function startHookrelay(settings: Readonly<Settings>, log: Logger): Promise<Hookrelay & { adminTokenGenerated: boolean; adminTokenFile: string | null }> {
  const store = await openSealedStore(
    settings,
    { synchronous: settings.sqliteSynchronous, onError: (error) => log.warn({ err: error }, 'database connection lost; reconnecting') },
    log,
  );
  const admin = resolveAdminToken(settings, log);
  // An SQLite database is owned by this one process: whatever was in flight when it last stopped is due again now.
  // A shared store must not: other processes hold live leases, and a dead process's leases simply expire.
  if (store.exclusive) {
    const released = await store.releaseLeases(null);
    if (released > 0) log.info({ released }, 'returned deliveries left in flight by the previous run');
  }

  await warnAboutUnverifiedSources(store, log);

  const retry = { ...DEFAULT_RETRY_POLICY, scheduleMs: settings.retryScheduleMs };
  const egress = new EgressPolicy({ allowNetworks: settings.allowNetworks, dnsServers: settings.dnsServers });
  if (settings.allowNetworks.length > 0) log.info({ allowNetworks: settings.allowNetworks }, 'deliveries may reach these internal networks and hosts');
  const http = new HttpDestination({
    timeoutMs: settings.deliveryTimeoutMs,
    connectTimeoutMs: settings.connectTimeoutMs,
    responseBodyLimit: settings.responseBodyLimit,
    connectionsPerOrigin: Math.max(settings.endpointConcurrency, 64),
    userAgent: `hookrelay/${VERSION}`,
    egress,
  });
  const destination = new Destinations(http, undefined, { egress });
  const dispatcher = new Dispatcher(
    store,
    destination,
    {
      owner: `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`,
      maxInFlight: settings.maxInFlight,
      claimBatch: 256,
      leaseMs: settings.deliveryTimeoutMs + settings.leaseMarginMs,
      pollMs: settings.pollMs,
      retry,
      health: settings.health,
    },
    log.child({ component: 'dispatcher' }),
  );
  const intake = new Intake(store, retry.scheduleMs[0] ?? 0);
  intake.onAccepted(() => dispatcher.wake());

  const { app } = buildApi(
    {
      store,
      intake,
      ingest: new Ingest(store, intake, log.child({ component: 'ingest' })),
      now: Date.now,
      endpointConcurrency: settings.endpointConcurrency,
      idempotencyTtlMs: settings.idempotencyTtlMs,
      wake: () => dispatcher.wake(),
      egress,
    },
    {
      adminToken: admin.token,
      maxPayloadBytes: settings.maxPayloadBytes,
      logger: log.child({ component: 'api' }),
      version: VERSION,
      https: settings.tls,
      limits: settings.http,
      ui: { portalFrameAncestors: settings.portalFrameAncestors },
      readiness: async () => {
        try {
          await store.nextDueAt();
        } catch (error) {
          return { checks: { store: `unavailable: ${(error as Error).message}` }, destinations: {} };
        }
        return { checks: { store: 'ok' }, destinations: await destination.readiness(await store.listDestinationEndpoints()) };
      },
    },
  );

  try {
    await app.listen({ port: settings.port, host: settings.host });
  } catch (error) {
    await store.close();
    throw error;
  }
  // An API-only process (--dispatch off) accepts into the shared store and leaves delivery to the others.
  if (settings.dispatch) dispatcher.start();
  else log.warn('this process accepts but does not deliver (--dispatch off); another hookrelay process must run the dispatcher');
  const retention = new Retention(store, { retentionMs: settings.retentionMs, intervalMs: settings.pruneIntervalMs }, log.child({ component: 'retention' }));
  retention.start();
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : settings.port;
  const host = settings.host.includes(':') ? `[${settings.host}]` : settings.host;
  const url = `${settings.tls ? 'https' : 'http'}://${host}:${port}`;

  let closing: Promise<void> | null = null;
  const close = () =>
    (closing ??= (async () => {
      await app.close();
      await retention.stop();
      await dispatcher.stop(settings.shutdownGraceMs);
      await destination.close();
      await store.close();
    })());

  return { url, adminToken: admin.token, adminTokenGenerated: admin.generated, adminTokenFile: admin.file, store, dispatcher, server: app, close };
}
