-- Public keys an endpoint's owner registered for payload encryption (src/pipeline/encryption.ts, docs/api.md): a JSON
-- array of { kid, alg, jwk, createdAt }, oldest first; deliveries are encrypted to the newest. Public keys only, so
-- not sealed. A constant default: adding the column rewrites no rows.
ALTER TABLE endpoint ADD COLUMN encryption_keys jsonb NOT NULL DEFAULT '[]';
