import type { ClaimedDelivery, Endpoint } from '../../domain/types.js';
import type { Destination, SendResult } from './destination.js';
import type { DestinationKind, OpenOptions } from './kinds.js';
// destination kinds: imports
import { kafkaDestinationKind } from './kafka.js';
import { natsDestinationKind } from './nats.js';
import { rabbitmqDestinationKind } from './rabbitmq.js';
import { redisDestinationKind } from './redis.js';
import { listenDestinationKind } from './listen.js';
import { temporalDestinationKind } from './temporal.js';

/** Every non-HTTP destination kind, by type. */
export const DESTINATION_KINDS: ReadonlyMap<string, DestinationKind> = new Map(
  (
    [
      // destination kinds: list
      temporalDestinationKind,
      redisDestinationKind,
      natsDestinationKind,
      kafkaDestinationKind,
      rabbitmqDestinationKind,
      listenDestinationKind,
    ] as DestinationKind[]
  ).map((kind) => [kind.type, kind]),
);

/** Routes each delivery to HTTP or to its endpoint's destination kind. */
export class Destinations implements Destination {
  private readonly opened = new Map<string, Destination>();

  constructor(
    private readonly http: Destination,
    private readonly kinds: ReadonlyMap<string, DestinationKind> = DESTINATION_KINDS,
    private readonly options: OpenOptions = {},
  ) {}

  send(claimed: ClaimedDelivery, signal: AbortSignal): Promise<SendResult> {
    const type = claimed.endpoint.destination?.type;
    if (!type) return this.http.send(claimed, signal);
    if (!this.kinds.has(type)) return Promise.resolve({ kind: 'fatal', statusCode: 0, responseBody: '', error: `unknown destination type ${JSON.stringify(type)}` });
    return this.open(type).send(claimed, signal);
  }

  /** Checks the targets of every endpoint with a destination, opening its kind if no delivery has yet. */
  async readiness(endpoints: Endpoint[]): Promise<Record<string, string>> {
    const checks: Record<string, string> = {};
    const byType = new Map<string, Endpoint[]>();
    for (const endpoint of endpoints) {
      const type = endpoint.destination?.type;
      if (type && this.kinds.has(type)) byType.set(type, [...(byType.get(type) ?? []), endpoint]);
    }
    for (const [type, list] of byType) Object.assign(checks, await this.open(type).readiness?.(list));
    return checks;
  }

  private open(type: string): Destination {
    let destination = this.opened.get(type);
    if (!destination) {
      destination = this.kinds.get(type)!.open(this.options);
      this.opened.set(type, destination);
    }
    return destination;
  }

  async close(): Promise<void> {
    await Promise.all([this.http.close(), ...[...this.opened.values()].map((d) => d.close())]);
  }
}
