import { sign as githubSign } from '@octokit/webhooks-methods';
import assert from 'node:assert/strict';
import { createHash, createHmac, randomBytes, randomUUID } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { after, before, describe, it } from 'node:test';
import type { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { startReceiver, type Received, type Receiver } from '../helpers/receiver.js';
import { startRelay, testStoreKind, type TestRelay } from '../helpers/relay.js';
import { waitUntil } from '../helpers/wait.js';
import { accepted, addEndpoint, createSource, getMessage, messageIds, post, verifyDelivery, type IngestResponse } from './support.js';

const KEY = 'k_' + randomUUID();
const auth = { authorization: `Bearer ${KEY}` };

/** Posts a body with Transfer-Encoding: chunked and no Content-Length, in several chunks. */
function postChunked(url: string, chunks: Buffer[], headers: Record<string, string>): Promise<IngestResponse> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: 'POST', headers: { ...headers, 'transfer-encoding': 'chunked' } }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => {
        const text = Buffer.concat(parts).toString('utf8');
        let body: unknown = text;
        try {
          body = JSON.parse(text);
        } catch {
          /* not JSON: the assertions will show it */
        }
        resolve({ status: res.statusCode!, headers: new Headers(res.headers as Record<string, string>), body, text });
      });
    });
    // The server may answer 413 and close before the last chunk is written; the answer can still arrive after the
    // write error, so only fail if it does not.
    req.on('error', (error) => setTimeout(() => reject(error), 2000));
    for (const chunk of chunks) req.write(chunk);
    req.end();
  });
}

describe('inbound pipeline', () => {
  let relay: TestRelay;
  let receiver: Receiver;
  before(async () => {
    relay = await startRelay();
    receiver = await startReceiver(() => ({ status: 200 }));
  });
  after(async () => {
    await relay.close();
    await receiver.close();
  });

  const fromSource = (sourceId: string) => receiver.received.filter((r) => r.headers['x-hookrelay-source'] === sourceId);
  async function deliveriesOf(sourceId: string, count: number): Promise<Received[]> {
    return (await waitUntil(`${count} deliveries from ${sourceId}`, () => (fromSource(sourceId).length >= count ? fromSource(sourceId) : null)))!;
  }

  describe('body size limit', () => {
    it('refuses a body over maxBodyBytes with 413 and stores nothing; a body at the limit is accepted', async () => {
      const source = await createSource(relay, 'api-key', { secret: KEY, maxBodyBytes: 1024 });
      const over = await post(source.ingestUrl, 'x'.repeat(1025), { ...auth, 'content-type': 'text/plain' });
      assert.equal(over.status, 413, over.text);
      assert.equal(over.body.code, 'payload_too_large');
      assert.match(over.body.detail, /1024 bytes/);
      assert.deepEqual(await messageIds(relay, source.appId), []);

      const id = accepted(await post(source.ingestUrl, 'y'.repeat(1024), { ...auth, 'content-type': 'text/plain' }));
      assert.deepEqual(await messageIds(relay, source.appId), [id]);
    });

    it('refuses a chunked body without Content-Length once it passes the limit', async () => {
      const source = await createSource(relay, 'api-key', { secret: KEY, maxBodyBytes: 1024 });
      const chunks = Array.from({ length: 8 }, (_, i) => Buffer.alloc(512, 97 + i));
      const over = await postChunked(source.ingestUrl, chunks, { ...auth, 'content-type': 'application/octet-stream' });
      assert.equal(over.status, 413, over.text);
      assert.equal(over.body.code, 'payload_too_large');
      assert.deepEqual(await messageIds(relay, source.appId), []);

      // The same way of sending, under the limit, is stored byte for byte.
      const small = [Buffer.from('chunk-one|'), Buffer.from('chunk-two')];
      const ok = await postChunked(source.ingestUrl, small, { ...auth, 'content-type': 'text/plain' });
      const id = accepted(ok);
      assert.equal((await getMessage(relay, source.appId, id)).payload, 'chunk-one|chunk-two');
    });
  });

  it('rate limit: a burst past rateLimit gets 429 with Retry-After; after that many seconds requests are accepted again', async () => {
    const source = await createSource(relay, 'api-key', { secret: KEY, rateLimit: 2 });
    const results: IngestResponse[] = [];
    for (let i = 0; i < 5; i++) results.push(await post(source.ingestUrl, `burst ${i}`, { ...auth, 'content-type': 'text/plain' }));
    const statuses = results.map((r) => r.status);
    assert.deepEqual(statuses.slice(0, 2), [200, 200]);
    const limited = results.filter((r) => r.status === 429);
    assert.ok(limited.length >= 2, `expected the burst to be limited, got ${statuses.join(',')}`);
    for (const r of limited) {
      assert.equal(r.body.code, 'rate_limited');
      assert.match(r.headers.get('retry-after') ?? '', /^[1-9]\d*$/);
    }
    assert.equal((await messageIds(relay, source.appId)).length, statuses.filter((s) => s === 200).length);

    const retryAfter = Number(limited.at(-1)!.headers.get('retry-after'));
    // Do what a provider does with Retry-After: wait that long, then send again.
    await new Promise((resolve) => setTimeout(resolve, retryAfter * 1000));
    accepted(await post(source.ingestUrl, 'after the wait', { ...auth, 'content-type': 'text/plain' }));
  });

  describe('dedupe', () => {
    it('the same GitHub delivery id twice (or racing): same id, duplicate: true, and the endpoint receives it once', async () => {
      const secret = 'gh-' + randomUUID();
      const source = await createSource(relay, 'github', { secret });
      const endpoint = await addEndpoint(relay, source.id, receiver.url);
      // FIFO: once a later message has arrived, every earlier delivery to this endpoint has been made.
      const fifo = await relay.api('PATCH', `/ingest/api/v1/source/${source.id}/endpoint/${endpoint.id}`, { ordering: 'fifo' });
      assert.equal(fifo.status, 200, fifo.text);

      const send = async (body: string, delivery: string) =>
        post(source.ingestUrl, body, { 'content-type': 'application/json', 'x-github-event': 'push', 'x-github-delivery': delivery, 'x-hub-signature-256': await githubSign(secret, body) });
      const delivery = randomUUID();
      const body = '{"ref":"refs/heads/main","after":"abc"}';
      const first = accepted(await send(body, delivery));
      const again = await send(body, delivery);
      assert.equal(accepted(again, true), first);
      assert.deepEqual(again.body, { id: first, duplicate: true });

      // A provider retry racing the original (same delivery id, concurrently) is still one message.
      const racing = randomUUID();
      const raced = await Promise.all([1, 2, 3].map(() => send('{"ref":"refs/heads/race"}', racing)));
      const racedIds = raced.map((r) => (assert.equal(r.status, 200, r.text), r.body.id));
      assert.equal(new Set(racedIds).size, 1);
      assert.equal(raced.filter((r) => r.body.duplicate === false).length, 1);

      const later = accepted(await send('{"ref":"refs/heads/next"}', randomUUID()));
      const received = await deliveriesOf(source.id, 3);
      await waitUntil('the later message', () => received.some((r) => r.headers['webhook-id'] === later));
      assert.deepEqual(
        fromSource(source.id).map((r) => r.headers['webhook-id']),
        [first, racedIds[0], later],
      );
      for (const r of fromSource(source.id)) verifyDelivery(endpoint.secret, r);
      assert.deepEqual((await messageIds(relay, source.appId)).sort(), [first, racedIds[0], later].sort());
    });

    it('a provider without delivery id dedupes on the body hash within dedupeWindowSeconds; a different body is new', async () => {
      const secret = 'key-' + randomUUID();
      const source = await createSource(relay, 'hmac', { secret, header: 'x-signature', dedupeWindowSeconds: 1 });
      const send = (body: string) => post(source.ingestUrl, body, { 'content-type': 'application/json', 'x-signature': createHmac('sha256', secret).update(body).digest('hex') });

      const body = '{"event":"ping","n":1}';
      // Taken before the send: the window starts on the server (same clock) before the answer comes back, so a whole
      // window has passed since, to the millisecond.
      const sentAt = Date.now();
      const first = accepted(await send(body));
      assert.equal(accepted(await send(body), true), first);
      const other = accepted(await send('{"event":"ping","n":2}'));
      assert.notEqual(other, first);

      // Once the 1 s window has passed the same body is a new message (polled: each duplicate stores nothing).
      const fresh = (await waitUntil('the dedupe window to end', async () => {
        const r = await send(body);
        return r.body.duplicate === false ? r : null;
      }, 5000, 100))!;
      assert.ok(Date.now() - sentAt >= 1000, 'the duplicate window ended early');
      assert.notEqual(accepted(fresh), first);
      assert.equal((await messageIds(relay, source.appId)).length, 3);
    });
    it("a message's eventId is the provider's delivery id (or the body hash); a redelivery after the window is a new message with the same eventId", async () => {
      const secret = 'gh-' + randomUUID();
      const source = await createSource(relay, 'github', { secret, dedupeWindowSeconds: 1 });
      const delivery = randomUUID();
      const body = '{"ref":"refs/heads/main","after":"def"}';
      const send = async () => post(source.ingestUrl, body, { 'content-type': 'application/json', 'x-github-event': 'push', 'x-github-delivery': delivery, 'x-hub-signature-256': await githubSign(secret, body) });
      const first = accepted(await send());
      const stored = await relay.api('GET', `/api/v1/app/${source.appId}/msg/${first}`);
      assert.equal(stored.body.eventId, delivery);

      // GitHub's "Redeliver" sends the same X-GitHub-Delivery; after the dedupe window it is stored again, not refused.
      const redelivered = (await waitUntil('the dedupe window to end', async () => {
        const r = await send();
        assert.equal(r.status, 200, r.text);
        return r.body.duplicate === false ? r : null;
      }, 5000, 100))!;
      const second = accepted(redelivered);
      assert.notEqual(second, first);
      const byEventId = await relay.api('GET', `/api/v1/app/${source.appId}/msg/${delivery}`);
      assert.equal(byEventId.status, 200, byEventId.text);
      assert.equal(byEventId.body.id, second, 'the newest message with that eventId');
      assert.equal(byEventId.body.eventId, delivery);

      const hashed = await createSource(relay, 'hmac', { secret, header: 'x-signature' });
      const plain = '{"event":"no-id"}';
      const id = accepted(await post(hashed.ingestUrl, plain, { 'content-type': 'application/json', 'x-signature': createHmac('sha256', secret).update(plain).digest('hex') }));
      const hashedMessage = await relay.api('GET', `/api/v1/app/${hashed.appId}/msg/${id}`);
      assert.equal(hashedMessage.body.eventId, `sha256:${createHash('sha256').update(plain).digest('hex')}`);

      // An API sender's eventId stays unique in its app.
      const apiSent = await relay.api('POST', `/api/v1/app/${source.appId}/msg`, { eventType: 'push', eventId: 'api-evt-1', payload: {} });
      assert.equal(apiSent.status, 202, apiSent.text);
      const reused = await relay.api('POST', `/api/v1/app/${source.appId}/msg`, { eventType: 'push', eventId: 'api-evt-1', payload: {} });
      assert.equal(reused.status, 409, reused.text);
    });
  });

  // The fault is injected with an SQLite pragma; test/postgres/connection-loss.test.ts covers PostgreSQL outages.
  const sqliteOnly = testStoreKind() === 'postgres' ? 'SQLite-only fault injection (PRAGMA query_only); see test/postgres/connection-loss.test.ts' : false;
  it('storage failure answers 503 with Retry-After (never 2xx) and the provider’s retry is then accepted, stored once', { skip: sqliteOnly }, async () => {
    const secret = 'gh-' + randomUUID();
    const source = await createSource(relay, 'github', { secret });
    const body = '{"action":"created","comment":{"body":"retry me"}}';
    const headers = { 'content-type': 'application/json', 'x-github-event': 'issue_comment', 'x-github-delivery': randomUUID(), 'x-hub-signature-256': await githubSign(secret, body) };

    const db = (relay.store as SqliteStore).db;
    db.pragma('query_only = ON');
    let failed: IngestResponse;
    try {
      failed = await post(source.ingestUrl, body, headers);
    } finally {
      db.pragma('query_only = OFF');
    }
    assert.equal(failed.status, 503, failed.text);
    assert.equal(failed.body.code, 'unavailable');
    assert.match(failed.headers.get('retry-after') ?? '', /^\d+$/);
    assert.deepEqual(await messageIds(relay, source.appId), []);

    const retried = await post(source.ingestUrl, body, headers);
    const id = accepted(retried);
    assert.deepEqual(await messageIds(relay, source.appId), [id]);
    assert.equal((await getMessage(relay, source.appId, id)).eventType, 'issue_comment.created');
  });

  it('an unknown ingest token is a JSON 404', async () => {
    const response = await post(`${relay.url}/ingest/not-a-real-token`, '{}', { 'content-type': 'application/json' });
    assert.equal(response.status, 404);
    assert.match(response.headers.get('content-type') ?? '', /^application\/json/);
    assert.equal(response.body.code, 'not_found');
  });

  it('GET requests reach the verifier: a basic-auth source stores an authorised GET and refuses an unauthorised one', async () => {
    const source = await createSource(relay, 'basic-auth', { username: 'u', password: 'secret-pw' });
    const good = 'Basic ' + Buffer.from('u:secret-pw').toString('base64');
    const bad = 'Basic ' + Buffer.from('u:nope').toString('base64');
    const refusedGet = await post(`${source.ingestUrl}?ping=1`, null, { authorization: bad }, 'GET');
    assert.equal(refusedGet.status, 401, refusedGet.text);
    assert.equal(refusedGet.body.code, 'verification_failed');
    const id = accepted(await post(`${source.ingestUrl}?ping=1`, null, { authorization: good }, 'GET'));
    assert.deepEqual(await messageIds(relay, source.appId), [id]);
  });

  describe('odd content types are stored and forwarded byte-exactly', () => {
    let source: { id: string; appId: string; ingestUrl: string };
    let secret: string;
    before(async () => {
      source = await createSource(relay, 'api-key', { secret: KEY });
      secret = (await addEndpoint(relay, source.id, receiver.url)).secret;
    });
    const deliveryOf = async (id: string) => (await waitUntil(`delivery of ${id}`, () => receiver.received.find((r) => r.headers['webhook-id'] === id)))!;

    for (const [contentType, text] of [
      ['application/x-www-form-urlencoded', 'a=1&b=caf%C3%A9+%E2%98%83&empty=&a=2'],
      ['text/plain; charset=utf-8', '  hello,\r\n\tworld ☃ 𝄞  \n'],
    ]) {
      it(contentType, async () => {
        const id = accepted(await post(source.ingestUrl, text, { ...auth, 'content-type': contentType }));
        assert.equal((await getMessage(relay, source.appId, id)).payload, text);
        const delivered = await deliveryOf(id);
        verifyDelivery(secret, delivered);
        assert.ok(delivered.body.equals(Buffer.from(text, 'utf8')));
        assert.equal(delivered.headers['content-type'], contentType);
      });
    }

    it('application/octet-stream with bytes that are not UTF-8', async () => {
      const bytes = Buffer.concat([Buffer.from([0xff, 0xfe, 0x00, 0x80, 0xc3, 0x28, 0xed, 0xa0, 0x80, 0x0d, 0x0a]), randomBytes(64)]);
      const id = accepted(await post(source.ingestUrl, bytes, { ...auth, 'content-type': 'application/octet-stream' }));
      const delivered = await deliveryOf(id);
      assert.ok(delivered.body.equals(bytes), 'the binary body was altered');
      assert.equal(delivered.headers['content-type'], 'application/octet-stream');
      // The official verifiers decode the payload as UTF-8 before hashing, which cannot reproduce non-UTF-8 bytes,
      // so the Standard Webhooks signature (HMAC-SHA256 over `id.timestamp.` + raw bytes) is checked per the spec.
      const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
      const expected = createHmac('sha256', key).update(Buffer.concat([Buffer.from(`${id}.${delivered.headers['webhook-timestamp']}.`), bytes])).digest('base64');
      assert.ok(String(delivered.headers['webhook-signature']).split(' ').includes(`v1,${expected}`));
    });
  });
});
