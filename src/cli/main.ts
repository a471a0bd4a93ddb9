#!/usr/bin/env node
import { parseArgs } from 'node:util';
import type { RawSettings } from '../config.js';
import { VERSION } from '../version.js';

/** Exit codes: 0 ok, 1 runtime failure, 2 usage or configuration error. */
const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

const USAGE = `hookrelay ${VERSION} — self-hosted webhook gateway

Usage:
  hookrelay serve   [options]   start the API and the delivery dispatcher
  hookrelay migrate [--db path|url] apply database migrations and exit
  hookrelay reencrypt [options] encrypt every stored secret under the current master key and exit
                                (the last step of a master key rotation; see docs/security.md)
  hookrelay source …            manage inbound sources of a running server ("hookrelay source help")
  hookrelay app-key …           manage an application's API keys on a running server ("hookrelay app-key help")
  hookrelay app|endpoint|message|attempt list|get …
                                inspect a running server; endpoint create|update|delete|secret|rotate-secret,
                                message send ("hookrelay endpoint help" lists them all; --json everywhere)
  hookrelay resend <app> <message> <endpoint>    deliver a message to an endpoint again
  hookrelay recover <app> <endpoint> --since 2h  re-queue an endpoint's failed deliveries
  hookrelay tail [--app <app>] [--endpoint <endpoint>]   follow new messages and attempt outcomes live
  hookrelay scaffold receiver --framework express|fastify|lambda [--app <app>] [--out <dir>]
                                generate a webhook receiver project for this server's event types
  hookrelay listen --app <app> --forward-to http://localhost:3000/hooks
                                receive an app's deliveries on this machine through a connection it opens
                                ("hookrelay listen help")
  hookrelay version             print the version

Options (each also settable by environment variable):
  --port <n>                 HOOKRELAY_PORT                 listen port (default 8080)
  --host <addr>              HOOKRELAY_HOST                 listen address (default 127.0.0.1)
  --db <path|url>            HOOKRELAY_DB                   SQLite database file (default ./hookrelay.db), or a
                                                            postgres://user:password@host:5432/db URL (several processes)
  --log-level <level>        HOOKRELAY_LOG_LEVEL            fatal|error|warn|info|debug|trace|silent (default info)
  --log-format <json|pretty> HOOKRELAY_LOG_FORMAT           json lines with ISO timestamps (default), or one readable
                                                            line per record, coloured on a terminal
  --request-log <on|off>     HOOKRELAY_REQUEST_LOG          one info line per API request: method, route, status,
                                                            duration, caller (default off)
  --tls-cert <file>          HOOKRELAY_TLS_CERT             serve HTTPS with this PEM certificate (with --tls-key)
  --tls-key <file>           HOOKRELAY_TLS_KEY              PEM private key for --tls-cert
  --max-payload-bytes <n>    HOOKRELAY_MAX_PAYLOAD_BYTES    largest accepted request body (default 1048576)
  --retry-schedule <list>    HOOKRELAY_RETRY_SCHEDULE       delays before each attempt (default 0,5s,5m,30m,2h,5h,10h,10h)
  --verification-schedule <list>
                             HOOKRELAY_VERIFICATION_SCHEDULE
                                                            delays before each retry of an endpoint registration
                                                            handshake (default 5s,30s,2m,10m,30m,1h)
  --delivery-timeout <d>     HOOKRELAY_DELIVERY_TIMEOUT     whole-attempt timeout (default 15s)
  --connect-timeout <d>      HOOKRELAY_CONNECT_TIMEOUT      connect timeout (default 15s)
  --max-in-flight <n>        HOOKRELAY_MAX_IN_FLIGHT        attempts in flight in this process (default 512)
  --endpoint-concurrency <n> HOOKRELAY_ENDPOINT_CONCURRENCY default attempts in flight per endpoint (default 32)
  --sqlite-synchronous <m>   HOOKRELAY_SQLITE_SYNCHRONOUS   FULL (default: durable on power loss) or NORMAL
  --shutdown-grace <d>       HOOKRELAY_SHUTDOWN_GRACE       how long SIGTERM waits for attempts in flight (default 10s)
  --lease-margin <d>         HOOKRELAY_LEASE_MARGIN         how long a lease outlives the delivery timeout (default 30s)
  --retention <d>            HOOKRELAY_RETENTION            prune payloads of finished messages and attempts older
                                                            than this (default 30d)
  --dispatch <on|off>        HOOKRELAY_DISPATCH             off: accept and serve the API but deliver nothing (an
                                                            API-only process beside dispatching ones on PostgreSQL)
  --delivery-thread <on|off> HOOKRELAY_DELIVERY_THREAD      on: HTTP deliveries leave from a thread of their own
                                                            (default); off: from the main thread
  --signature-headers <set>  HOOKRELAY_SIGNATURE_HEADERS    names of a delivery's signature headers: both (default:
                                                            webhook-* and svix-*, same values), webhook or svix
  --allow-networks <list>    HOOKRELAY_ALLOW_NETWORKS       CIDRs, addresses and host names deliveries may reach although
                                                            loopback/private/link-local (default none), e.g. 127.0.0.0/8,::1/128
  --dns-servers <list>       HOOKRELAY_DNS_SERVERS          resolve delivery targets with these DNS servers (ip or ip:port)
                                                            instead of the system resolver
  --trusted-proxies <list>   HOOKRELAY_TRUSTED_PROXIES      CIDRs/addresses of proxies whose X-Forwarded-For or Forwarded
                                                            header names an ingest request's client (default none)
  --circuit-threshold <n>    HOOKRELAY_CIRCUIT_THRESHOLD    consecutive failed attempts that pause an endpoint
                                                            (default 5; 0 = no circuit breaker)
  --circuit-cooldown <d>     HOOKRELAY_CIRCUIT_COOLDOWN     first pause; doubles after each failed probe (default 30s)
  --circuit-max-cooldown <d> HOOKRELAY_CIRCUIT_MAX_COOLDOWN longest pause (default 10m)
  --disable-after <d>        HOOKRELAY_DISABLE_AFTER        disable an endpoint failing this long without a success
                                                            (default 5d; 0 = never)
  --disable-after-parked <n> HOOKRELAY_DISABLE_AFTER_PARKED disable an endpoint after this many parked messages without
                                                            a success in between (default 1000; 0 = never)
  --request-timeout <d>      HOOKRELAY_REQUEST_TIMEOUT      a request (headers and body) must arrive within this (default 30s)
  --headers-timeout <d>      HOOKRELAY_HEADERS_TIMEOUT      its request line and headers within this (default 10s)
  --max-header-bytes <n>     HOOKRELAY_MAX_HEADER_BYTES     request line plus headers (default 16384)
  --max-headers <n>          HOOKRELAY_MAX_HEADERS          request headers (default 100)
  --max-url-bytes <n>        HOOKRELAY_MAX_URL_BYTES        request path and query (default 8192)
  --max-connections <n>      HOOKRELAY_MAX_CONNECTIONS      open client connections (default 10000)
  --operational-failing-after <n> HOOKRELAY_OPERATIONAL_FAILING_AFTER
                                                            send message.attempt.failing at a delivery's n-th failed
                                                            attempt in a row (default 4; 0 = never)
  --portal-frame-ancestors <list>
                             HOOKRELAY_PORTAL_FRAME_ANCESTORS
                                                            origins that may show the customer portal in an iframe,
                                                            e.g. https://app.example.com (default none)
                             HOOKRELAY_ADMIN_TOKEN          the operator's bearer token (generated on first start if unset)
                             HOOKRELAY_METRICS_TOKEN        a bearer token that may read GET /metrics and nothing else
                             HOOKRELAY_MASTER_KEY           base64 of 32 bytes: encrypts secrets at rest (SQLite: generated
                                                            beside the database if unset; PostgreSQL: required)
  --master-key-file <file>   HOOKRELAY_MASTER_KEY_FILE      the master key in a file: current key first, previous keys after
                             HOOKRELAY_PREVIOUS_MASTER_KEYS older master keys, still accepted to decrypt (comma-separated)
                             OTEL_EXPORTER_OTLP_ENDPOINT    export traces (OpenTelemetry, OTLP over HTTP) to this collector;
                                                            the other standard OTEL_* variables apply (docs/operations.md)
`;

const FLAGS = {
  port: { type: 'string' },
  host: { type: 'string' },
  db: { type: 'string' },
  'log-level': { type: 'string' },
  'log-format': { type: 'string' },
  'request-log': { type: 'string' },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
  'max-payload-bytes': { type: 'string' },
  'retry-schedule': { type: 'string' },
  'verification-schedule': { type: 'string' },
  'delivery-timeout': { type: 'string' },
  'connect-timeout': { type: 'string' },
  'max-in-flight': { type: 'string' },
  'endpoint-concurrency': { type: 'string' },
  'sqlite-synchronous': { type: 'string' },
  'shutdown-grace': { type: 'string' },
  'lease-margin': { type: 'string' },
  retention: { type: 'string' },
  dispatch: { type: 'string' },
  'delivery-thread': { type: 'string' },
  'signature-headers': { type: 'string' },
  'allow-networks': { type: 'string' },
  'dns-servers': { type: 'string' },
  'trusted-proxies': { type: 'string' },
  'portal-frame-ancestors': { type: 'string' },
  'master-key-file': { type: 'string' },
  'circuit-threshold': { type: 'string' },
  'circuit-cooldown': { type: 'string' },
  'circuit-max-cooldown': { type: 'string' },
  'disable-after': { type: 'string' },
  'disable-after-parked': { type: 'string' },
  'request-timeout': { type: 'string' },
  'headers-timeout': { type: 'string' },
  'max-header-bytes': { type: 'string' },
  'max-headers': { type: 'string' },
  'max-url-bytes': { type: 'string' },
  'max-connections': { type: 'string' },
  'operational-failing-after': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** Commands that talk to a running server through its API, each loaded only when it runs. */
type ClientCommand = () => Promise<{ usage: string; run: (args: string[], out: (text: string) => void) => Promise<number> }>;
const resource = (name: string): ClientCommand => async () => {
  const { RESOURCE_USAGE, resourceCommand } = await import('./resources.js');
  return { usage: RESOURCE_USAGE, run: (args, out) => resourceCommand(name, args, out, (text) => process.stderr.write(text)) };
};
const CLIENT_COMMANDS: Record<string, ClientCommand | undefined> = {
  source: async () => {
    const { SOURCE_USAGE, sourceCommand } = await import('./sources.js');
    return { usage: SOURCE_USAGE, run: sourceCommand };
  },
  'app-key': async () => {
    const { APP_KEY_USAGE, appKeyCommand } = await import('./app-keys.js');
    return { usage: APP_KEY_USAGE, run: appKeyCommand };
  },
  app: resource('app'),
  endpoint: resource('endpoint'),
  message: resource('message'),
  attempt: resource('attempt'),
  resend: resource('resend'),
  recover: resource('recover'),
  scaffold: async () => {
    const { SCAFFOLD_USAGE, scaffoldCommand } = await import('./scaffold.js');
    return { usage: SCAFFOLD_USAGE, run: scaffoldCommand };
  },
  listen: async () => {
    const { LISTEN_USAGE, listenCommand } = await import('./listen.js');
    return { usage: LISTEN_USAGE, run: (args, out) => listenCommand(args, out, (text) => process.stderr.write(text)) };
  },
  tail: async () => {
    const { TAIL_USAGE, tailCommand } = await import('./tail.js');
    return { usage: TAIL_USAGE, run: (args, out) => tailCommand(args, out) };
  },
};

function toRaw(values: Record<string, unknown>): RawSettings {
  const raw: Record<string, string> = {};
  for (const [flag, value] of Object.entries(values)) {
    if (typeof value === 'string') raw[flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase())] = value;
  }
  return raw as RawSettings;
}

function fail(message: string, code: number): number {
  process.stderr.write(`hookrelay: ${message}\n`);
  return code;
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    process.stdout.write(USAGE);
    return command === undefined ? EXIT.usage : EXIT.ok;
  }
  if (command === 'version' || command === '--version') {
    process.stdout.write(`${VERSION}\n`);
    return EXIT.ok;
  }
  const client = CLIENT_COMMANDS[command];
  if (client) {
    try {
      const { usage, run } = await client();
      if (rest[0] === undefined || rest[0] === 'help' || rest[0] === '--help') {
        process.stdout.write(usage);
        return rest[0] === undefined ? EXIT.usage : EXIT.ok;
      }
      return await run(rest, (text) => process.stdout.write(text));
    } catch (error) {
      const { CliError } = await import('./client.js');
      if (error instanceof CliError) return fail(error.message, error.exitCode);
      return fail(`failed: ${(error as Error).message}`, EXIT.failure);
    }
  }
  let values: Record<string, unknown>;
  try {
    ({ values } = parseArgs({ args: rest, options: FLAGS, strict: true, allowPositionals: false }));
  } catch (error) {
    const { parseErrorText } = await import('./args.js');
    return fail(`${parseErrorText(command, error)}\nRun "hookrelay help" for the options.`, EXIT.usage);
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return EXIT.ok;
  }
  if (command === 'serve' || command === 'migrate' || command === 'reencrypt') {
    const { runServerCommand } = await import('./server-commands.js');
    return runServerCommand(command, toRaw(values));
  }
  return fail(`unknown command ${JSON.stringify(command)}\nRun "hookrelay help" for the commands.`, EXIT.usage);
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error) => {
    process.stderr.write(`hookrelay: unexpected failure: ${(error as Error).message}\n`);
    process.exit(EXIT.failure);
  },
);
