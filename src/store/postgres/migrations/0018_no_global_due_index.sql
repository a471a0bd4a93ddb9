-- Every due-time lookup goes endpoint by endpoint (the claim's walk, the poll timer's next due time, the metrics), through
-- delivery_pending; nothing reads the pending deliveries by due time alone. The index only cost each accepted delivery,
-- and each retry, one more b-tree insert (the SQLite schema never had it).
DROP INDEX delivery_pending_due;
