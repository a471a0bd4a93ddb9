import { createHash } from 'node:crypto';
import amqp, { type ConsumeMessage } from 'amqplib';
import { hostOf, pinnedAddress, portOf } from '../../pipeline/destinations/broker.js';
import type { RabbitmqSourceConfig } from './config.js';
import type { BrokerRecord, ConsumerContext } from './consumer.js';

/** An AMQP header value as text (tables and arrays as JSON, byte arrays as their text). */
function text(value: unknown): string {
  if (Buffer.isBuffer(value)) return value.toString();
  if (value !== null && typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

/**
 * The record of a delivery. Its id is the AMQP message-id property; a message without one is known by the SHA-256 of
 * its body (so a redelivery of it stays one message, and so does an identical body sent again within the window).
 */
export function amqpRecord(queue: string, msg: ConsumeMessage): BrokerRecord {
  const p = msg.properties;
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(p.headers ?? {})) if (value !== undefined && value !== null) headers[name.toLowerCase()] = text(value);
  if (p.contentType) headers['content-type'] ??= String(p.contentType);
  if (p.type) headers.type ??= String(p.type);
  if (p.messageId) headers['message-id'] ??= String(p.messageId);
  const id = p.messageId ? String(p.messageId) : `sha256:${createHash('sha256').update(msg.content).digest('hex')}`;
  return { id: `amqp:${queue}/${id}`, payload: msg.content, headers };
}

/**
 * Consumes a queue with manual acks and `prefetch` messages in flight: each is acked once accepted. Several hookrelay
 * processes consuming one queue are competing consumers; the broker gives each message to one of them and requeues
 * what a closed channel had not acked.
 */
export async function consumeRabbitmq(ctx: ConsumerContext<RabbitmqSourceConfig>): Promise<void> {
  const c = ctx.config;
  const host = hostOf(c.address);
  const address = await pinnedAddress(ctx.egress, host);
  const t = c.tls === undefined || c.tls === false ? null : c.tls === true ? {} : c.tls;
  const connection = await amqp.connect(
    { protocol: t ? 'amqps' : 'amqp', hostname: address, port: portOf(c.address), vhost: c.vhost, username: c.username ?? 'guest', password: c.password ?? 'guest', heartbeat: 30 },
    { timeout: c.timeoutMs, clientProperties: { connection_name: 'hookrelay-source' }, ...(t ? { servername: t.serverName ?? host, ca: t.caCert, cert: t.clientCert, key: t.clientKey } : {}) },
  );
  let failed: (error: Error) => void = () => undefined;
  const failure = new Promise<Error>((resolve) => (failed = resolve));
  connection.on('error', (error: Error) => failed(error));
  connection.on('close', () => failed(new Error('connection closed by the broker')));
  const inFlight = new Set<Promise<void>>();
  try {
    const channel = await connection.createChannel();
    channel.on('error', (error: Error) => failed(error));
    channel.on('close', () => failed(new Error('channel closed')));
    // A queue that does not exist closes the channel with 404 NOT_FOUND, which is the message shown.
    await channel.checkQueue(c.queue);
    await channel.prefetch(c.prefetch);
    const { consumerTag } = await channel.consume(
      c.queue,
      (msg) => {
        if (!msg) return failed(new Error(`the broker cancelled the consumer (queue ${JSON.stringify(c.queue)} deleted?)`));
        const work = ctx.acceptAll([amqpRecord(c.queue, msg)]).then((accepted) => {
          if (accepted) channel.ack(msg);
        });
        inFlight.add(work);
        void work.catch(() => undefined).finally(() => inFlight.delete(work));
      },
      { noAck: false },
    );
    ctx.running();
    const aborted = new Promise<null>((resolve) => (ctx.signal.aborted ? resolve(null) : ctx.signal.addEventListener('abort', () => resolve(null), { once: true })));
    const error = await Promise.race([failure, aborted]);
    if (error) throw error;
    // Stop the deliveries, then let the accepts in flight finish and ack before the connection closes.
    await channel.cancel(consumerTag).catch(() => undefined);
    await Promise.allSettled([...inFlight]);
  } finally {
    failed = () => undefined;
    await connection.close().catch(() => undefined);
  }
}
