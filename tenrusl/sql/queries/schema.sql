-- Schema state, for readiness.

-- name: schema_version
-- The newest applied migration (readiness compares it with the code's newest).
SELECT max(version) AS version FROM schema_migrations
