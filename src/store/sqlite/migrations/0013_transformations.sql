-- Endpoint transformations (src/transform/, docs/routing.md): {"code", "enabled", "updatedAt"} as JSON text, NULL
-- when never set. Read with the endpoint at claim; nothing here is queried by content.
ALTER TABLE endpoint ADD COLUMN transformation TEXT;
