import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { buildApi } from './api/app.js';
import type { Settings } from './config.js';
import { DEFAULT_RETRY_POLICY } from './domain/retry.js';
import { EgressPolicy } from './egress/policy.js';
import { Ingest } from './inbound/ingest.js';
import { BrokerSources } from './inbound/brokers/manager.js';
import { HttpDestination } from './pipeline/destinations/http.js';
import { ThreadTransport } from './pipeline/destinations/http-thread.js';
import { Handshakes } from './pipeline/handshake.js';
import { Destinations } from './pipeline/destinations/index.js';
import { TransformingDestination } from './pipeline/destinations/transforming.js';
import { Sandbox } from './transform/sandbox.js';
import { ListenerHub } from './pipeline/destinations/listen.js';
import { startTracing } from './observability/tracing.js';
import { Dispatcher } from './pipeline/dispatcher.js';
import { AddressList } from './inbound/address-list.js';
import { Intake } from './pipeline/intake.js';
import { Retention } from './pipeline/retention.js';
import { observeAll } from './pipeline/observer.js';
import { AttemptLog } from './observability/attempt-log.js';
import { Metrics } from './observability/metrics.js';
import { OperationalWebhooks } from './operational/events.js';
import { reportEndpointChanges } from './operational/report-endpoint-changes.js';
import { openSealedStore } from './secrets/open-sealed-store.js';
import { masterKeyFile } from './secrets/master-key.js';
import { sqlitePath } from './store/location.js';
import { DatabaseOpenError } from './store/sqlite/open.js';
import { adminTokenFile } from './admin-token-file.js';
import type { Store } from './store/store.js';
import { VERSION } from './version.js';

export interface Hookrelay {
  url: string;
  adminToken: string;
  store: Store;
  dispatcher: Dispatcher;
  /** Runs endpoint registration handshakes (started with the dispatcher). */
  handshakes: Handshakes;
  server: FastifyInstance;
  /** Stops taking requests, drains the dispatcher within the grace period, closes the store. */
  close(): Promise<void>;
}

export { adminTokenFile } from './admin-token-file.js';

/** The admin token; a generated one is kept in its file only once the server listens (`keepAdminToken`). */
function resolveAdminToken(settings: Settings): { token: string; generated: boolean; file: string | null } {
  if (settings.adminToken) return { token: settings.adminToken, generated: false, file: null };
  const file = adminTokenFile(settings.db);
  if (file && existsSync(file)) return { token: readFileSync(file, 'utf8').trim(), generated: false, file };
  return { token: `hr_admin_${randomBytes(24).toString('base64url')}`, generated: true, file };
}

function keepAdminToken(admin: { token: string; generated: boolean; file: string | null }, log: Logger): void {
  if (!admin.generated) return;
  if (admin.file) {
    writeFileSync(admin.file, admin.token + '\n', { mode: 0o600 });
    chmodSync(admin.file, 0o600);
  }
  log.info({ file: admin.file }, 'generated an admin token (set HOOKRELAY_ADMIN_TOKEN to choose your own)');
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

/**
 * A first start creates the SQLite file. A start that finds the master key or admin token an earlier run generated
 * beside it, but not the file, is not a first start: the database was moved or deleted, and starting afresh would
 * silently answer an empty store (and its key could no longer open the old database's secrets).
 */
function refuseVanishedDatabase(db: string): void {
  const path = sqlitePath(db);
  if (path === null || path === ':memory:' || existsSync(path)) return;
  const leftovers = [masterKeyFile(db), adminTokenFile(db)].filter((file): file is string => file !== null && existsSync(file));
  if (leftovers.length === 0) return;
  throw new DatabaseOpenError(
    `the database ${path} does not exist, but ${leftovers.join(' and ')} from an earlier run beside it do: the database was moved or deleted. ` +
      `Restore it (or point --db at it); to start afresh on purpose, remove ${leftovers.join(' and ')} first`,
  );
}

/** Says loudly when the database stops taking writes (disk full, file deleted), and when it takes them again. */
function watchStorage(store: Store, log: Logger): NodeJS.Timeout {
  let reported: string | null = null;
  const timer = setInterval(() => {
    const problem = store.storageProblem?.() ?? null;
    if (problem === reported) return;
    if (problem) log.error({ problem }, 'the database cannot take writes: new messages are refused with 503 until this is fixed');
    else log.info({ was: reported }, 'the database takes writes again');
    reported = problem;
  }, 1000);
  timer.unref();
  return timer;
}

/** The composition root: wires store, pipeline and API, and starts serving. */
export async function startHookrelay(settings: Readonly<Settings>, log: Logger): Promise<Hookrelay & { adminTokenGenerated: boolean; adminTokenFile: string | null }> {
  refuseVanishedDatabase(settings.db);
  const store = await openSealedStore(
    settings,
    { synchronous: settings.sqliteSynchronous, onError: (error) => log.warn({ err: error }, 'database connection lost; reconnecting') },
    log,
  );
  const admin = resolveAdminToken(settings);
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
  const httpOptions = {
    timeoutMs: settings.deliveryTimeoutMs,
    connectTimeoutMs: settings.connectTimeoutMs,
    responseBodyLimit: settings.responseBodyLimit,
    connectionsPerOrigin: Math.max(settings.endpointConcurrency, 64),
    userAgent: `hookrelay/${VERSION}`,
    signatureHeaders: settings.signatureHeaders,
    egress,
  };
  // Signing stays here (secrets never cross threads); the sockets and HTTP parsing go to the delivery thread.
  const http = new HttpDestination(httpOptions, settings.deliveryThread && settings.dispatch ? new ThreadTransport(httpOptions) : undefined);
  // `hookrelay listen` streams connect to a process that delivers: an API-only one has nothing to deliver through them.
  const listeners = settings.dispatch
    ? new ListenerHub({ timeoutMs: settings.deliveryTimeoutMs, responseBodyLimit: settings.responseBodyLimit, signatureHeaders: settings.signatureHeaders, userAgent: `hookrelay/${VERSION}` })
    : null;
  // Endpoint transformations run on worker threads in QuickJS/WebAssembly, never in this thread (src/transform/).
  const sandbox = new Sandbox();
  const destination = new TransformingDestination(new Destinations(http, undefined, { egress, listeners: listeners ?? undefined }), sandbox);
  const metrics = new Metrics((now) => store.stats(now));
  const intake = new Intake(store, retry.scheduleMs[0] ?? 0, metrics);
  const operational = new OperationalWebhooks(store, intake, log.child({ component: 'operational' }), {
    failingAfter: settings.operationalFailingAfter,
    idempotencyTtlMs: settings.idempotencyTtlMs,
    now: Date.now,
  });
  const observer = observeAll([metrics, new AttemptLog(log.child({ component: 'dispatcher' })), operational], (error) => log.error({ err: error }, 'a pipeline observer failed'));
  // Off unless OTEL_* says where to export; the SDK is loaded only then.
  const tracing = await startTracing(settings.otel, VERSION);
  if (tracing) log.info({ endpoint: settings.otel.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? settings.otel.OTEL_EXPORTER_OTLP_ENDPOINT }, 'exporting traces over OTLP/HTTP');
  const dispatcherOwner = `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
  const dispatcher = new Dispatcher(
    store,
    destination,
    {
      owner: dispatcherOwner,
      maxInFlight: settings.maxInFlight,
      claimBatch: 256,
      leaseMs: settings.deliveryTimeoutMs + settings.leaseMarginMs,
      pollMs: settings.pollMs,
      retry,
      health: settings.health,
      observer,
      tracing,
    },
    log.child({ component: 'dispatcher' }),
  );
  intake.onAccepted(() => dispatcher.wake());
  // Endpoint registration handshakes go through their own HTTP client (the same egress policy, timeouts and signing as
  // deliveries); only the start of the answer is read, since all it must hold is the echoed challenge.
  const handshakeHttp = new HttpDestination({ timeoutMs: settings.deliveryTimeoutMs, connectTimeoutMs: settings.connectTimeoutMs, responseBodyLimit: 4096, connectionsPerOrigin: 4, userAgent: `hookrelay/${VERSION}`, signatureHeaders: settings.signatureHeaders, egress });
  const handshakes = new Handshakes(
    store,
    handshakeHttp,
    { owner: dispatcherOwner, scheduleMs: settings.verificationScheduleMs, leaseMs: settings.deliveryTimeoutMs + settings.leaseMarginMs, pollMs: settings.pollMs },
    log.child({ component: 'handshake' }),
    () => dispatcher.wake(),
    operational,
  );
  // Broker sources: hookrelay consumes Kafka topics, Redis streams, JetStream consumers and RabbitMQ queues itself.
  const brokerSources = new BrokerSources(store, intake, egress, log.child({ component: 'broker-sources' }));

  const { app } = buildApi(
    {
      store: reportEndpointChanges(store, operational),
      intake,
      ingest: new Ingest(store, intake, log.child({ component: 'ingest' }), metrics, new AddressList(settings.trustedProxies)),
      now: Date.now,
      endpointConcurrency: settings.endpointConcurrency,
      idempotencyTtlMs: settings.idempotencyTtlMs,
      wake: () => {
        dispatcher.wake();
        handshakes.wake();
      },
      egress,
      sandbox,
      operational,
      listeners,
      brokerSources,
    },
    {
      adminToken: admin.token,
      maxPayloadBytes: settings.maxPayloadBytes,
      logger: log.child({ component: 'api' }),
      version: VERSION,
      https: settings.tls,
      limits: settings.http,
      metrics: { metrics, metricsToken: settings.metricsToken },
      requestLog: settings.requestLog,
      tracing,
      ui: { portalFrameAncestors: settings.portalFrameAncestors },
      readiness: async () => {
        try {
          await store.nextDueAt();
        } catch (error) {
          return { checks: { store: `unavailable: ${(error as Error).message}` }, destinations: {} };
        }
        const problem = store.storageProblem?.() ?? null;
        if (problem) return { checks: { store: `unavailable: ${problem}` }, destinations: {} };
        return { checks: { store: 'ok' }, destinations: await destination.readiness(await store.listDestinationEndpoints()) };
      },
    },
  );

  try {
    await app.listen({ port: settings.port, host: settings.host });
  } catch (error) {
    // A start that failed leaves no key behind: the next start generates them afresh (the token file is not written yet).
    await tracing?.shutdown();
    await store.close();
    if (store.unusedKeyFile) rmSync(store.unusedKeyFile, { force: true });
    throw error;
  }
  try {
    keepAdminToken(admin, log);
  } catch (error) {
    await app.close();
    await store.close();
    throw error;
  }
  // An API-only process (--dispatch off) accepts into the shared store and leaves delivery to the others.
  if (settings.dispatch) {
    dispatcher.start();
    handshakes.start();
  }
  else log.warn('this process accepts but does not deliver (--dispatch off); another hookrelay process must run the dispatcher');
  await brokerSources.start();
  const storageWatch = watchStorage(store, log);
  const retention = new Retention(store, { retentionMs: settings.retentionMs, intervalMs: settings.pruneIntervalMs }, log.child({ component: 'retention' }));
  retention.start();
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : settings.port;
  const host = settings.host.includes(':') ? `[${settings.host}]` : settings.host;
  const url = `${settings.tls ? 'https' : 'http'}://${host}:${port}`;

  let closing: Promise<void> | null = null;
  const close = () =>
    (closing ??= (async () => {
      clearInterval(storageWatch);
      await app.close();
      // Consumers finish the records in hand (accepted and acknowledged) before the store closes.
      await brokerSources.stop();
      await retention.stop();
      await handshakes.stop();
      await dispatcher.stop(settings.shutdownGraceMs);
      // Events of the last recorded outcomes are accepted before the store closes.
      await operational.flush();
      await destination.close();
      await handshakeHttp.close();
      await sandbox.close();
      // The spans of the last attempts are exported before the process goes.
      await tracing?.shutdown();
      await store.close();
    })());

  return { url, adminToken: admin.token, adminTokenGenerated: admin.generated, adminTokenFile: admin.file, store, dispatcher, handshakes, server: app, close };
}
