import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { startChild, tempDir } from './child.js';

function get(url: string, ca: string): Promise<{ status: number; protocol: string }> {
  return new Promise((resolve, reject) => {
    // The certificate names localhost; the relay listens on 127.0.0.1, so verify it under its name.
    const req = request(url, { method: 'GET', ca, servername: 'localhost', agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode!, protocol: (res.socket as import('node:tls').TLSSocket).getProtocol?.() ?? '' }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('TLS', () => {
  it('serves HTTPS with --tls-cert/--tls-key and logs an https:// URL', async (t) => {
    const tmp = tempDir();
    t.after(() => tmp.remove());
    const cert = join(tmp.dir, 'cert.pem');
    const key = join(tmp.dir, 'key.pem');
    const made = spawnSync(
      'openssl',
      ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', '/CN=localhost', '-days', '1', '-keyout', key, '-out', cert],
      { encoding: 'utf8' },
    );
    if (made.error) assert.fail(`cannot run openssl to make a test certificate (${made.error.message}); install openssl`);
    assert.equal(made.status, 0, `openssl failed: ${made.stderr}`);
    const ca = readFileSync(cert, 'utf8');

    const child = await startChild({ db: join(tmp.dir, 'tls.db'), flags: ['--tls-cert', cert, '--tls-key', key] });
    t.after(() => child.stop());
    assert.match(child.url, /^https:\/\/127\.0\.0\.1:\d+$/);

    const health = await get(`${child.url}/api/v1/health`, ca);
    assert.equal(health.status, 204);
    assert.match(health.protocol, /^TLSv1\.[23]$/);

    // Plain HTTP on the TLS port must not be served.
    const plain = await fetch(child.url.replace('https:', 'http:') + '/api/v1/health').then(
      (r) => r.status,
      () => 'refused',
    );
    assert.notEqual(plain, 204);
  });
});
