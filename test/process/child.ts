import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Svix } from 'svix';

/** The compiled CLI, found from the compiled test file (dist/test/process → dist/src/cli). */
export const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
export const PACKAGE_JSON = fileURLToPath(new URL('../../../package.json', import.meta.url));

export const ADMIN_TOKEN = 'test_admin_token_process_0123456789';
/** A PostgreSQL store needs a configured master key (SQLite generates one beside its file). */
export const TEST_MASTER_KEY = Buffer.alloc(32, 9).toString('base64');

/** The parent's environment without any HOOKRELAY_* setting, so the developer's shell cannot change a test. */
function cleanEnv(env: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('HOOKRELAY_')) out[k] = v;
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete out[k];
    else out[k] = v;
  }
  return out;
}

export function tempDir(): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'hookrelay-proc-'));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs the CLI to completion (killing it after `timeoutMs`) and returns what it printed. */
export function runCli(args: string[], opts: { env?: Record<string, string | undefined>; cwd?: string; timeoutMs?: number } = {}): Promise<CliResult> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [CLI, ...args], { env: cleanEnv(opts.env ?? {}), cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    proc.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    proc.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const timer = setTimeout(() => proc.kill('SIGKILL'), opts.timeoutMs ?? 15_000);
    proc.on('error', (error) => (clearTimeout(timer), reject(error)));
    proc.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: Date.now() - started });
    });
  });
}

export interface ApiResponse {
  status: number;
  body: any;
  text: string;
}

export interface Child {
  proc: ChildProcess;
  url: string;
  db: string;
  adminToken: string;
  svix: Svix;
  /** Every stdout line so far (pino JSON). */
  stdoutLines: string[];
  /** stdout lines parsed as JSON (non-JSON lines are skipped). */
  logs(): Record<string, any>[];
  stderr(): string;
  /** Resolves with the first log line matching `match`; rejects after `timeoutMs` or if the child exits first. */
  waitForLog(match: (line: Record<string, any>) => boolean, timeoutMs?: number): Promise<Record<string, any>>;
  /** Resolves when the process has exited and its output has been read. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  alive(): boolean;
  /** SIGTERM, then SIGKILL if it has not exited within `timeoutMs`. */
  stop(timeoutMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  api(method: string, path: string, body?: unknown, token?: string | null): Promise<ApiResponse>;
}

export interface ChildOptions {
  /** The database file; the caller owns its directory (so it can restart on the same file). */
  db: string;
  flags?: string[];
  /** Extra environment; `HOOKRELAY_ADMIN_TOKEN: undefined` leaves the token unset. */
  env?: Record<string, string | undefined>;
  /** Token for `svix`/`api` when HOOKRELAY_ADMIN_TOKEN is unset (e.g. read from the token file). */
  token?: string;
  timeoutMs?: number;
}

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const proc of running) proc.kill('SIGKILL');
});

/**
 * Spawns `hookrelay serve` on 127.0.0.1 with `--port 0`, a short retry schedule, info logs and loopback allowed as a
 * delivery target (test receivers listen there), and resolves once it logs "hookrelay is serving" (with the URL it bound).
 */
export async function startChild(options: ChildOptions): Promise<Child> {
  const postgres = /^postgres(ql)?:\/\//i.test(options.db);
  const env = cleanEnv({
    HOOKRELAY_ADMIN_TOKEN: ADMIN_TOKEN,
    HOOKRELAY_RETRY_SCHEDULE: '0,200ms,500ms,1s',
    HOOKRELAY_ALLOW_NETWORKS: '127.0.0.0/8,::1/128',
    ...(postgres ? { HOOKRELAY_MASTER_KEY: TEST_MASTER_KEY } : {}),
    ...(options.env ?? {}),
  });
  const args = [CLI, 'serve', '--port', '0', '--host', '127.0.0.1', '--db', options.db, '--log-level', 'info', ...(options.flags ?? [])];
  const proc = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(proc);
  const stdoutLines: string[] = [];
  let stderr = '';
  let partial = '';
  const listeners = new Set<(line: Record<string, any>) => void>();
  const parse = (line: string): Record<string, any> | null => {
    try {
      return JSON.parse(line);
    } catch {
      return null;
    }
  };
  proc.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    const parts = (partial + chunk).split('\n');
    partial = parts.pop()!;
    for (const line of parts) {
      stdoutLines.push(line);
      const parsed = parse(line);
      if (parsed) for (const listener of [...listeners]) listener(parsed);
    }
  });
  proc.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  let exitedNow = false;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.on('close', (code, signal) => {
      exitedNow = true;
      running.delete(proc);
      if (partial) stdoutLines.push(partial);
      resolve({ code, signal });
    }),
  );

  const waitForLog = (match: (line: Record<string, any>) => boolean, timeoutMs = 15_000) =>
    new Promise<Record<string, any>>((resolve, reject) => {
      const seen = stdoutLines.map(parse).find((l) => l && match(l));
      if (seen) return resolve(seen);
      const timer = setTimeout(() => finish(new Error(`no matching log line within ${timeoutMs} ms; stderr: ${stderr}`)), timeoutMs);
      const listener = (line: Record<string, any>) => {
        if (match(line)) finish(null, line);
      };
      function finish(error: Error | null, line?: Record<string, any>) {
        clearTimeout(timer);
        listeners.delete(listener);
        if (error) reject(error);
        else resolve(line!);
      }
      listeners.add(listener);
      void exited.then(({ code, signal }) => finish(new Error(`hookrelay exited (code ${code}, signal ${signal}) before the awaited log line; stderr: ${stderr}`)));
    });

  let serving: Record<string, any>;
  try {
    serving = await waitForLog((l) => l.msg === 'hookrelay is serving', options.timeoutMs ?? 15_000);
  } catch (error) {
    proc.kill('SIGKILL');
    await exited;
    throw error;
  }
  const url: string = serving.url;
  const adminToken = options.token ?? env.HOOKRELAY_ADMIN_TOKEN ?? '';
  const child: Child = {
    proc,
    url,
    db: options.db,
    adminToken,
    svix: new Svix(adminToken, { serverUrl: url }),
    stdoutLines,
    logs: () => stdoutLines.map(parse).filter((l): l is Record<string, any> => l !== null),
    stderr: () => stderr,
    waitForLog,
    exited,
    alive: () => !exitedNow,
    async stop(timeoutMs = 10_000) {
      if (!exitedNow) {
        proc.kill('SIGTERM');
        const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
        await exited;
        clearTimeout(timer);
      }
      return exited;
    },
    async api(method, path, body, token) {
      const headers: Record<string, string> = {};
      const bearer = token === undefined ? adminToken : token;
      if (bearer !== null) headers.authorization = `Bearer ${bearer}`;
      if (body !== undefined) headers['content-type'] = 'application/json';
      const response = await fetch(url + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
      const text = await response.text();
      let parsed: unknown = text;
      try {
        parsed = text ? JSON.parse(text) : null;
      } catch {
        /* not JSON */
      }
      return { status: response.status, body: parsed, text };
    },
  };
  return child;
}

/** Lists every message of an app, following the iterator. */
export async function listAllMessageIds(svix: Svix, appId: string): Promise<string[]> {
  const ids: string[] = [];
  let iterator: string | null | undefined;
  for (;;) {
    const page = await svix.message.list(appId, { limit: 250, iterator });
    ids.push(...page.data.map((m) => m.id));
    if (page.done || !page.iterator) return ids;
    iterator = page.iterator;
  }
}

/** The sum of a process's Prometheus samples whose line starts with `prefix` (a name, or a name with its labels). */
export async function metricOf(child: Child, prefix: string): Promise<number> {
  const response = await fetch(`${child.url}/metrics`, { headers: { authorization: `Bearer ${child.adminToken}` } });
  return (await response.text())
    .split('\n')
    .filter((line) => line.startsWith(prefix))
    .reduce((sum, line) => sum + Number(line.split(' ').pop()), 0);
}
