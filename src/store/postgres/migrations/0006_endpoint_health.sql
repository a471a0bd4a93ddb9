-- Endpoint health (circuit breaker, auto-disable) and the rate limit's next free slot, kept in the endpoint's row so
-- that every process sees them; see src/domain/health.ts and src/domain/rate.ts. None of them is indexed, so their
-- frequent updates stay HOT (no index writes).
ALTER TABLE endpoint
  ADD COLUMN failure_streak integer NOT NULL DEFAULT 0,
  ADD COLUMN failing_since bigint,
  ADD COLUMN parked_streak integer NOT NULL DEFAULT 0,
  ADD COLUMN circuit_open_until bigint,
  ADD COLUMN circuit_trips integer NOT NULL DEFAULT 0,
  ADD COLUMN next_send_at bigint;
