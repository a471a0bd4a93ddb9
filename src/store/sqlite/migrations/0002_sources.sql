-- Inbound sources: providers post to a source's ingest URL; what they send becomes a message of the source's app.

CREATE TABLE source (
  id          TEXT PRIMARY KEY,
  app_id      TEXT NOT NULL REFERENCES app(id) ON DELETE CASCADE,
  uid         TEXT UNIQUE,
  name        TEXT NOT NULL,
  type        TEXT NOT NULL,
  config      TEXT NOT NULL,
  metadata    TEXT NOT NULL DEFAULT '{}',
  token       TEXT NOT NULL UNIQUE,
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL
);

ALTER TABLE message ADD COLUMN source_id TEXT;
ALTER TABLE message ADD COLUMN headers TEXT;
ALTER TABLE message ADD COLUMN verified INTEGER;
