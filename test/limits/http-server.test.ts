import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { httpRequest, openSocket, rawHttp, readResponse, type RawResponse } from '../helpers/raw-http.js';
import { ADMIN_TOKEN, startRelay, type TestRelay } from '../helpers/relay.js';
import { waitUntil } from '../helpers/wait.js';

/** Asserts the `{code, detail}` error shape with this status and code. */
function assertRefused(response: RawResponse, status: number, code: string): void {
  assert.equal(response.status, status, `expected ${status}, got ${response.status}: ${response.text} (${response.error ?? 'no socket error'})`);
  assert.match(response.headers['content-type'] ?? '', /^application\/json/);
  assert.equal(response.body?.code, code, response.text);
  assert.equal(typeof response.body.detail, 'string');
}

const auth: [string, string] = ['authorization', `Bearer ${ADMIN_TOKEN}`];

/** Writes `piece` every `everyMs` until the server closes the socket or `maxMs` passes; resolves with the answer. */
async function trickle(socket: Socket, head: string, piece: string, everyMs: number, maxMs: number): Promise<RawResponse> {
  const response = readResponse(socket, { timeoutMs: maxMs });
  socket.write(head);
  const timer = setInterval(() => {
    if (!socket.destroyed) socket.write(piece);
  }, everyMs);
  try {
    return await response;
  } finally {
    clearInterval(timer);
  }
}

describe('HTTP server limits', () => {
  let relay: TestRelay;
  before(async () => {
    relay = await startRelay({ maxHeaders: '20', maxUrlBytes: '1024', maxHeaderBytes: '4096', headersTimeout: '500ms', requestTimeout: '1s' });
  });
  after(() => relay.close());

  const headers = (count: number): [string, string][] => Array.from({ length: count }, (_, i) => [`x-h${i}`, 'v']);

  it('answers more headers than --max-headers with 431 headers_too_large, before authentication', async () => {
    // host and connection are two of them.
    const ok = await rawHttp(relay.url, httpRequest('GET', '/api/v1/app', [auth, ...headers(17)]));
    assert.equal(ok.status, 200, ok.text);
    assertRefused(await rawHttp(relay.url, httpRequest('GET', '/api/v1/app', [auth, ...headers(18)])), 431, 'headers_too_large');
    assertRefused(await rawHttp(relay.url, httpRequest('GET', '/api/v1/app', headers(19))), 431, 'headers_too_large');
    assertRefused(await rawHttp(relay.url, httpRequest('POST', '/ingest/any-token', headers(19), '{}')), 431, 'headers_too_large');
  });

  it('answers a header block over --max-header-bytes with 431 and closes the connection', async () => {
    const response = await rawHttp(relay.url, httpRequest('GET', '/healthz', [['x-big', 'a'.repeat(5000)]]));
    assertRefused(response, 431, 'headers_too_large');
    assert.match(response.body.detail, /4096 bytes/);
    assert.ok(response.closed);
  });

  it('answers a URL over --max-url-bytes with 414 uri_too_long; one larger than the header block gets 431', async () => {
    const path = (length: number) => '/healthz?pad=' + 'a'.repeat(length - '/healthz?pad='.length);
    assert.equal((await rawHttp(relay.url, httpRequest('GET', path(1024), []))).status, 200);
    const long = await rawHttp(relay.url, httpRequest('GET', path(1025), []));
    assertRefused(long, 414, 'uri_too_long');
    assert.match(long.body.detail, /1024 bytes/);
    assertRefused(await rawHttp(relay.url, httpRequest('POST', '/ingest/' + 'a'.repeat(2000), [], '{}')), 414, 'uri_too_long');
    assertRefused(await rawHttp(relay.url, httpRequest('GET', path(5000), [])), 431, 'headers_too_large');
  });

  it('answers a path segment longer than 512 characters with 414 and bad percent-encoding with 400, in the API shape', async () => {
    assertRefused(await rawHttp(relay.url, httpRequest('GET', `/api/v1/app/${'a'.repeat(600)}`, [auth])), 414, 'uri_too_long');
    for (const id of ['%ZZ', '%E0%A4%A', '%ED%A0%80', '%']) {
      assertRefused(await rawHttp(relay.url, httpRequest('GET', `/api/v1/app/${id}`, [auth])), 400, 'bad_request');
    }
  });

  it('answers malformed HTTP with 400 bad_request in the API shape', async () => {
    const malformed = [
      'HELLO\r\n\r\n',
      'GET /healthz HTTP/1.1\r\nhost: x\r\nno colon here\r\n\r\n',
      'GET /healthz HTTP/1.1\r\nhost: x\r\nx-bad: a\x01b\r\n\r\n',
      'POST /api/v1/app HTTP/1.1\r\nhost: x\r\ncontent-length: abc\r\n\r\n',
      // Both framings at once is how requests are smuggled past proxies.
      'POST /api/v1/app HTTP/1.1\r\nhost: x\r\ncontent-length: 4\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n',
      'POST /api/v1/app HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n',
    ];
    for (const request of malformed) {
      const response = await rawHttp(relay.url, request);
      assertRefused(response, 400, 'bad_request');
      assert.ok(response.closed, JSON.stringify(request));
    }
  });

  it('cuts off a client that trickles its headers (slowloris) after --headers-timeout with 408', async () => {
    const socket = await openSocket(relay.url);
    // A byte every 100 ms keeps an idle timeout from ever firing; only the headers deadline stops it.
    const response = await trickle(socket, 'GET /healthz HTTP/1.1\r\nhost: x\r\n', 'x-a: b\r\n', 100, 10_000);
    assertRefused(response, 408, 'request_timeout');
    assert.ok(response.closed);
    assert.ok(response.elapsedMs >= 450 && response.elapsedMs < 3000, `cut off after ${response.elapsedMs} ms`);
  });

  it('cuts off a client that trickles its body after --request-timeout with 408, on the API and on ingest', async () => {
    const source = await relay.api('POST', '/ingest/api/v1/source', { name: 'slow', type: 'github', config: { secret: 'gh-secret' } });
    const ingestPath = new URL(source.body.ingestUrl).pathname;
    for (const [path, extra] of [
      ['/api/v1/app', [`authorization: Bearer ${ADMIN_TOKEN}`, 'content-type: application/json']],
      [ingestPath, ['content-type: application/json']],
    ] as const) {
      const socket = await openSocket(relay.url);
      const head = [`POST ${path} HTTP/1.1`, 'host: x', ...extra, 'content-length: 100000', '', ''].join('\r\n');
      const response = await trickle(socket, head, ' ', 100, 10_000);
      assertRefused(response, 408, 'request_timeout');
      assert.ok(response.closed);
      assert.ok(response.elapsedMs >= 900 && response.elapsedMs < 4000, `${path}: cut off after ${response.elapsedMs} ms`);
    }
  });

  it('closes the connection after refusing a request whose body has not arrived, instead of reading it until a 408', async () => {
    for (const [head, status] of [
      ['POST /api/v1/app HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100000\r\n\r\n', 401],
      [`POST /api/v1/nothing HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${ADMIN_TOKEN}\r\ncontent-type: application/json\r\ncontent-length: 100000\r\n\r\n`, 404],
      ['POST /ingest/no-such-token HTTP/1.1\r\nhost: x\r\ncontent-length: 100000\r\n\r\n', 404],
    ] as const) {
      const socket = await openSocket(relay.url);
      const response = await trickle(socket, head, ' ', 100, 10_000);
      assert.equal(response.status, status, response.text);
      assert.ok(response.closed);
      assert.ok(response.elapsedMs < 800, `closed after ${response.elapsedMs} ms, not at once`);
      assert.doesNotMatch(response.text, /request_timeout/);
    }
  });

  it('closes a connection that sends nothing after --headers-timeout', async () => {
    const socket = await openSocket(relay.url);
    const response = await readResponse(socket, { timeoutMs: 10_000 });
    assert.ok(response.closed, 'the idle connection is still open');
    assert.ok(response.elapsedMs < 3000, `closed after ${response.elapsedMs} ms`);
  });
});

describe('--max-connections', () => {
  let relay: TestRelay;
  before(async () => {
    relay = await startRelay({ maxConnections: '3' });
  });
  after(() => relay.close());

  const connections = () => new Promise<number>((resolve, reject) => relay.server.server.getConnections((error, count) => (error ? reject(error) : resolve(count))));

  it('closes connections beyond the limit at once and serves again when one is freed', async () => {
    const held = await Promise.all([openSocket(relay.url), openSocket(relay.url), openSocket(relay.url)]);
    await waitUntil('the server to count three connections', async () => (await connections()) === 3);

    const refused = await rawHttp(relay.url, httpRequest('GET', '/healthz', []), { timeoutMs: 5000 });
    assert.equal(refused.status, 0, 'a fourth connection was served');
    assert.ok(refused.closed);

    held[0].destroy();
    await waitUntil('the server to count two connections', async () => (await connections()) === 2);
    const served = await rawHttp(relay.url, httpRequest('GET', '/healthz', []));
    assert.equal(served.status, 200, served.text);
    for (const socket of held) socket.destroy();
  });
});
