import { Redis, type RedisOptions } from 'ioredis';
import { hostOf, pinnedAddress, portOf } from '../../pipeline/destinations/broker.js';
import type { RedisSourceConfig } from './config.js';
import type { BrokerRecord, ConsumerContext } from './consumer.js';

type RawEntry = [Buffer, Buffer[] | null];

/**
 * Consumes a Redis stream as one consumer of a consumer group (XREADGROUP), acknowledging each batch (XACK) after it is
 * accepted. Entries another consumer read but never acknowledged for `claimIdleMs` (a process that died) are claimed
 * with XAUTOCLAIM and accepted here.
 */
export async function consumeRedis(ctx: ConsumerContext<RedisSourceConfig>): Promise<void> {
  const c = ctx.config;
  const client = await connect(ctx);
  const stop = () => client.disconnect();
  try {
    try {
      await client.call('XGROUP', ['CREATE', c.stream, ctx.group, c.startFrom === 'earliest' ? '0' : '$', 'MKSTREAM']);
    } catch (error) {
      if (!/BUSYGROUP/.test((error as Error).message)) throw error;
    }
    ctx.running();
    let lastClaim = 0;
    while (!ctx.signal.aborted) {
      if (Date.now() - lastClaim >= c.claimIdleMs / 2) {
        lastClaim = Date.now();
        await claimStale(ctx, client);
        if (ctx.signal.aborted) break;
      }
      // BLOCK bounds how long a stop waits for the read to return.
      const reply = (await client.callBuffer('XREADGROUP', ['GROUP', ctx.group, ctx.consumerName, 'COUNT', c.batchSize, 'BLOCK', 1000, 'STREAMS', c.stream, '>'])) as [Buffer, RawEntry[]][] | null;
      if (!reply) continue;
      for (const [, entries] of reply) if (!(await handle(ctx, client, entries))) return;
    }
  } finally {
    // Entries read but not acknowledged stay pending in the group; another consumer (or this source's next run) claims them.
    stop();
  }
}

/** Accepts the entries, then acknowledges them; false when the consumer stopped before they were all accepted. */
async function handle(ctx: ConsumerContext<RedisSourceConfig>, client: Redis, entries: RawEntry[]): Promise<boolean> {
  const c = ctx.config;
  const records: BrokerRecord[] = [];
  const ids: string[] = [];
  for (const [rawId, fields] of entries) {
    const id = rawId.toString();
    ids.push(id);
    // An entry deleted (XDEL, trimming) while pending comes without fields: nothing to accept, only to acknowledge.
    if (!fields) continue;
    const headers: Record<string, string> = {};
    let payload: Buffer | null = null;
    for (let i = 0; i + 1 < fields.length; i += 2) {
      const name = fields[i].toString();
      if (name === c.payloadField) payload = fields[i + 1];
      else headers[name.toLowerCase()] = fields[i + 1].toString();
    }
    records.push({ id: `redis:${c.stream}/${id}`, payload: payload ?? Buffer.alloc(0), headers });
  }
  if (!(await ctx.acceptAll(records))) return false;
  if (ids.length > 0) await client.call('XACK', [c.stream, ctx.group, ...ids]);
  return true;
}

/** Claims and accepts every entry of the group idle for `claimIdleMs` (read by a consumer that never acknowledged it). */
async function claimStale(ctx: ConsumerContext<RedisSourceConfig>, client: Redis): Promise<void> {
  const c = ctx.config;
  let cursor = '0-0';
  do {
    // Redis 7 also answers the ids of pending entries that no longer exist (a third element): it drops them itself.
    const [next, entries] = (await client.callBuffer('XAUTOCLAIM', [c.stream, ctx.group, ctx.consumerName, c.claimIdleMs, cursor, 'COUNT', c.batchSize])) as [Buffer, RawEntry[]];
    cursor = next.toString();
    if (!(await handle(ctx, client, entries.filter((e) => e !== null)))) return;
  } while (cursor !== '0-0' && !ctx.signal.aborted);
}

async function connect(ctx: ConsumerContext<RedisSourceConfig>): Promise<Redis> {
  const c = ctx.config;
  const host = hostOf(c.address);
  const options: RedisOptions = {
    host: await pinnedAddress(ctx.egress, host),
    port: portOf(c.address),
    username: c.username,
    password: c.password,
    db: c.db,
    lazyConnect: true,
    connectTimeout: c.timeoutMs,
    // A request outlives BLOCK 1000 by the timeout at most; a lost connection fails the loop, which dials again.
    commandTimeout: c.timeoutMs + 1_000,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectionName: 'hookrelay-source',
  };
  if (c.tls) {
    const t = c.tls === true ? {} : c.tls;
    options.tls = { servername: t.serverName ?? host, ca: t.caCert, cert: t.clientCert, key: t.clientKey };
  }
  const client = new Redis(options);
  let refusal: Error | null = null;
  client.on('error', (error: Error) => (refusal ??= error));
  try {
    await client.connect();
  } catch (error) {
    client.disconnect();
    throw refusal ?? error;
  }
  return client;
}
