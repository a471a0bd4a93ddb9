-- Per-application API keys. Only a SHA-256 digest of each key is kept; the key is shown once, at creation.
-- The key names its row (`hrk_<id>_<secret>`), so authentication reads one row by primary key.
CREATE TABLE api_key (
  id          text COLLATE "C" PRIMARY KEY,
  app_id      text COLLATE "C" NOT NULL REFERENCES app(id) ON DELETE CASCADE,
  name        text,
  prefix      text NOT NULL,
  hash        text NOT NULL,
  created_at  bigint NOT NULL,
  expires_at  bigint
);
CREATE INDEX api_key_app ON api_key (app_id, id);
