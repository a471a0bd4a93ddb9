-- Endpoints that are not plain HTTP URLs (Temporal workflows, …) keep their destination settings here.
-- NULL means an HTTP endpoint, delivered to `url`.
ALTER TABLE endpoint ADD COLUMN destination jsonb;
