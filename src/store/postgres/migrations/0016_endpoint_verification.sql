-- Endpoint registration handshake (docs/api.md#registration-handshake). `verification_mode` is what the endpoint asked
-- for ('none' or 'challenge'); `verification_state` is 'verified' (also for 'none'), 'pending' or 'failed', and only a
-- 'verified' endpoint's deliveries are claimed. The lease columns let one process at a time run a handshake.
ALTER TABLE endpoint ADD COLUMN verification_mode text NOT NULL DEFAULT 'none';
ALTER TABLE endpoint ADD COLUMN verification_state text NOT NULL DEFAULT 'verified';
ALTER TABLE endpoint ADD COLUMN verification_attempts integer NOT NULL DEFAULT 0;
ALTER TABLE endpoint ADD COLUMN verification_last_at bigint;
ALTER TABLE endpoint ADD COLUMN verification_next_at bigint;
ALTER TABLE endpoint ADD COLUMN verification_reason text;
ALTER TABLE endpoint ADD COLUMN verification_leased_by text;
ALTER TABLE endpoint ADD COLUMN verification_lease_until bigint;
-- The handshake runner's poll reads pending endpoints only.
CREATE INDEX endpoint_verification_due ON endpoint (verification_next_at) WHERE verification_state = 'pending';
