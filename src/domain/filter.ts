import type { Endpoint } from './types.js';

/**
 * Whether a message reaches an endpoint: the endpoint's event-type filter (null = all types) must contain the
 * type, and when the endpoint lists channels the message must share at least one of them.
 */
export function endpointMatches(endpoint: Pick<Endpoint, 'filterTypes' | 'channels' | 'disabled'>, eventType: string, channels: string[] | null): boolean {
  if (endpoint.disabled) return false;
  if (endpoint.filterTypes && !endpoint.filterTypes.includes(eventType)) return false;
  if (endpoint.channels) {
    if (!channels) return false;
    return channels.some((c) => endpoint.channels!.includes(c));
  }
  return true;
}
