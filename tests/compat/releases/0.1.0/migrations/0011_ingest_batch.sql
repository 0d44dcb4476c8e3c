-- TenRusl schema, version 11: group commit for webhook ingest.
--
-- tenrusl_ingest_event stores and applies one delivery per call. Under load most of a
-- delivery's database cost was that call's fixed part (a plpgsql function running five
-- statements, each planned and executed on its own, and its commit), about seven times an
-- ordinary single-row INSERT (docs/PERFORMANCE.md, "Receiver ingest"). tenrusl_ingest_events
-- does the same for a batch of deliveries with a few set-based statements, in one transaction:
-- the receiver coalesces the deliveries that arrive while earlier batches are in flight
-- (tenrusl/store/batch.py) and answers each with 202 only after this call has committed.
--
-- Per delivery the outcome is the one tenrusl_ingest_event gives it:
--   * already stored (same provider and event id): a duplicate, its delivery counted;
--   * new: its payment applied (pending -> the notified status), then stored processed, failed
--     (retry due after p_retry_delay_ms) or dead (when p_max_attempts <= 1);
--   * stored meanwhile by a concurrent call (ON CONFLICT): a duplicate, as in the single call.
-- The caller puts at most one delivery per (provider, event id) in a batch; deliveries naming one
-- payment are applied in batch order, so each result is what the deliveries one after the other
-- would have given.
--
-- p_payload_issues: each delivery's issue codes joined with commas ('' for none); the codes
-- are identifiers (tenrusl/storable.py). The single-delivery function stays: the receiver still
-- uses it with TENRUSL_INGEST_BATCH_MAX=1, and a receiver of the previous version calls it
-- during a rolling upgrade.

CREATE FUNCTION tenrusl_ingest_events(
    p_id text[], p_provider text[], p_event_id text[], p_event_id_source text[], p_event_type text[],
    p_payment_status text[], p_ref text[], p_payload_raw bytea[], p_payload jsonb[],
    p_headers jsonb[], p_source_ip text[], p_request_id text[], p_signature_hash text[],
    p_payload_issues text[], p_retry_delay_ms bigint, p_max_attempts integer
) RETURNS TABLE (
    n bigint, id text, duplicate boolean, status text, attempts integer, payment_status text,
    payment_provider_ref text, current_payment_status text, next_retry_at timestamptz,
    last_error text
)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_dead boolean := p_max_attempts <= 1;
BEGIN
    -- New deliveries: apply their payments, then store them (one statement, one snapshot).
    RETURN QUERY
    WITH input AS (
        SELECT *
          FROM unnest(p_id, p_provider, p_event_id, p_event_id_source, p_event_type, p_payment_status,
                      p_ref, p_payload_raw, p_payload, p_headers, p_source_ip, p_request_id,
                      p_signature_hash, p_payload_issues)
               WITH ORDINALITY
               AS i(id, provider, event_id, event_id_source, event_type, payment_status, ref,
                    payload_raw, payload, headers, source_ip, request_id, signature_hash, issues, n)
    ), fresh AS (
        SELECT i.* FROM input i
         WHERE NOT EXISTS (SELECT 1 FROM webhook_events e
                            WHERE e.provider = i.provider AND e.event_id = i.event_id)
    ), applied AS (
        -- Per payment, the first delivery (in batch order) that moves it on from pending, as
        -- when they arrive one after the other: the later ones find it no longer pending.
        UPDATE payments AS p SET status = f.payment_status, updated_at = now()
          FROM (SELECT DISTINCT ON (provider, ref) provider, ref, payment_status, n
                  FROM fresh
                 WHERE ref IS NOT NULL AND payment_status <> 'pending'
                 ORDER BY provider, ref, n) f
         WHERE p.provider = f.provider AND p.provider_ref = f.ref AND p.status = 'pending'
        RETURNING f.provider, f.ref, f.n, p.status
    ), decided AS (
        -- What each delivery would have read: the new status from the applying delivery on,
        -- the status before it for the deliveries ahead of it.
        SELECT f.*, CASE WHEN f.n >= a.n THEN a.status ELSE p.status END AS payment
          FROM fresh f
          LEFT JOIN applied a ON a.provider = f.provider AND a.ref = f.ref
          LEFT JOIN payments p ON f.ref IS NOT NULL AND p.provider = f.provider AND p.provider_ref = f.ref
    ), reasoned AS (
        SELECT d.*,
               CASE WHEN d.payment IS NULL THEN
                   CASE WHEN d.ref IS NULL THEN 'payment reference not found in payload'
                        ELSE 'payment not found' END
                   || CASE WHEN v_dead THEN ' (max attempts ' || p_max_attempts || ' reached)' ELSE '' END
               END AS reason
          FROM decided d
    ), stored AS (
        INSERT INTO webhook_events AS e (
            id, provider, event_id, event_id_source, event_type, status, payment_status,
            payment_provider_ref, attempts, last_attempt_at, processed_at, next_retry_at, last_error,
            payload_raw, payload, headers, source_ip, request_id, signature_hash, payload_issues)
        SELECT r.id, r.provider, r.event_id, r.event_id_source, r.event_type,
               CASE WHEN r.payment IS NOT NULL THEN 'processed' WHEN v_dead THEN 'dead' ELSE 'failed' END,
               r.payment_status, r.ref, 1, now(),
               CASE WHEN r.payment IS NOT NULL THEN now() END,
               CASE WHEN r.payment IS NULL AND NOT v_dead
                    THEN now() + make_interval(secs => p_retry_delay_ms / 1000.0) END,
               r.reason, r.payload_raw, r.payload, r.headers, r.source_ip, r.request_id,
               r.signature_hash, string_to_array(coalesce(r.issues, ''), ',')
          FROM reasoned r
         ORDER BY r.n
        ON CONFLICT (provider, event_id) DO NOTHING
        RETURNING e.id, e.status, e.next_retry_at
    )
    SELECT r.n, s.id, false, s.status, 1, r.payment_status, r.ref, r.payment, s.next_retry_at, r.reason
      FROM stored s JOIN reasoned r ON r.id = s.id;

    -- Every other delivery is a duplicate. A new statement takes a new snapshot, so a row a
    -- concurrent call stored meanwhile (the ON CONFLICT above waited for its commit) is seen.
    RETURN QUERY
    WITH input AS (
        SELECT * FROM unnest(p_id, p_provider, p_event_id) WITH ORDINALITY AS i(id, provider, event_id, n)
    ), counted AS (
        UPDATE webhook_events AS e
           SET deliveries = e.deliveries + 1, last_delivery_at = now()
          FROM input i
         WHERE e.provider = i.provider AND e.event_id = i.event_id AND e.id <> i.id
        RETURNING i.n, e.id, e.status, e.attempts, e.payment_status, e.payment_provider_ref,
                  e.provider, e.next_retry_at, e.last_error
    )
    SELECT c.n, c.id, true, c.status, c.attempts, c.payment_status, c.payment_provider_ref,
           p.status, c.next_retry_at, c.last_error
      FROM counted c
      LEFT JOIN payments p ON p.provider = c.provider AND p.provider_ref = c.payment_provider_ref;
END;
$$;
