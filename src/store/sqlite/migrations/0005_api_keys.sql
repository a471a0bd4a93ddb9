-- Per-application API keys. Only a SHA-256 digest of each key is kept; the key is shown once, at creation.
-- The key names its row (`hrk_<id>_<secret>`), so authentication reads one row by primary key.
CREATE TABLE api_key (
  id          TEXT PRIMARY KEY,
  app_id      TEXT NOT NULL REFERENCES app(id) ON DELETE CASCADE,
  name        TEXT,
  prefix      TEXT NOT NULL,
  hash        TEXT NOT NULL,
  created_at  INTEGER NOT NULL,
  expires_at  INTEGER
);
CREATE INDEX api_key_app ON api_key (app_id, id);
