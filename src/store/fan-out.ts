import { compileFilter, parsePayloadCopy, type ContentFilter, type FilterSubject } from '../domain/content-filter.js';
import type { AcceptInput } from './store.js';

/** An enabled endpoint as fan-out sees it: the filters `endpointMatches` checks, plus its compiled content filter. */
export interface FanOutTarget {
  id: string;
  filterTypes: string[] | null;
  channels: string[] | null;
  disabled: boolean;
  content: ContentFilter | null;
  /** `ordering: 'key'`: its deliveries carry the key they are ordered under (store/sqlite/claim.ts). */
  keyed?: boolean;
}

/** The key a delivery to an `ordering: 'key'` endpoint is ordered under: the message's, else its own id (unordered). */
export const deliveryKeyOf = (messageId: string, orderingKey: string | null | undefined): string => orderingKey ?? messageId;

const NOTHING: ContentFilter = () => false;

/**
 * Compiles a filter as stored. The API validated it at save, so this fails only for a row written by hand or by a
 * newer hookrelay: such an endpoint then receives nothing rather than everything (fail closed).
 */
export function compileStoredFilter(text: string): ContentFilter {
  try {
    return compileFilter(JSON.parse(text));
  } catch {
    return NOTHING;
  }
}

/** What content filters see of a message being accepted: a parsed copy of its payload and the source's kept headers. */
export function filterSubject(input: Pick<AcceptInput, 'payload' | 'source'>): FilterSubject {
  return { body: parsePayloadCopy(input.payload), headers: input.source?.headers ?? {} };
}
