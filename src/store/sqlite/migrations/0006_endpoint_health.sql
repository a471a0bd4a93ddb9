-- Endpoint health (circuit breaker, auto-disable) and the rate limit's next free slot, kept in the endpoint's row so
-- that they survive restarts; see src/domain/health.ts and src/domain/rate.ts.
ALTER TABLE endpoint ADD COLUMN failure_streak INTEGER NOT NULL DEFAULT 0;
ALTER TABLE endpoint ADD COLUMN failing_since INTEGER;
ALTER TABLE endpoint ADD COLUMN parked_streak INTEGER NOT NULL DEFAULT 0;
ALTER TABLE endpoint ADD COLUMN circuit_open_until INTEGER;
ALTER TABLE endpoint ADD COLUMN circuit_trips INTEGER NOT NULL DEFAULT 0;
ALTER TABLE endpoint ADD COLUMN next_send_at INTEGER;
