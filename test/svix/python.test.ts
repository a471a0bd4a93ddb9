import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { Webhook } from 'svix';
import { headersOf } from '../api/support.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { startRelay, type TestRelay } from '../helpers/relay.js';

const IN_CI = process.env.CI === 'true';
const here = dirname(fileURLToPath(import.meta.url));
// The script is not compiled: it lives beside this file's source.
const SCRIPT = join(here, '..', '..', '..', 'test', 'svix', 'svix_python_check.py');

function pythonSvixMissing(): string | null {
  const probe = spawnSync('python3', ['-c', 'import importlib.metadata as m, sys, svix.api; sys.exit(0 if m.version("svix").startswith("2.") else 3)'], { encoding: 'utf8' });
  if (probe.error) return `python3 is not available (${probe.error.message})`;
  if (probe.status !== 0) return 'the Python package `svix` 2.x is not installed (run scripts/ci/svix-python.sh)';
  return null;
}

const missing = pythonSvixMissing();
if (missing && !IN_CI) console.warn(`# SKIPPING: ${missing}`);

describe('the official Svix Python SDK (2.x) against hookrelay', { skip: missing && !IN_CI ? missing : false }, () => {
  let relay: TestRelay;
  let receiver: Receiver;
  before(async () => {
    if (missing) throw new Error(`CI=true and ${missing}`);
    relay = await startRelay();
    receiver = await startReceiver();
  });
  after(async () => {
    await receiver?.close();
    await relay?.close();
  });

  it('creates, patches and sends with the SDK (nulls for every field not given), and the deliveries verify', async () => {
    const run = await runPython([SCRIPT, relay.url, relay.adminToken, receiver.url]);
    assert.equal(run.status, 0, run.stderr);
    const out = JSON.parse(run.stdout);
    assert.deepEqual(out.app_metadata, {}, '"metadata": null is {}');
    assert.deepEqual(out.endpoint_metadata, {});
    assert.deepEqual(out.endpoint_event_types, ['py.event']);
    assert.deepEqual(out.endpoint_channels, ['a+b', 'project:123']);
    assert.deepEqual(out.patched_event_types, ['py.event'], 'a patch that sends eventTypes: null only when asked keeps the filter');
    assert.equal(out.patched_description, 'patched');
    assert.equal(out.app_patched_name, 'renamed');
    assert.equal(out.inline_app_name, 'inline from python');
    assert.equal(out.scheduled_status, 1);
    assert.equal(out.scheduled_next_attempt_ms, out.scheduled_at_ms);
    assert.equal(out.rotated_is_current, true, 'rotate_secret returns the new secret');
    assert.equal(out.rotated_is_new, true);

    // The plain and the raw message reach the endpoint (the inline app has no endpoint; the scheduled one waits an hour).
    const delivered = await receiver.waitFor(2);
    const byId = new Map(delivered.map((r) => [r.headers['svix-id'], r]));
    assert.deepEqual(JSON.parse(byId.get(out.message_id)!.body.toString()), { from: 'python' });
    assert.equal(byId.get(out.raw_id)!.body.toString(), '{"raw":  true}', 'rawPayload byte for byte');
    for (const request of delivered) new Webhook(out.secret).verify(request.body, headersOf(request));
    assert.equal(out.stats.success + out.stats.pending + out.stats.sending, 3);
  });
});

function runPython(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  // Asynchronously: the relay the script talks to runs in this process.
  return new Promise((resolve, reject) => {
    const child = spawn('python3', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}
