import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Webhook } from 'standardwebhooks';
import { makeTestCa } from '../helpers/test-ca.js';
import { waitUntil } from '../helpers/wait.js';
import { startChild, tempDir } from './child.js';

describe('HTTPS endpoints', () => {
  it('are delivered from the delivery thread when the certificate chains to a CA the process trusts, and fail otherwise', async (t) => {
    const tmp = tempDir();
    t.after(() => tmp.remove());
    const ca = makeTestCa(tmp.dir);
    const bodies: string[] = [];
    const headers: Record<string, string>[] = [];
    const server = createServer({ cert: readFileSync(ca.server.certFile), key: readFileSync(ca.server.keyFile) }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        bodies.push(Buffer.concat(chunks).toString());
        headers.push(req.headers as Record<string, string>);
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const url = `https://localhost:${(server.address() as AddressInfo).port}/hooks`;

    // The CA comes the way operators add one: NODE_EXTRA_CA_CERTS, read once by the process for every thread.
    for (const trusted of [true, false]) {
      const child = await startChild({
        db: join(tmp.dir, `https-${trusted}.db`),
        flags: ['--allow-networks', '127.0.0.0/8,::1/128', '--retry-schedule', '0', '--circuit-threshold', '0'],
        env: trusted ? { NODE_EXTRA_CA_CERTS: ca.caFile } : {},
      });
      t.after(() => child.stop());
      const app = await child.svix.application.create({ name: `https ${trusted}` });
      const endpoint = await child.svix.endpoint.create(app.id, { url });
      const { key } = await child.svix.endpoint.getSecret(app.id, endpoint.id);
      const payload = { trusted, amount: 1234567890123456789 };
      const message = await child.svix.message.create(app.id, { eventType: 'tls.checked', payload });
      const attempts = (await waitUntil(`the attempt (trusted: ${trusted})`, async () => {
        const list = await child.svix.messageAttempt.listByMsg(app.id, message.id);
        return list.data.length > 0 ? list.data : null;
      }))!;
      if (trusted) {
        assert.equal(attempts[0].responseStatusCode, 204);
        const i = headers.findIndex((h) => h['webhook-id'] === message.id);
        assert.ok(i >= 0, 'the receiver got the message');
        assert.deepEqual(new Webhook(key).verify(bodies[i], headers[i]), JSON.parse(bodies[i]));
      } else {
        assert.equal(attempts[0].responseStatusCode, 0);
        assert.match(attempts[0].response, /certificate|self.signed|unable to verify/i);
        assert.equal(headers.filter((h) => h['webhook-id'] === message.id).length, 0);
      }
      await child.stop();
    }
  });
});
