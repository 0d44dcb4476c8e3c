-- Schema state, for readiness.

-- name: schema_version
-- The newest applied migration (readiness compares it with the code's newest).
SELECT max(version) AS version FROM schema_migrations

-- name: migration_lock
-- Wait for the migration lock (concurrent `tenrusl migrate` runs apply each file once).
SELECT pg_advisory_lock(%(key)s)

-- name: migration_unlock
-- Release the migration lock.
SELECT pg_advisory_unlock(%(key)s)

-- name: applied_migrations
-- The versions already recorded.
SELECT version FROM schema_migrations

-- name: record_migration
-- Record one applied version (in the migration's own transaction).
INSERT INTO schema_migrations (version) VALUES (%(version)s)

-- name: try_retry_run_lock
-- The retry run lock when Redis is unavailable: held by this session until it ends.
SELECT pg_try_advisory_lock(%(key)s) AS taken
