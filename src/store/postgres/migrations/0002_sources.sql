-- Inbound sources: providers post to a source's ingest URL; what they send becomes a message of the source's app.

CREATE TABLE source (
  id          text COLLATE "C" PRIMARY KEY,
  app_id      text COLLATE "C" NOT NULL REFERENCES app(id) ON DELETE CASCADE,
  uid         text COLLATE "C" UNIQUE,
  name        text NOT NULL,
  type        text NOT NULL,
  config      jsonb NOT NULL,
  metadata    jsonb NOT NULL DEFAULT '{}',
  token       text COLLATE "C" NOT NULL UNIQUE,
  created_at  bigint NOT NULL,
  updated_at  bigint NOT NULL
);

ALTER TABLE message ADD COLUMN source_id text COLLATE "C";
ALTER TABLE message ADD COLUMN headers jsonb;
ALTER TABLE message ADD COLUMN verified boolean;
