-- hookrelay:foreign-keys-off
-- Ordering keys (docs/api.md): a message may carry an `orderingKey`; an endpoint with `ordering = 'key'` delivers the
-- messages of one key one at a time, in accept order, and different keys in parallel. `ordering_on_park` says whether
-- a parked message lets its key go on (`skip`) or holds it until it is resent or recovered (`hold`).
--
-- SQLite cannot change a CHECK constraint in place, so `endpoint` is rebuilt (the documented create-copy-drop-rename
-- procedure). The first line makes the migration runner switch foreign keys off around this file: with them on,
-- dropping the old table would delete every delivery through ON DELETE CASCADE. The runner checks
-- `PRAGMA foreign_key_check` before committing.
CREATE TABLE endpoint_rebuilt (
  id                  TEXT PRIMARY KEY,
  app_id              TEXT NOT NULL REFERENCES app(id) ON DELETE CASCADE,
  uid                 TEXT,
  url                 TEXT NOT NULL,
  description         TEXT NOT NULL DEFAULT '',
  version             INTEGER NOT NULL DEFAULT 1,
  filter_types        TEXT,
  channels            TEXT,
  headers             TEXT NOT NULL DEFAULT '{}',
  disabled            INTEGER NOT NULL DEFAULT 0,
  disabled_reason     TEXT,
  rate_limit          INTEGER,
  ordering            TEXT NOT NULL DEFAULT 'parallel' CHECK (ordering IN ('parallel', 'fifo', 'key')),
  max_in_flight       INTEGER NOT NULL,
  metadata            TEXT NOT NULL DEFAULT '{}',
  secrets             TEXT NOT NULL,
  created_at          INTEGER NOT NULL,
  updated_at          INTEGER NOT NULL,
  destination         TEXT,
  failure_streak      INTEGER NOT NULL DEFAULT 0,
  failing_since       INTEGER,
  parked_streak       INTEGER NOT NULL DEFAULT 0,
  circuit_open_until  INTEGER,
  circuit_trips       INTEGER NOT NULL DEFAULT 0,
  next_send_at        INTEGER,
  filter              TEXT,
  encryption_keys     TEXT NOT NULL DEFAULT '[]',
  transformation      TEXT,
  ordering_on_park    TEXT NOT NULL DEFAULT 'skip' CHECK (ordering_on_park IN ('skip', 'hold')),
  UNIQUE (app_id, uid)
);
INSERT INTO endpoint_rebuilt (id, app_id, uid, url, description, version, filter_types, channels, headers, disabled, disabled_reason,
  rate_limit, ordering, max_in_flight, metadata, secrets, created_at, updated_at, destination, failure_streak, failing_since,
  parked_streak, circuit_open_until, circuit_trips, next_send_at, filter, encryption_keys, transformation)
SELECT id, app_id, uid, url, description, version, filter_types, channels, headers, disabled, disabled_reason,
  rate_limit, ordering, max_in_flight, metadata, secrets, created_at, updated_at, destination, failure_streak, failing_since,
  parked_streak, circuit_open_until, circuit_trips, next_send_at, filter, encryption_keys, transformation
FROM endpoint;
DROP TABLE endpoint;
ALTER TABLE endpoint_rebuilt RENAME TO endpoint;
CREATE INDEX endpoint_app ON endpoint (app_id, id);

-- The message's key as sent (NULL: none). A delivery to an `ordering = 'key'` endpoint carries the key it is ordered
-- under: the message's, or for a message without one its own id (its own key: unordered); NULL on other endpoints,
-- so their deliveries never enter the indexes below.
ALTER TABLE message ADD COLUMN ordering_key TEXT;
ALTER TABLE delivery ADD COLUMN ordering_key TEXT;
-- The claim walks the keys of an endpoint that have pending deliveries (one seek per key) and takes each key's oldest;
-- next_attempt_at is carried so that the head's due time needs no table read.
CREATE INDEX delivery_key_pending ON delivery (endpoint_id, ordering_key, id, next_attempt_at) WHERE status = 'pending' AND ordering_key IS NOT NULL;
-- `ordering_on_park = 'hold'`: is an older message of the key parked?
CREATE INDEX delivery_key_failed ON delivery (endpoint_id, ordering_key, id) WHERE status = 'failed' AND ordering_key IS NOT NULL;
