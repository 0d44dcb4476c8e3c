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

-- name: compatibility_table_present
-- Whether the schema records the oldest code it serves (migration 0013 and later).
SELECT to_regclass('tenrusl_compatibility') IS NOT NULL AS present

-- name: oldest_code_version
-- The oldest TenRusl version this schema still serves (tenrusl/compat.py compares it with ours).
SELECT oldest_code_version, set_by FROM tenrusl_compatibility

-- name: migration_statement_timeout
-- The migration session's statement timeout ('0ms': none, so DDL on a big table is never cut off).
SELECT set_config('statement_timeout', %(ms)s, false)

-- name: migration_lock_timeout
-- How long one migration's transaction waits for a lock before it gives up and tries again later.
SELECT set_config('lock_timeout', %(ms)s, true)
