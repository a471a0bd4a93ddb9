-- hookrelay schema, SQLite dialect. Shipped migrations are never edited; add a new numbered file instead.
-- Times are epoch milliseconds. Ids are time-sortable strings (see src/domain/ids.ts).

CREATE TABLE app (
  id          TEXT PRIMARY KEY,
  uid         TEXT UNIQUE,
  name        TEXT NOT NULL,
  rate_limit  INTEGER,
  metadata    TEXT NOT NULL DEFAULT '{}',
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL
);

CREATE TABLE event_type (
  name          TEXT PRIMARY KEY,
  description   TEXT NOT NULL,
  archived      INTEGER NOT NULL DEFAULT 0,
  deprecated    INTEGER NOT NULL DEFAULT 0,
  feature_flag  TEXT,
  group_name    TEXT,
  schemas       TEXT,
  created_at    INTEGER NOT NULL,
  updated_at    INTEGER NOT NULL
);

CREATE TABLE endpoint (
  id               TEXT PRIMARY KEY,
  app_id           TEXT NOT NULL REFERENCES app(id) ON DELETE CASCADE,
  uid              TEXT,
  url              TEXT NOT NULL,
  description      TEXT NOT NULL DEFAULT '',
  version          INTEGER NOT NULL DEFAULT 1,
  filter_types     TEXT,
  channels         TEXT,
  headers          TEXT NOT NULL DEFAULT '{}',
  disabled         INTEGER NOT NULL DEFAULT 0,
  disabled_reason  TEXT,
  rate_limit       INTEGER,
  ordering         TEXT NOT NULL DEFAULT 'parallel' CHECK (ordering IN ('parallel', 'fifo')),
  max_in_flight    INTEGER NOT NULL,
  metadata         TEXT NOT NULL DEFAULT '{}',
  secrets          TEXT NOT NULL,
  created_at       INTEGER NOT NULL,
  updated_at       INTEGER NOT NULL,
  UNIQUE (app_id, uid)
);
CREATE INDEX endpoint_app ON endpoint (app_id, id);

CREATE TABLE message (
  id            TEXT PRIMARY KEY,
  app_id        TEXT NOT NULL REFERENCES app(id) ON DELETE CASCADE,
  event_type    TEXT NOT NULL,
  event_id      TEXT,
  payload       BLOB,
  content_type  TEXT NOT NULL,
  channels      TEXT,
  tags          TEXT,
  created_at    INTEGER NOT NULL
);
CREATE INDEX message_app ON message (app_id, id);
CREATE UNIQUE INDEX message_event_id ON message (app_id, event_id) WHERE event_id IS NOT NULL;

-- Idempotency keys of message creation; a key answers with its message until it expires.
CREATE TABLE idempotency_key (
  app_id      TEXT NOT NULL REFERENCES app(id) ON DELETE CASCADE,
  key         TEXT NOT NULL,
  message_id  TEXT NOT NULL,
  expires_at  INTEGER NOT NULL,
  PRIMARY KEY (app_id, key)
);

-- Responses of other POST requests by idempotency key, replayed when a client retries with the same key.
CREATE TABLE idempotent_response (
  scope       TEXT NOT NULL,
  key         TEXT NOT NULL,
  status      INTEGER NOT NULL,
  body        TEXT NOT NULL,
  expires_at  INTEGER NOT NULL,
  PRIMARY KEY (scope, key)
);

-- One row per (message, endpoint). The rowid orders deliveries of an endpoint in accept order (FIFO).
CREATE TABLE delivery (
  id               INTEGER PRIMARY KEY,
  message_id       TEXT NOT NULL REFERENCES message(id) ON DELETE CASCADE,
  app_id           TEXT NOT NULL,
  endpoint_id      TEXT NOT NULL REFERENCES endpoint(id) ON DELETE CASCADE,
  status           TEXT NOT NULL CHECK (status IN ('pending', 'in_flight', 'succeeded', 'failed')),
  attempt_count    INTEGER NOT NULL DEFAULT 0,
  retry_index      INTEGER NOT NULL DEFAULT 0,
  next_attempt_at  INTEGER,
  manual           INTEGER NOT NULL DEFAULT 0,
  leased_by        TEXT,
  lease_until      INTEGER,
  created_at       INTEGER NOT NULL,
  updated_at       INTEGER NOT NULL,
  UNIQUE (message_id, endpoint_id)
);
-- The claim index holds only pending rows, so finished deliveries never slow a claim.
CREATE INDEX delivery_pending ON delivery (endpoint_id, next_attempt_at, id) WHERE status = 'pending';
CREATE INDEX delivery_in_flight ON delivery (endpoint_id, lease_until) WHERE status = 'in_flight';
CREATE INDEX delivery_endpoint ON delivery (endpoint_id, status, message_id);

CREATE TABLE attempt (
  id             TEXT PRIMARY KEY,
  delivery_id    INTEGER NOT NULL REFERENCES delivery(id) ON DELETE CASCADE,
  message_id     TEXT NOT NULL,
  endpoint_id    TEXT NOT NULL,
  app_id         TEXT NOT NULL,
  url            TEXT NOT NULL,
  started_at     INTEGER NOT NULL,
  duration_ms    INTEGER NOT NULL,
  status_code    INTEGER NOT NULL,
  succeeded      INTEGER NOT NULL,
  response_body  TEXT NOT NULL,
  error          TEXT,
  trigger        TEXT NOT NULL CHECK (trigger IN ('scheduled', 'manual'))
);
CREATE INDEX attempt_message ON attempt (message_id, id);
CREATE INDEX attempt_endpoint ON attempt (endpoint_id, id);
CREATE INDEX attempt_delivery ON attempt (delivery_id);
