-- TenRusl schema, version 5: the runner settles single events through the batch function too
-- (a batch of one), so the per-event function of version 2 has no caller left.
DROP FUNCTION tenrusl_retry_apply(text, text, text, bigint, integer);
