-- A delivery's status changes twice on its way (pending → in_flight at the claim, in_flight → succeeded at its outcome),
-- and with `status` in this index each change deleted and inserted an entry: four of the fifteen b-tree writes of a
-- delivery's claim and outcome. Without it the index changes only when a delivery is made. The endpoint's deliveries
-- listed by message still walk it in order, filtering on the row; the failed ones, few and asked for by the recover operation
-- and the dashboard's filter, get a partial index of their own, which a succeeded delivery never enters.
DROP INDEX delivery_endpoint;
CREATE INDEX delivery_endpoint ON delivery (endpoint_id, message_id);
CREATE INDEX delivery_failed ON delivery (endpoint_id, message_id) WHERE status = 'failed';
