-- Content filters on endpoints (src/domain/content-filter.ts, docs/routing.md): the filter document as JSON text,
-- NULL for none. Matching happens in the process at accept; nothing here is queried by content.
ALTER TABLE endpoint ADD COLUMN filter TEXT;
