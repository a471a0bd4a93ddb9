-- One process owns an SQLite file, so its leases are kept in memory (src/store/sqlite/leases.ts): a claimed delivery
-- stays 'pending' in the table until its outcome is written. Nothing is in flight at start (no process holds the file
-- yet): deliveries a stopped process had leased are pending again, as they were at every start before. The index of
-- leased deliveries has nothing left to serve. The leased_by and lease_until columns stay (PostgreSQL's rows have them
-- too) and are always null.
UPDATE delivery SET status = 'pending', leased_by = NULL, lease_until = NULL WHERE status = 'in_flight';
DROP INDEX IF EXISTS delivery_in_flight;
