import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Real brokers for tests: each started on loopback, on a free port, with its data in a temp dir, by the test file that
 * needs it, and stopped by it. Installed by scripts/ci/<broker>.sh. Under CI=true a missing broker fails the suite;
 * on a developer machine without one the suite is skipped, saying why.
 */

export const IN_CI = process.env.CI === 'true';

/** For `describe(name, { skip: brokerSkip(…) })`: false when the binary is there; the reason (or a failure in CI) otherwise. */
export function brokerSkip(binary: string, script: string): false | string {
  if (findBinary(binary)) return false;
  const missing = `${binary} was not found on PATH (run scripts/ci/${script})`;
  if (IN_CI) throw new Error(`CI=true and ${missing}`);
  console.warn(`# SKIPPING: ${missing}`);
  return missing;
}

export function findBinary(binary: string): string | null {
  const found = spawnSync('sh', ['-c', `command -v ${binary} || ls /usr/sbin/${binary} /usr/bin/${binary} 2>/dev/null | head -n 1`], { encoding: 'utf8' }).stdout.trim();
  return found.split('\n')[0] || null;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

const portOpen = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });

export interface TestBroker {
  /** `127.0.0.1:port` */
  address: string;
  port: number;
  dir: string;
  /** Kills the server (SIGKILL: what a crash looks like to clients); its data stays in `dir`. */
  stop(): Promise<void>;
  /** Starts it again on the same port and data. */
  start(): Promise<void>;
  close(): Promise<void>;
}

/** Runs `command args(port, dir)` until `ready(port)` holds (30 s at most), and controls it. */
export async function startBroker(
  name: string,
  command: string,
  args: (port: number, dir: string) => string[],
  ready: (port: number) => Promise<boolean> = portOpen,
  prepare?: (port: number, dir: string) => Promise<void>,
  spawnOptions: { env?: NodeJS.ProcessEnv; group?: boolean; afterStop?: () => void } = {},
): Promise<TestBroker> {
  const dir = mkdtempSync(join(tmpdir(), `hookrelay-${name}-`));
  const port = await freePort();
  await prepare?.(port, dir);
  let child: ChildProcess | null = null;
  let exited: Promise<void> = Promise.resolve();

  const start = async () => {
    // `group`: the command is a wrapper script; its process group is killed, the server with it.
    const proc = spawn(command, args(port, dir), { stdio: ['ignore', 'pipe', 'pipe'], env: spawnOptions.env ?? process.env, detached: spawnOptions.group === true });
    child = proc;
    let output = '';
    const keep = (chunk: Buffer) => (output = (output + chunk.toString()).slice(-4000));
    proc.stdout!.on('data', keep);
    proc.stderr!.on('data', keep);
    let gone = false;
    exited = new Promise((resolve) => proc.once('exit', () => ((gone = true), resolve())));
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (gone) throw new Error(`${name} exited before it was ready:\n${output}`);
      if (await ready(port).catch(() => false)) return;
      if (Date.now() > deadline) {
        if (spawnOptions.group) process.kill(-proc.pid!, 'SIGKILL');
        else proc.kill('SIGKILL');
        throw new Error(`${name} on 127.0.0.1:${port} not ready after 30 s:\n${output}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  };

  const stop = async () => {
    const proc = child;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    child = null;
    if (spawnOptions.group) process.kill(-proc.pid!, 'SIGKILL');
    else proc.kill('SIGKILL');
    await exited;
  };

  await start();
  return {
    address: `127.0.0.1:${port}`,
    port,
    dir,
    start,
    stop,
    close: async () => {
      await stop();
      spawnOptions.afterStop?.();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** redis-server with an append-only file fsynced on every write, so a killed server keeps what it acknowledged. */
export function startRedis(options: { password?: string } = {}): Promise<TestBroker> {
  return startBroker('redis-server', findBinary('redis-server')!, (port, dir) => [
    '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'yes', '--appendfsync', 'always',
    ...(options.password ? ['--requirepass', options.password] : []),
  ]);
}

/** nats-server with JetStream (file storage in the temp dir). */
export function startNats(options: { user?: string; password?: string; tls?: { certFile: string; keyFile: string } } = {}): Promise<TestBroker> {
  return startBroker('nats-server', findBinary('nats-server')!, (port, dir) => [
    '-a', '127.0.0.1', '-p', String(port), '-js', '-sd', dir,
    ...(options.user ? ['--user', options.user, '--pass', options.password ?? ''] : []),
    ...(options.tls ? ['--tls', '--tlscert', options.tls.certFile, '--tlskey', options.tls.keyFile] : []),
  ]);
}

/** The Kafka jars scripts/ci/kafka.sh copies (HOOKRELAY_KAFKA_LIBS overrides), newest version first; null when none. */
export function findKafkaLibs(): string | null {
  if (process.env.HOOKRELAY_KAFKA_LIBS) return existsSync(process.env.HOOKRELAY_KAFKA_LIBS) ? process.env.HOOKRELAY_KAFKA_LIBS : null;
  // dist/test/helpers → the repository
  const cache = fileURLToPath(new URL('../../../.ci/cache/kafka', import.meta.url));
  if (!existsSync(cache)) return null;
  const versions = readdirSync(cache)
    .filter((v) => existsSync(join(cache, v, 'complete')))
    .sort((a, b) => b.localeCompare(a, 'en', { numeric: true }));
  return versions.length ? join(cache, versions[0], 'libs') : null;
}

export function kafkaSkip(): false | string {
  if (findKafkaLibs() && findBinary('java')) return false;
  const missing = 'no Kafka jars or no java (run scripts/ci/kafka.sh, or set HOOKRELAY_KAFKA_LIBS to a directory of the Kafka jars)';
  if (IN_CI) throw new Error(`CI=true and ${missing}`);
  console.warn(`# SKIPPING: ${missing}`);
  return missing;
}

/**
 * A single-node Kafka broker in KRaft mode (broker and controller in one JVM), its log dirs formatted in the temp dir.
 * Topics are not created on first use unless `autoCreateTopics`.
 */
export async function startKafka(options: { autoCreateTopics?: boolean; sasl?: { username: string; password: string } } = {}): Promise<TestBroker> {
  const libs = findKafkaLibs()!;
  const classpath = `${libs}/*`;
  const controllerPort = await freePort();
  const prepare = async (port: number, dir: string) => {
    // `sasl`: the client listener takes SASL/PLAIN logins, this user's only.
    const sasl = options.sasl;
    const protocol = sasl ? 'SASL_PLAINTEXT' : 'PLAINTEXT';
    const properties = [
      'process.roles=broker,controller',
      'node.id=1',
      `controller.quorum.voters=1@127.0.0.1:${controllerPort}`,
      `listeners=${protocol}://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}`,
      `advertised.listeners=${protocol}://127.0.0.1:${port}`,
      'controller.listener.names=CONTROLLER',
      `listener.security.protocol.map=${protocol}:${protocol},CONTROLLER:PLAINTEXT`,
      ...(sasl
        ? [
            `inter.broker.listener.name=${protocol}`,
            'sasl.enabled.mechanisms=PLAIN',
            'sasl.mechanism.inter.broker.protocol=PLAIN',
            `listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="${sasl.username}" password="${sasl.password}" user_${sasl.username}="${sasl.password}";`,
          ]
        : []),
      `log.dirs=${join(dir, 'data')}`,
      'num.partitions=1',
      'offsets.topic.replication.factor=1',
      'transaction.state.log.replication.factor=1',
      'transaction.state.log.min.isr=1',
      'group.initial.rebalance.delay.ms=0',
      `auto.create.topics.enable=${options.autoCreateTopics === true}`,
    ];
    writeFileSync(join(dir, 'server.properties'), properties.join('\n') + '\n');
    const format = spawnSync('java', ['-cp', classpath, 'kafka.tools.StorageTool', 'format', '-t', 'hookrelaytestcluster0A', '-c', join(dir, 'server.properties')], { encoding: 'utf8' });
    if (format.status !== 0) throw new Error(`kafka storage format failed:\n${format.stdout}${format.stderr}`);
  };
  return startBroker('kafka', 'java', (_port, dir) => ['-Xmx512m', '-cp', classpath, 'kafka.Kafka', join(dir, 'server.properties')], portOpen, prepare);
}

/**
 * rabbitmq-server (Debian's, run directly rather than through its `su rabbitmq` wrapper) as a throwaway node: its own
 * node name, Erlang distribution and epmd ports, cookie (HOME) and Mnesia dir in the temp dir; `guest` may log in
 * from loopback. Its epmd is stopped on close.
 */
export async function startRabbitmq(): Promise<TestBroker> {
  const [distPort, epmdPort] = [await freePort(), await freePort()];
  // Its own epmd, in the foreground, so that it is this process's child and goes with the node (the one Erlang
  // starts by itself is a daemon that outlives the test).
  const epmd = spawn('epmd', ['-port', String(epmdPort), '-address', '127.0.0.1'], { stdio: 'ignore' });
  const epmdExited = new Promise((resolve) => epmd.once('exit', resolve));
  const stopEpmd = () => {
    if (epmd.exitCode === null && epmd.signalCode === null) epmd.kill('SIGKILL');
  };
  let env: NodeJS.ProcessEnv = {};
  const prepare = async (port: number, dir: string) => {
    const deadline = Date.now() + 10_000;
    while (!(await portOpen(epmdPort))) {
      if (epmd.exitCode !== null || Date.now() > deadline) throw new Error(`epmd did not listen on 127.0.0.1:${epmdPort}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    writeFileSync(join(dir, 'rabbitmq.conf'), `loopback_users = none\nlisteners.tcp.1 = 127.0.0.1:${port}\n`);
    writeFileSync(join(dir, 'enabled_plugins'), '[].\n');
    env = {
      ...process.env,
      HOME: dir,
      RABBITMQ_NODENAME: `hookrelay${port}@localhost`,
      RABBITMQ_DIST_PORT: String(distPort),
      ERL_EPMD_PORT: String(epmdPort),
      RABBITMQ_MNESIA_BASE: join(dir, 'mnesia'),
      RABBITMQ_LOG_BASE: join(dir, 'log'),
      RABBITMQ_CONFIG_FILE: join(dir, 'rabbitmq'),
      RABBITMQ_ENABLED_PLUGINS_FILE: join(dir, 'enabled_plugins'),
      RABBITMQ_PID_FILE: join(dir, 'rabbitmq.pid'),
    };
  };
  try {
    return await startBroker('rabbitmq-server', RABBITMQ_SERVER, () => [], portOpen, prepare, {
      get env() {
        return env;
      },
      group: true,
      afterStop: stopEpmd,
    });
  } catch (error) {
    stopEpmd();
    await epmdExited;
    throw error;
  }
}

export const RABBITMQ_SERVER = '/usr/lib/rabbitmq/bin/rabbitmq-server';
