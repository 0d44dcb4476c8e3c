-- TenRusl schema, version 2: the retry runner's settle step.
--
-- tenrusl_apply_event (0001) reports only the payment's status; the runner also needs the
-- event's state afterwards (processed / failed / dead) to count OK, FAIL and DEAD. Doing the
-- read inside the function gives it in the same round trip: a later statement in a plpgsql
-- function sees the changes of an earlier one, which a sub-select in the caller's statement
-- would not (it runs on the statement's snapshot).
CREATE FUNCTION tenrusl_retry_apply(
    p_id text, p_payment_status text, p_ref text, p_retry_delay_ms bigint, p_max_attempts integer
) RETURNS TABLE (
    payment_status text, status text, attempts integer, next_retry_at timestamptz, last_error text
)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_payment text;
BEGIN
    v_payment := tenrusl_apply_event(p_id, p_payment_status, p_ref, p_retry_delay_ms, p_max_attempts);
    RETURN QUERY
        SELECT v_payment, e.status, e.attempts, e.next_retry_at, e.last_error
          FROM webhook_events e WHERE e.id = p_id;
END;
$$;
