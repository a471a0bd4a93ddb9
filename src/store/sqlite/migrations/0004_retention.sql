-- Retention (--retention): payloads of finished messages, attempts and expired idempotency records older than the
-- retention period are pruned in small batches, oldest first. Each index shrinks as pruning goes.
CREATE INDEX message_retention ON message (created_at, id) WHERE payload IS NOT NULL;
CREATE INDEX attempt_started ON attempt (started_at);
CREATE INDEX idempotency_key_expiry ON idempotency_key (expires_at);
CREATE INDEX idempotent_response_expiry ON idempotent_response (expires_at);
