-- hookrelay schema, PostgreSQL dialect (mirrors ../../sqlite/migrations version by version).
-- Shipped migrations are never edited; add a new numbered file instead.
-- Times are epoch milliseconds (bigint). Ids are time-sortable strings (see src/domain/ids.ts): they are compared
-- and paged byte-wise, so key columns use the "C" collation whatever the database's locale is.

CREATE TABLE app (
  id          text COLLATE "C" PRIMARY KEY,
  uid         text COLLATE "C" UNIQUE,
  name        text NOT NULL,
  rate_limit  integer,
  metadata    jsonb NOT NULL DEFAULT '{}',
  created_at  bigint NOT NULL,
  updated_at  bigint NOT NULL
);

CREATE TABLE event_type (
  name          text COLLATE "C" PRIMARY KEY,
  description   text NOT NULL,
  archived      boolean NOT NULL DEFAULT false,
  deprecated    boolean NOT NULL DEFAULT false,
  feature_flag  text,
  group_name    text,
  -- json, not jsonb: a schema document comes back with the key order it was given.
  schemas       json,
  created_at    bigint NOT NULL,
  updated_at    bigint NOT NULL
);

CREATE TABLE endpoint (
  id               text COLLATE "C" PRIMARY KEY,
  app_id           text COLLATE "C" NOT NULL REFERENCES app(id) ON DELETE CASCADE,
  uid              text COLLATE "C",
  url              text NOT NULL,
  description      text NOT NULL DEFAULT '',
  version          integer NOT NULL DEFAULT 1,
  filter_types     jsonb,
  channels         jsonb,
  headers          jsonb NOT NULL DEFAULT '{}',
  disabled         boolean NOT NULL DEFAULT false,
  disabled_reason  text,
  rate_limit       integer,
  ordering         text NOT NULL DEFAULT 'parallel' CHECK (ordering IN ('parallel', 'fifo')),
  max_in_flight    integer NOT NULL,
  metadata         jsonb NOT NULL DEFAULT '{}',
  secrets          jsonb NOT NULL,
  created_at       bigint NOT NULL,
  updated_at       bigint NOT NULL,
  UNIQUE (app_id, uid)
);
CREATE INDEX endpoint_app ON endpoint (app_id, id);

CREATE TABLE message (
  id            text COLLATE "C" PRIMARY KEY,
  app_id        text COLLATE "C" NOT NULL REFERENCES app(id) ON DELETE CASCADE,
  event_type    text COLLATE "C" NOT NULL,
  event_id      text COLLATE "C",
  payload       bytea,
  content_type  text NOT NULL,
  channels      jsonb,
  tags          jsonb,
  created_at    bigint NOT NULL
);
CREATE INDEX message_app ON message (app_id, id);
CREATE UNIQUE INDEX message_event_id ON message (app_id, event_id) WHERE event_id IS NOT NULL;

-- Idempotency keys of message creation; a key answers with its message until it expires.
CREATE TABLE idempotency_key (
  app_id      text COLLATE "C" NOT NULL REFERENCES app(id) ON DELETE CASCADE,
  key         text COLLATE "C" NOT NULL,
  message_id  text COLLATE "C" NOT NULL,
  expires_at  bigint NOT NULL,
  PRIMARY KEY (app_id, key)
);

-- Responses of other POST requests by idempotency key, replayed when a client retries with the same key.
CREATE TABLE idempotent_response (
  scope       text COLLATE "C" NOT NULL,
  key         text COLLATE "C" NOT NULL,
  status      integer NOT NULL,
  body        text NOT NULL,
  expires_at  bigint NOT NULL,
  PRIMARY KEY (scope, key)
);

-- One row per (message, endpoint). The id orders deliveries of an endpoint in accept order (FIFO): an accept
-- inserts its deliveries before its transaction commits, and a client that waits for the 202 of one message before
-- sending the next sees the second one get the larger id.
CREATE TABLE delivery (
  id               bigserial PRIMARY KEY,
  message_id       text COLLATE "C" NOT NULL REFERENCES message(id) ON DELETE CASCADE,
  app_id           text COLLATE "C" NOT NULL,
  endpoint_id      text COLLATE "C" NOT NULL REFERENCES endpoint(id) ON DELETE CASCADE,
  status           text NOT NULL CHECK (status IN ('pending', 'in_flight', 'succeeded', 'failed')),
  attempt_count    integer NOT NULL DEFAULT 0,
  retry_index      integer NOT NULL DEFAULT 0,
  next_attempt_at  bigint,
  manual           boolean NOT NULL DEFAULT false,
  leased_by        text,
  lease_until      bigint,
  created_at       bigint NOT NULL,
  updated_at       bigint NOT NULL,
  UNIQUE (message_id, endpoint_id)
);
-- The claim indexes hold only pending rows, so finished deliveries never slow a claim: due work of an endpoint
-- (parallel), its oldest pending delivery (FIFO), and the earliest due time over all endpoints (the poll timer).
CREATE INDEX delivery_pending ON delivery (endpoint_id, next_attempt_at, id) WHERE status = 'pending';
CREATE INDEX delivery_pending_fifo ON delivery (endpoint_id, id) WHERE status = 'pending';
CREATE INDEX delivery_pending_due ON delivery (next_attempt_at) WHERE status = 'pending';
CREATE INDEX delivery_in_flight ON delivery (endpoint_id, lease_until) WHERE status = 'in_flight';
CREATE INDEX delivery_endpoint ON delivery (endpoint_id, status, message_id);

CREATE TABLE attempt (
  id             text COLLATE "C" PRIMARY KEY,
  delivery_id    bigint NOT NULL REFERENCES delivery(id) ON DELETE CASCADE,
  message_id     text COLLATE "C" NOT NULL,
  endpoint_id    text COLLATE "C" NOT NULL,
  app_id         text COLLATE "C" NOT NULL,
  url            text NOT NULL,
  started_at     bigint NOT NULL,
  duration_ms    integer NOT NULL,
  status_code    integer NOT NULL,
  succeeded      boolean NOT NULL,
  response_body  text NOT NULL,
  error          text,
  trigger        text NOT NULL CHECK (trigger IN ('scheduled', 'manual'))
);
CREATE INDEX attempt_message ON attempt (message_id, id);
CREATE INDEX attempt_endpoint ON attempt (endpoint_id, id);
CREATE INDEX attempt_delivery ON attempt (delivery_id);
