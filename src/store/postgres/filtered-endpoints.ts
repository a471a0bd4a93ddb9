import type { ContentFilter, FilterSubject } from '../../domain/content-filter.js';
import { endpointMatches } from '../../domain/filter.js';
import type { AcceptInput } from '../store.js';
import { compileStoredFilter, filterSubject } from '../fan-out.js';
import type { Client } from './pool.js';

interface FilteredEndpoint {
  /** `id:updated_at`: the version of the endpoint the filter was compiled from, as the accept statement checks it. */
  key: string;
  filterTypes: string[] | null;
  channels: string[] | null;
  content: ContentFilter;
}

/** Apps remembered at most; past it the cache starts again (a re-read costs one indexed query per app). */
const MAX_APPS = 10_000;

/**
 * This process's copy of each app's enabled endpoints that have a content filter, compiled once per endpoint version.
 * It may be stale (another process changed an endpoint): the accept statement compares it with the table and refuses
 * to write the messages of an app whose copy is stale, which are then written again after `refresh`
 * (src/store/postgres/accept.ts). An app never seen is taken to have none, which that check corrects the first time.
 */
export class FilteredEndpoints {
  private readonly byApp = new Map<string, FilteredEndpoint[]>();

  /** The endpoint versions evaluated for these inputs' apps, for the statement's staleness check. */
  evaluated(inputs: readonly AcceptInput[]): string[] {
    const keys: string[] = [];
    for (const appId of new Set(inputs.map((i) => i.appId))) for (const e of this.byApp.get(appId) ?? []) keys.push(e.key);
    return keys;
  }

  /** The filtered endpoints (as versions) whose filters this message passes; the payload is parsed only if one needs it. */
  matched(input: AcceptInput): string[] {
    const endpoints = this.byApp.get(input.appId);
    if (!endpoints || endpoints.length === 0) return [];
    let subject: FilterSubject | undefined;
    const keys: string[] = [];
    for (const e of endpoints) {
      if (!endpointMatches({ filterTypes: e.filterTypes, channels: e.channels, disabled: false }, input.eventType, input.channels)) continue;
      if (e.content((subject ??= filterSubject(input)))) keys.push(e.key);
    }
    return keys;
  }

  async refresh(client: Client, appIds: readonly string[]): Promise<void> {
    const rows = await client.query<{ id: string; app_id: string; updated_at: number; filter_types: string[] | null; channels: string[] | null; filter: string }>(
      'SELECT id, app_id, updated_at, filter_types, channels, filter FROM endpoint WHERE app_id = ANY($1) AND filter IS NOT NULL AND NOT disabled ORDER BY id',
      [appIds],
    );
    const previous = new Map<string, FilteredEndpoint>();
    for (const appId of appIds) for (const e of this.byApp.get(appId) ?? []) previous.set(e.key, e);
    if (this.byApp.size + appIds.length > MAX_APPS) this.byApp.clear();
    for (const appId of appIds) this.byApp.set(appId, []);
    for (const row of rows.rows) {
      const key = `${row.id}:${row.updated_at}`;
      const compiled = previous.get(key) ?? { key, filterTypes: row.filter_types, channels: row.channels, content: compileStoredFilter(row.filter) };
      this.byApp.get(row.app_id)!.push(compiled);
    }
  }
}
