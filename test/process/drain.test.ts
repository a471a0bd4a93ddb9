import assert from 'node:assert/strict';
import { createServer, request, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Webhook } from 'svix';
import { waitUntil } from '../helpers/wait.js';
import { startChild, tempDir, type Child } from './child.js';

/** A receiver that holds every response until `release()`, so the test decides when deliveries finish. */
async function startHoldingReceiver() {
  const arrivals: { id: string; body: string; headers: Record<string, string> }[] = [];
  const held: ServerResponse[] = [];
  let holding = true;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, String(v)]));
      arrivals.push({ id: headers['webhook-id'], body: Buffer.concat(chunks).toString(), headers });
      if (holding) held.push(res);
      else res.end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    arrivals,
    held,
    release() {
      holding = false;
      for (const res of held.splice(0)) res.end('ok');
    },
    count: (id: string) => arrivals.filter((a) => a.id === id).length,
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** One request on a fresh connection (no pooled keep-alive socket): the status, or the connection error's code. */
function probe(url: string, path: string, token: string, body: unknown): Promise<number | string> {
  return new Promise((resolve) => {
    const payload = JSON.stringify(body);
    const req = request(url + path, { method: 'POST', agent: false, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode!));
    });
    req.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
    req.setTimeout(3000, () => req.destroy(new Error('probe timed out')));
    req.end(payload);
  });
}

describe('SIGTERM drain', () => {
  it('finishes deliveries in flight, refuses new requests, exits 0, and never sends them again', async (t) => {
    const tmp = tempDir();
    const receiver = await startHoldingReceiver();
    const children: Child[] = [];
    t.after(async () => {
      receiver.release();
      for (const c of children) if (c.alive()) c.proc.kill('SIGKILL');
      await Promise.all(children.map((c) => c.exited));
      await receiver.close();
      tmp.remove();
    });
    const db = join(tmp.dir, 'relay.db');
    const first = await startChild({ db, flags: ['--shutdown-grace', '5s'] });
    children.push(first);

    const app = await first.svix.application.create({ name: 'drain' });
    const endpoint = await first.svix.endpoint.create(app.id, { url: receiver.url });
    const { key: secret } = await first.svix.endpoint.getSecret(app.id, endpoint.id);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await first.svix.message.create(app.id, { eventType: 'drain.test', payload: { i } })).id);

    await waitUntil('5 deliveries to be in progress at the receiver', () => receiver.held.length === 5, 10_000);

    const termAt = Date.now();
    first.proc.kill('SIGTERM');
    await first.waitForLog((l) => l.msg === 'shutting down: draining deliveries in flight', 5_000);

    // The deliveries are still held, so the relay is draining while these arrive.
    const probes = [];
    for (let i = 0; i < 3; i++) {
      probes.push(await probe(first.url, `/api/v1/app/${app.id}/msg`, first.adminToken, { eventType: 'drain.late', payload: { i } }));
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    for (const outcome of probes) {
      assert.ok(typeof outcome === 'string' || outcome < 200 || outcome >= 300, `a new request was accepted while draining: ${probes.join(', ')}`);
    }
    t.diagnostic(`requests during the drain got: ${probes.join(', ')}`);
    assert.ok(first.alive(), 'hookrelay exited without waiting for the deliveries in flight');

    receiver.release();
    const exit = await first.exited;
    const took = Date.now() - termAt;
    assert.equal(exit.code, 0, `exit ${exit.code}/${exit.signal}; stderr: ${first.stderr()}`);
    assert.ok(took < 5_000, `exit took ${took} ms, longer than the 5 s grace period`);
    assert.ok(!first.logs().some((l) => /grace period over/.test(l.msg)), 'attempts were aborted instead of drained');
    assert.ok(first.logs().some((l) => l.msg === 'stopped'));

    const second = await startChild({ db });
    children.push(second);
    for (const id of ids) {
      const attempts = await second.svix.messageAttempt.listByMsg(app.id, id);
      assert.ok(
        attempts.data.some((a) => a.status === 0 && a.responseStatusCode === 200),
        `message ${id} has no successful attempt recorded: ${JSON.stringify(attempts.data)}`,
      );
    }
    const marker = await second.svix.message.create(app.id, { eventType: 'drain.marker', payload: { marker: true } });
    await waitUntil('the marker message to be delivered after the restart', () => receiver.count(marker.id) === 1, 10_000);
    for (const id of ids) assert.equal(receiver.count(id), 1, `message ${id} was delivered ${receiver.count(id)} times`);
    assert.deepEqual(receiver.arrivals.map((a) => a.id).sort(), [...ids, marker.id].sort(), 'only the 5 messages and the marker arrived (nothing sent while draining)');
    for (const a of receiver.arrivals) new Webhook(secret).verify(a.body, a.headers);
  });
});
