-- Opt-in validation of API messages against their event type's latest JSON Schema (src/pipeline/payload-schemas.ts).
ALTER TABLE event_type ADD COLUMN validate_payloads boolean NOT NULL DEFAULT false;
