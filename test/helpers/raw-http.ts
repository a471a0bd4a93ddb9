import { connect, type Socket } from 'node:net';

/** One HTTP/1.1 response read off a raw socket. `status` is 0 when the server closed without answering. */
export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  text: string;
  /** The body parsed as JSON, or null when it is not JSON. */
  body: any;
  /** The server closed the connection (after answering, or instead of it). */
  closed: boolean;
  /** A socket error seen before the response was complete (e.g. ECONNRESET), if any. */
  error: string | null;
  /** Milliseconds from connecting to the response (or the close). */
  elapsedMs: number;
}

export interface Target {
  host: string;
  port: number;
}

export const targetOf = (url: string): Target => {
  const parsed = new URL(url);
  return { host: parsed.hostname, port: Number(parsed.port) };
};

/** Opens a TCP connection to `url`'s host and port. */
export function openSocket(url: string): Promise<Socket> {
  const { host, port } = targetOf(url);
  return new Promise((resolve, reject) => {
    const socket = connect(port, host, () => resolve(socket));
    socket.once('error', reject);
  });
}

/**
 * Reads one response from `socket`: until its body is complete (content-length or chunked), or the server closes.
 * Resolves (never rejects) with what arrived; gives up after `timeoutMs`, destroying the socket.
 */
export function readResponse(socket: Socket, options: { head?: boolean; timeoutMs?: number; keepOpen?: boolean } = {}): Promise<RawResponse> {
  const started = Date.now();
  return new Promise((resolve) => {
    let data = Buffer.alloc(0);
    let error: string | null = null;
    let done = false;
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.removeListener('data', onData);
      if (!options.keepOpen || closed) socket.destroy();
      resolve({ ...parse(data), closed, error, elapsedMs: Date.now() - started });
    };
    const onData = (chunk: Buffer) => {
      data = Buffer.concat([data, chunk]);
      // A response that announces `connection: close` is read until the server does close.
      if (complete(data, options.head ?? false) && !/\r\nconnection: *close\r\n/i.test(data.toString('latin1', 0, data.indexOf(HEADER_END) + 2))) finish(false);
    };
    const timer = setTimeout(() => finish(false), options.timeoutMs ?? 10_000);
    socket.on('data', onData);
    socket.on('error', (e: NodeJS.ErrnoException) => {
      error ??= e.code ?? e.message;
    });
    socket.on('close', () => finish(true));
  });
}

/** Sends `request` as given on a fresh connection and reads the response. */
export async function rawHttp(url: string, request: string | Buffer, options: { timeoutMs?: number } = {}): Promise<RawResponse> {
  const socket = await openSocket(url);
  const response = readResponse(socket, { head: request.toString('latin1', 0, 5) === 'HEAD ', timeoutMs: options.timeoutMs });
  socket.write(request);
  return response;
}

/** Builds an HTTP/1.1 request with exactly these header lines (duplicates and odd values included) and a content-length. */
export function httpRequest(method: string, path: string, headers: [string, string][], body: Buffer | string = Buffer.alloc(0)): Buffer {
  const bytes = Buffer.isBuffer(body) ? body : Buffer.from(body);
  const lines = [`${method} ${path} HTTP/1.1`, 'host: 127.0.0.1', 'connection: close', ...headers.map(([name, value]) => `${name}: ${value}`)];
  if (bytes.length > 0 || method !== 'GET') lines.push(`content-length: ${bytes.length}`);
  return Buffer.concat([Buffer.from(lines.join('\r\n') + '\r\n\r\n', 'latin1'), bytes]);
}

const HEADER_END = Buffer.from('\r\n\r\n');

function complete(data: Buffer, head: boolean): boolean {
  const end = data.indexOf(HEADER_END);
  if (end === -1) return false;
  const { headers } = parseHead(data.subarray(0, end).toString('latin1'));
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(data.toString('latin1', 0, 16))?.[1] ?? 0);
  if (head || status === 204 || status === 304) return true;
  const body = data.subarray(end + 4);
  if (headers['transfer-encoding']?.includes('chunked')) return body.includes(Buffer.from('0\r\n\r\n'));
  if (headers['content-length'] !== undefined) return body.length >= Number(headers['content-length']);
  return false;
}

function parseHead(head: string): { status: number; headers: Record<string, string> } {
  const [statusLine, ...lines] = head.split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const at = line.indexOf(':');
    if (at > 0) headers[line.slice(0, at).trim().toLowerCase()] = line.slice(at + 1).trim();
  }
  return { status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? 0), headers };
}

function parse(data: Buffer): { status: number; headers: Record<string, string>; text: string; body: any } {
  const end = data.indexOf(HEADER_END);
  if (end === -1) return { status: 0, headers: {}, text: data.toString('latin1'), body: null };
  const { status, headers } = parseHead(data.subarray(0, end).toString('latin1'));
  let body = data.subarray(end + 4);
  if (headers['transfer-encoding']?.includes('chunked')) body = dechunk(body);
  else if (headers['content-length'] !== undefined) body = body.subarray(0, Number(headers['content-length']));
  const text = body.toString('utf8');
  let parsed: unknown = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    /* not JSON */
  }
  return { status, headers, text, body: parsed };
}

function dechunk(body: Buffer): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const lineEnd = body.indexOf('\r\n', at);
    if (lineEnd === -1) break;
    const size = parseInt(body.subarray(at, lineEnd).toString('latin1'), 16);
    if (!size) break;
    parts.push(body.subarray(lineEnd + 2, lineEnd + 2 + size));
    at = lineEnd + 2 + size + 2;
  }
  return Buffer.concat(parts);
}
