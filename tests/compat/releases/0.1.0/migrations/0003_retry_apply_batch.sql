-- TenRusl schema, version 3: settle a whole claimed batch in one round trip.
--
-- The runner used to call tenrusl_retry_apply once per event, one round trip and one commit
-- each; on this machine that capped a drain at the speed of the client's round trips. This
-- function applies every event of a batch (same rules: tenrusl_apply_event) in one statement
-- and returns each event's state. A failure rolls the whole batch back; its events are still
-- leased (`processing`) and come back when the lease ends, so nothing is lost.
CREATE FUNCTION tenrusl_retry_apply_batch(
    p_ids text[], p_payment_statuses text[], p_refs text[], p_retry_delays_ms bigint[],
    p_max_attempts integer
) RETURNS TABLE (
    id text, payment_status text, status text, attempts integer, next_retry_at timestamptz,
    last_error text
)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    i integer;
    v_payment text;
BEGIN
    FOR i IN 1 .. coalesce(array_length(p_ids, 1), 0) LOOP
        v_payment := tenrusl_apply_event(p_ids[i], p_payment_statuses[i], p_refs[i],
                                         p_retry_delays_ms[i], p_max_attempts);
        RETURN QUERY
            SELECT e.id, v_payment, e.status, e.attempts, e.next_retry_at, e.last_error
              FROM webhook_events e WHERE e.id = p_ids[i];
    END LOOP;
END;
$$;
