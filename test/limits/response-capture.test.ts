import assert from 'node:assert/strict';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Server as TcpServer } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startRelay, type TestRelay } from '../helpers/relay.js';
import { waitUntil } from '../helpers/wait.js';

const listen = async <S extends HttpServer | TcpServer>(server: S): Promise<{ server: S; url: string }> => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook` };
};

const close = (server: HttpServer | TcpServer) => new Promise<void>((resolve) => server.close(() => resolve()));

describe('attempt response capture', () => {
  let relay: TestRelay;
  let appId: string;
  before(async () => {
    relay = await startRelay({ deliveryTimeout: '20s' });
    appId = (await relay.api('POST', '/api/v1/app', { name: 'capture' })).body.id;
  });
  after(() => relay.close());

  /** Sends one message to a new endpoint at `url` and returns its first attempt once recorded. */
  async function firstAttempt(url: string): Promise<{ response: string; responseStatusCode: number; status: number }> {
    const endpoint = await relay.api('POST', `/api/v1/app/${appId}/endpoint`, { url });
    const message = await relay.api('POST', `/api/v1/app/${appId}/msg`, { eventType: 'capture', payload: {} });
    assert.equal(message.status, 202, message.text);
    return waitUntil(
      'the first attempt',
      async () => (await relay.api('GET', `/api/v1/app/${appId}/attempt/endpoint/${endpoint.body.id}`)).body.data[0],
      20_000,
    );
  }

  it('keeps the first 20,000 bytes of a 50 MB answer and stops reading it: the receiver cannot send the rest', async (t) => {
    const total = 50 * 1024 * 1024;
    let written = 0;
    let connectionClosed!: () => void;
    const receiverClosed = new Promise<void>((resolve) => (connectionClosed = resolve));
    const { server: receiver, url: receiverUrl } = await listen(
      createHttpServer((req, res) => {
        req.resume();
        res.on('close', connectionClosed);
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(total) });
        const chunk = Buffer.alloc(64 * 1024, 'x');
        const pump = () => {
          while (written < total && !res.destroyed) {
            written += chunk.length;
            if (!res.write(chunk)) return void res.once('drain', pump);
          }
          if (written >= total) res.end();
        };
        pump();
      }),
    );
    try {
      const attempt = await firstAttempt(receiverUrl);
      await receiverClosed;
      assert.equal(attempt.responseStatusCode, 200);
      assert.equal(attempt.status, 0, 'a 2xx is a success however long its body');
      assert.equal(attempt.response, 'x'.repeat(20_000));
      // Whatever the kernel's socket buffers took in; far from the 50 MB the receiver had to send.
      assert.ok(written < 20 * 1024 * 1024, `the receiver wrote ${written} bytes`);
      t.diagnostic(`the receiver got to write ${written} of ${total} bytes`);
    } finally {
      receiver.closeAllConnections();
      await close(receiver);
    }
  });

  it('fails the attempt of a receiver whose headers never end, instead of buffering them', async (t) => {
    let written = 0;
    const { server, url } = await listen(
      createTcpServer((socket) => {
        socket.on('error', () => {});
        socket.once('data', () => {
          socket.write('HTTP/1.1 200 OK\r\n');
          const line = Buffer.from(`x-endless: ${'a'.repeat(1000)}\r\n`);
          const pump = () => {
            while (!socket.destroyed && written < 50 * 1024 * 1024) {
              written += line.length;
              if (!socket.write(line)) return void socket.once('drain', pump);
            }
          };
          pump();
        });
      }),
    );
    try {
      const attempt = await firstAttempt(url);
      assert.equal(attempt.responseStatusCode, 0);
      assert.match(attempt.response, /header/i);
      assert.ok(written < 20 * 1024 * 1024, `the receiver wrote ${written} bytes of headers`);
      t.diagnostic(`the receiver got to write ${written} bytes of headers; attempt: ${attempt.response}`);
    } finally {
      await close(server);
    }
  });
});
