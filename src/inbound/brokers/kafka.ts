import { Kafka, logLevel, type Consumer, type IHeaders, type SASLOptions } from 'kafkajs';
import { describeError, egressRefusal, egressSocketFactory } from '../../pipeline/destinations/kafka.js';
import type { KafkaSourceConfig } from './config.js';
import type { BrokerRecord, ConsumerContext } from './consumer.js';

/** Kafka record headers as text (a header sent several times: its values joined with `, `). */
function headersOf(headers: IHeaders | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (value === undefined) continue;
    const values = Array.isArray(value) ? value : [value];
    out[name.toLowerCase()] = values.map((v) => v.toString()).join(', ');
  }
  return out;
}

/** A kafkajs error as the source's state says it: the egress refusal, or the broker's error and its cause. */
export const kafkaError = (error: unknown) => egressRefusal(error) ?? describeError(error);

/**
 * Consumes a topic in a consumer group: the partitions are shared among the group's members (every hookrelay process
 * on a shared store is one), and a partition's offset is committed only after its records are accepted.
 */
export async function consumeKafka(ctx: ConsumerContext<KafkaSourceConfig>): Promise<void> {
  const c = ctx.config;
  const ssl = c.ssl === undefined || c.ssl === false ? undefined : c.ssl === true ? {} : { servername: c.ssl.serverName, ca: c.ssl.caCert, cert: c.ssl.clientCert, key: c.ssl.clientKey };
  const kafka = new Kafka({
    clientId: 'hookrelay-source',
    brokers: c.brokers,
    ssl,
    sasl: c.sasl as SASLOptions | undefined,
    connectionTimeout: Math.min(c.timeoutMs, 10_000),
    requestTimeout: c.timeoutMs,
    retry: { retries: 2, initialRetryTime: 200, maxRetryTime: 1_000 },
    socketFactory: egressSocketFactory(ctx.egress),
    logLevel: logLevel.NOTHING,
  });

  // The topic is checked first, so that a missing one is said plainly (the consumer would wait for it in silence).
  const admin = kafka.admin();
  try {
    await admin.connect();
    await admin.fetchTopicMetadata({ topics: [c.topic] });
  } catch (error) {
    if ((error as { type?: string }).type === 'UNKNOWN_TOPIC_OR_PARTITION') throw new Error(`topic ${JSON.stringify(c.topic)} does not exist (UNKNOWN_TOPIC_OR_PARTITION)`);
    throw new Error(kafkaError(error));
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
  if (ctx.signal.aborted) return;

  const consumer: Consumer = kafka.consumer({
    groupId: ctx.group,
    allowAutoTopicCreation: false,
    maxWaitTimeInMs: 500,
    // A member that died (a killed process, or one cut off by a broker restart) holds its partitions until its session
    // expires: 10 s, not kafkajs' 30 s. Heartbeats every second keep a live one well inside it.
    sessionTimeout: 10_000,
    heartbeatInterval: 1_000,
    // This loop, not kafkajs, restarts a consumer that failed (with the error shown on the source meanwhile).
    retry: { retries: 3, initialRetryTime: 200, maxRetryTime: 2_000, restartOnFailure: async () => false },
  });
  const crashed = new Promise<Error>((resolve) => consumer.on(consumer.events.CRASH, ({ payload }) => resolve(payload.error)));
  consumer.on(consumer.events.GROUP_JOIN, () => ctx.running());
  try {
    await consumer.connect();
    await consumer.subscribe({ topic: c.topic, fromBeginning: c.startFrom === 'earliest' });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      eachBatch: async ({ batch, heartbeat, isRunning, isStale }) => {
        for (let i = 0; i < batch.messages.length; i += c.batchSize) {
          if (!isRunning() || isStale() || ctx.signal.aborted) return;
          const slice = batch.messages.slice(i, i + c.batchSize);
          const records: BrokerRecord[] = slice.map((m) => ({
            id: `kafka:${batch.topic}/${batch.partition}/${m.offset}`,
            payload: m.value ?? Buffer.alloc(0),
            headers: headersOf(m.headers),
          }));
          if (!(await ctx.acceptAll(records, heartbeat))) return;
          const next = (BigInt(slice[slice.length - 1].offset) + 1n).toString();
          await consumer.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset: next }]);
          await heartbeat();
        }
      },
    });
    const aborted = new Promise<null>((resolve) => (ctx.signal.aborted ? resolve(null) : ctx.signal.addEventListener('abort', () => resolve(null), { once: true })));
    const failure = await Promise.race([crashed, aborted]);
    if (failure) throw new Error(kafkaError(failure));
  } catch (error) {
    if (ctx.signal.aborted) return;
    throw error instanceof Error && error.message.startsWith('topic ') ? error : new Error(kafkaError(error));
  } finally {
    // Waits for the batch in hand: its accepted records are committed before the consumer leaves the group.
    await consumer.disconnect().catch(() => undefined);
  }
}
