-- Webhook events: ingest (store and apply), read.

-- name: ingest_event
-- Store a verified webhook and apply it in one round trip (see tenrusl_ingest_event in 0006).
SELECT * FROM tenrusl_ingest_event(
    %(id)s, %(provider)s, %(event_id)s, %(event_id_source)s, %(event_type)s, %(payment_status)s,
    %(payment_ref)s, %(payload_raw)s, %(payload)s, %(headers)s, %(source_ip)s, %(request_id)s,
    %(signature_hash)s, %(retry_delay_ms)s, %(max_attempts)s, %(payload_issues)s)

-- name: get_event
-- One webhook event by id.
SELECT * FROM webhook_events WHERE id = %(id)s
