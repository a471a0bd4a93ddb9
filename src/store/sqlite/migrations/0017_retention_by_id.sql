-- Retention walks the messages by id (an id begins with its message's creation time) rather than by an index on
-- created_at: one index fewer written by every accept, the hot path. `retention_cursor` is where the walk has got to;
-- a message it passed while unfinished deliveries still needed its payload waits in `retention_held` until they end.
-- The walk starts at the oldest message that still has its payload and no delivery pending or in flight (found with the
-- old index, before it goes): before it, every message was expunged already, or is one that the old pruning kept for
-- an unfinished delivery (an endpoint disabled for months), and those are held. A walk through them all would hold up
-- retention on a large database.
CREATE TABLE retention_cursor (
  id          INTEGER PRIMARY KEY CHECK (id = 1),
  message_id  TEXT NOT NULL
);
INSERT INTO retention_cursor (id, message_id) VALUES (1, coalesce(substr(coalesce(
  (SELECT m.id FROM message m INDEXED BY message_retention WHERE m.payload IS NOT NULL
     AND NOT EXISTS (SELECT 1 FROM delivery d WHERE d.message_id = m.id AND d.status IN ('pending', 'in_flight'))
   ORDER BY m.created_at, m.id LIMIT 1),
  (SELECT max(id) FROM message)
), 1, 12), ''));
CREATE TABLE retention_held (
  message_id  TEXT PRIMARY KEY
) WITHOUT ROWID;
INSERT INTO retention_held (message_id)
  SELECT id FROM message INDEXED BY message_retention WHERE payload IS NOT NULL AND id < (SELECT message_id FROM retention_cursor);
DROP INDEX message_retention;
