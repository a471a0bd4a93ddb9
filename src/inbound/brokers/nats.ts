import { AckPolicy, connect, DeliverPolicy, nanos, type JsMsg, type NatsConnection } from 'nats';
import { natsConnection } from '../../pipeline/destinations/nats.js';
import type { NatsSourceConfig } from './config.js';
import type { BrokerRecord, ConsumerContext } from './consumer.js';

/** nats.js errors carry a code: say what it means for a source. */
export function natsError(error: unknown): string {
  const code = (error as { code?: string })?.code;
  const message = (error as Error)?.message ?? String(error);
  if (code === 'AUTHORIZATION_VIOLATION') return 'authorization violation (wrong user, password or token)';
  if (code === '503') return 'JetStream is not enabled on this server (503 no responders)';
  return code && !message.includes(code) ? `${code}: ${message}` : message;
}

const notFound = (error: unknown) => (error as { code?: string })?.code === '404' || /not found/i.test((error as Error)?.message ?? '');

function headersOf(m: JsMsg): Record<string, string> {
  const out: Record<string, string> = {};
  if (!m.headers) return out;
  for (const name of m.headers.keys()) out[name.toLowerCase()] = m.headers.values(name).join(', ');
  return out;
}

/**
 * Pulls from a durable JetStream consumer (created when missing, with explicit acks): every hookrelay process on a
 * shared store pulls from the same consumer, so the server hands each message to one of them. A message is acked only
 * after it is accepted; one never acked is redelivered after `ackWaitMs`.
 */
export async function consumeNats(ctx: ConsumerContext<NatsSourceConfig>): Promise<void> {
  const c = ctx.config;
  const nc = await dial(ctx);
  // Every wait below ends when the connection does (a pull in progress may otherwise wait on a dead socket).
  const lost = nc.closed().then((error) => Promise.reject(new Error(`connection closed${error ? `: ${natsError(error)}` : ''}`)));
  lost.catch(() => undefined);
  const whileOpen = <T>(work: Promise<T>) => Promise.race([work, lost]);
  try {
    const jsm = await nc.jetstreamManager({ timeout: c.timeoutMs });
    try {
      await jsm.streams.info(c.stream);
    } catch (error) {
      if (notFound(error)) throw new Error(`stream ${JSON.stringify(c.stream)} does not exist`);
      throw error;
    }
    try {
      await jsm.consumers.info(c.stream, ctx.group);
    } catch (error) {
      if (!notFound(error)) throw error;
      await jsm.consumers.add(c.stream, {
        durable_name: ctx.group,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: c.startFrom === 'earliest' ? DeliverPolicy.All : DeliverPolicy.New,
        ack_wait: nanos(c.ackWaitMs),
        max_ack_pending: 10_000,
        ...(c.filterSubject ? { filter_subject: c.filterSubject } : {}),
      });
    }
    const consumer = await nc.jetstream().consumers.get(c.stream, ctx.group);
    ctx.running();
    while (!ctx.signal.aborted) {
      // `expires` bounds how long a stop waits for an empty pull to return.
      const pulled = await whileOpen(consumer.fetch({ max_messages: c.batchSize, expires: 1_000 }));
      const messages = await whileOpen(
        (async () => {
          const out: JsMsg[] = [];
          for await (const m of pulled) out.push(m);
          return out;
        })(),
      ).catch((error) => {
        pulled.stop();
        throw error;
      });
      if (nc.isClosed()) await lost;
      if (messages.length === 0) continue;
      const records: BrokerRecord[] = messages.map((m) => ({ id: `nats:${m.info.stream}/${m.info.streamSequence}`, payload: Buffer.from(m.data), headers: headersOf(m) }));
      // While the store is failing, tell the server the messages are still being worked on (no redelivery meanwhile).
      if (!(await ctx.acceptAll(records, () => messages.forEach((m) => m.working())))) return;
      for (const m of messages) m.ack();
      await whileOpen(nc.flush());
    }
  } finally {
    // A message pulled but not acked is redelivered after ackWaitMs (to this source's next pull, or another process).
    if (!nc.isClosed()) await nc.drain().catch(() => nc.close());
  }
}

async function dial(ctx: ConsumerContext<NatsSourceConfig>): Promise<NatsConnection> {
  // The consumer loop dials again after a failure.
  return connect({ ...(await natsConnection(ctx.config, ctx.egress)), name: 'hookrelay-source' });
}
