-- Ordering keys (docs/api.md): a message may carry an `orderingKey`; an endpoint with `ordering = 'key'` delivers the
-- messages of one key one at a time, in accept order, and different keys in parallel. `ordering_on_park` says whether
-- a parked message lets its key go on (`skip`) or holds it until it is resent or recovered (`hold`).
ALTER TABLE endpoint DROP CONSTRAINT endpoint_ordering_check;
ALTER TABLE endpoint ADD CONSTRAINT endpoint_ordering_check CHECK (ordering IN ('parallel', 'fifo', 'key'));
ALTER TABLE endpoint ADD COLUMN ordering_on_park text NOT NULL DEFAULT 'skip' CHECK (ordering_on_park IN ('skip', 'hold'));

-- The message's key as sent (NULL: none). A delivery to an `ordering = 'key'` endpoint carries the key it is ordered
-- under: the message's, or for a message without one its own id (its own key: unordered); NULL on other endpoints,
-- so their deliveries never enter the indexes below.
ALTER TABLE message ADD COLUMN ordering_key text COLLATE "C";
ALTER TABLE delivery ADD COLUMN ordering_key text COLLATE "C";
-- The claim walks the keys of an endpoint that have pending deliveries (one seek per key) and takes each key's oldest.
CREATE INDEX delivery_key_pending ON delivery (endpoint_id, ordering_key, id) INCLUDE (next_attempt_at) WHERE status = 'pending' AND ordering_key IS NOT NULL;
-- `ordering_on_park = 'hold'`: is an older message of the key parked?
CREATE INDEX delivery_key_failed ON delivery (endpoint_id, ordering_key, id) WHERE status = 'failed' AND ordering_key IS NOT NULL;
-- Which keys of an endpoint are in flight.
CREATE INDEX delivery_key_in_flight ON delivery (endpoint_id, ordering_key) WHERE status = 'in_flight' AND ordering_key IS NOT NULL;
