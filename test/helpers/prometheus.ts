import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitUntil } from './wait.js';
import { freePort } from './ports.js';

/**
 * A real Prometheus server (Debian's `prometheus` package, installed by scripts/ci/prometheus.sh) started on loopback
 * with a generated configuration that scrapes one target every second. Under CI=true a missing binary fails the test
 * file; on a developer machine without it the suite is skipped with the reason.
 */

export function prometheusMissing(): string | null {
  const found = spawnSync('prometheus', ['--version'], { encoding: 'utf8' });
  return found.error ? 'the prometheus binary is not on the PATH (run scripts/ci/prometheus.sh)' : null;
}

export function skipWithoutPrometheus(): false | string {
  const missing = prometheusMissing();
  if (missing === null) return false;
  if (process.env.CI === 'true') throw new Error(`Prometheus is required under CI=true but ${missing}`);
  return `Prometheus not available: ${missing}`;
}

export interface TestPrometheus {
  url: string;
  /** The value of an instant query's single sample, or null while it has no sample. */
  value(query: string): Promise<number | null>;
  close(): Promise<void>;
}


export async function startPrometheus(target: { url: string; token: string }): Promise<TestPrometheus> {
  const dir = mkdtempSync(join(tmpdir(), 'hookrelay-prometheus-'));
  const { host, protocol } = new URL(target.url);
  writeFileSync(join(dir, 'token'), target.token, { mode: 0o600 });
  writeFileSync(
    join(dir, 'prometheus.yml'),
    [
      'global:',
      '  scrape_interval: 1s',
      '  scrape_timeout: 1s',
      'scrape_configs:',
      '  - job_name: hookrelay',
      `    scheme: ${protocol.replace(':', '')}`,
      '    metrics_path: /metrics',
      '    authorization:',
      '      type: Bearer',
      `      credentials_file: ${join(dir, 'token')}`,
      '    static_configs:',
      `      - targets: ['${host}']`,
      '',
    ].join('\n'),
  );
  const port = await freePort();
  const child: ChildProcess = spawn(
    'prometheus',
    [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  const close = async () => {
    if (child.exitCode === null) child.kill('SIGTERM');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitUntil(`Prometheus to be ready on ${url} (stderr: ${stderr})`, async () => {
      if (child.exitCode !== null) throw new Error(`prometheus exited with ${child.exitCode}: ${stderr}`);
      return (await fetch(`${url}/-/ready`).catch(() => null))?.ok ?? false;
    }, 30_000, 100);
  } catch (error) {
    await close();
    throw error;
  }
  return {
    url,
    close,
    async value(query) {
      const response = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(query)}`);
      const body = (await response.json()) as { status: string; error?: string; data: { result: { value: [number, string] }[] } };
      if (body.status !== 'success') throw new Error(`query ${query} failed: ${body.error}`);
      const [sample] = body.data.result;
      return sample ? Number(sample.value[1]) : null;
    },
  };
}
