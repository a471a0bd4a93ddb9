import type { Page, PageRequest } from './store.js';

/**
 * Cursor pagination over a sortable key. `iterator` continues in the requested order; `prevIterator`
 * (prefixed `-`) walks back. Backends fetch `limit + 1` rows to know whether the page is the last.
 */
export interface CursorQuery {
  /** Compare rows to this key: `>` when `ascending`, `<` otherwise. */
  after: string | null;
  ascending: boolean;
  /** The caller walks backwards; the rows must be reversed before returning. */
  reversed: boolean;
  fetch: number;
}

export function cursorQuery(page: PageRequest): CursorQuery {
  const wantAscending = page.order === 'ascending';
  const iterator = page.iterator ?? null;
  const reversed = iterator !== null && iterator.startsWith('-');
  return {
    after: iterator === null ? null : reversed ? iterator.slice(1) : iterator,
    ascending: reversed ? !wantAscending : wantAscending,
    reversed,
    fetch: page.limit + 1,
  };
}

export function toPage<T>(rows: T[], page: PageRequest, query: CursorQuery, keyOf: (row: T) => string): Page<T> {
  const more = rows.length > page.limit;
  let data = more ? rows.slice(0, page.limit) : rows;
  if (query.reversed) data = data.reverse();
  const first = data[0];
  const last = data[data.length - 1];
  return {
    data,
    iterator: last ? keyOf(last) : (query.after ?? null),
    prevIterator: first ? '-' + keyOf(first) : null,
    done: query.reversed ? false : !more,
  };
}
