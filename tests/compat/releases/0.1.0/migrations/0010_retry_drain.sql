-- TenRusl schema, version 10: a retry drain that re-reads a payload only when it has to.
--
-- The receiver reads each event's payment status and reference with the provider rules of
-- tenrusl/providers/ and stores them (payment_status, payment_provider_ref). A retry used to
-- re-read them from the stored jsonb payload every time: the claim returned each row's whole
-- payload and the runner parsed it again, about a quarter of a claim's time
-- (docs/PERFORMANCE.md, "Retry drain and claim latency"). Now each row also records which
-- rules wrote those two columns: `extracted_with`, a fingerprint of tenrusl/providers/
-- (tenrusl.providers.rules_fingerprint). The claim returns the payload only when that is not
-- the runner's own fingerprint, so an event stored before a provider rule changed is still
-- read again with the current rules; NULL (rows from before this version, or written by
-- anything else) never matches.
--
-- The receiver does not pass the fingerprint: every TenRusl connection sets
-- `tenrusl.extraction_rules` (tenrusl/db.py), and the column's default reads it, so the
-- ingest function stays as it is. The default is set after the column is added, so rows
-- that exist already stay NULL (a default given in ADD COLUMN would be stamped on them).
ALTER TABLE webhook_events ADD COLUMN extracted_with text;
ALTER TABLE webhook_events
    ALTER COLUMN extracted_with SET DEFAULT nullif(current_setting('tenrusl.extraction_rules', true), '');

-- The runner settles a batch with one set-based statement (retry.sql, retry_apply_batch)
-- instead of a plpgsql loop over tenrusl_apply_event; neither function has a caller left.
DROP FUNCTION tenrusl_retry_apply_batch(text[], text[], text[], bigint[], integer);
DROP FUNCTION tenrusl_apply_event(text, text, text, bigint, integer);
