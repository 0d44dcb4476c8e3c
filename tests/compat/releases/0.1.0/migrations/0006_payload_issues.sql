-- TenRusl schema, version 6: a verified webhook is stored whatever its content.
--
-- PostgreSQL's jsonb refuses NUL, unpaired surrogates, NaN and Infinity, all of which a signed
-- JSON body can carry. The receiver now stores such a payload repaired (tenrusl/storable.py:
-- U+FFFD for NUL and lone surrogates, the number's text for NaN/Infinity/overflow); the exact
-- bytes stay in payload_raw, and payload_issues lists the repairs, so an operator can find and
-- review the event (admin list `needs_review=true`). Empty for every ordinary event.

ALTER TABLE webhook_events ADD COLUMN payload_issues text[] NOT NULL DEFAULT '{}';

-- The ingest function takes the issues as a new last parameter with a default, so a receiver of
-- the previous version (still serving during a rolling upgrade) keeps calling it unchanged.
DROP FUNCTION tenrusl_ingest_event(
    text, text, text, text, text, text, text, bytea, jsonb, jsonb, text, text, text, bigint, integer);

CREATE FUNCTION tenrusl_ingest_event(
    p_id text, p_provider text, p_event_id text, p_event_id_source text, p_event_type text,
    p_payment_status text, p_ref text, p_payload_raw bytea, p_payload jsonb, p_headers jsonb,
    p_source_ip text, p_request_id text, p_signature_hash text,
    p_retry_delay_ms bigint, p_max_attempts integer, p_payload_issues text[] DEFAULT '{}'
) RETURNS TABLE (
    id text, duplicate boolean, status text, attempts integer, payment_status text,
    payment_provider_ref text, current_payment_status text, next_retry_at timestamptz,
    last_error text
)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_id      text;
    v_payment text;
    v_reason  text;
    v_status  text;
    v_next    timestamptz;
    v_dead    boolean := p_max_attempts <= 1;
BEGIN
    SELECT e.id INTO v_id FROM webhook_events e WHERE e.provider = p_provider AND e.event_id = p_event_id;
    IF v_id IS NULL THEN
        v_payment := tenrusl_apply_payment(p_provider, p_ref, p_payment_status);
        IF v_payment IS NULL THEN
            v_reason := CASE WHEN p_ref IS NULL THEN 'payment reference not found in payload'
                             ELSE 'payment not found' END
                        || CASE WHEN v_dead THEN ' (max attempts ' || p_max_attempts || ' reached)'
                                ELSE '' END;
        END IF;
        INSERT INTO webhook_events AS e (
            id, provider, event_id, event_id_source, event_type, status, payment_status,
            payment_provider_ref, attempts, last_attempt_at, processed_at, next_retry_at, last_error,
            payload_raw, payload, headers, source_ip, request_id, signature_hash, payload_issues)
        VALUES (
            p_id, p_provider, p_event_id, p_event_id_source, p_event_type,
            CASE WHEN v_payment IS NOT NULL THEN 'processed' WHEN v_dead THEN 'dead' ELSE 'failed' END,
            p_payment_status, p_ref, 1, now(),
            CASE WHEN v_payment IS NOT NULL THEN now() END,
            CASE WHEN v_payment IS NULL AND NOT v_dead
                 THEN now() + make_interval(secs => p_retry_delay_ms / 1000.0) END,
            v_reason, p_payload_raw, p_payload, p_headers, p_source_ip, p_request_id, p_signature_hash,
            coalesce(p_payload_issues, '{}'))
        ON CONFLICT (provider, event_id) DO NOTHING
        RETURNING e.id, e.status, e.next_retry_at INTO v_id, v_status, v_next;
        IF v_id IS NOT NULL THEN
            RETURN QUERY SELECT v_id, false, v_status, 1, p_payment_status, p_ref, v_payment, v_next, v_reason;
            RETURN;
        END IF;
    END IF;

    -- A duplicate: count the delivery, report the stored state.
    UPDATE webhook_events AS e
       SET deliveries = e.deliveries + 1, last_delivery_at = now()
     WHERE e.provider = p_provider AND e.event_id = p_event_id
    RETURNING e.id INTO v_id;
    RETURN QUERY
        SELECT e.id, true, e.status, e.attempts, e.payment_status, e.payment_provider_ref,
               p.status, e.next_retry_at, e.last_error
          FROM webhook_events e
          LEFT JOIN payments p ON p.provider = e.provider AND p.provider_ref = e.payment_provider_ref
         WHERE e.id = v_id;
END;
$$;
