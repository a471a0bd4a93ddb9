-- Content filters on endpoints (src/domain/content-filter.ts, docs/routing.md): the filter document as JSON text
-- exactly as validated, NULL for none. Matching happens in the process at accept (src/store/postgres/accept.ts);
-- the partial index finds an app's filtered endpoints, and is empty for apps that have none. Health updates do not
-- touch `filter`, so they stay HOT.
ALTER TABLE endpoint ADD COLUMN filter text;
CREATE INDEX endpoint_filtered_idx ON endpoint (app_id) WHERE filter IS NOT NULL AND NOT disabled;
