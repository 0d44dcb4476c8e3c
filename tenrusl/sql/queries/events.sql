-- Webhook events: ingest (store and apply), read.

-- name: ingest_event
-- Store a verified webhook and apply it in one round trip (see tenrusl_ingest_event in 0006).
SELECT * FROM tenrusl_ingest_event(
    %(id)s, %(provider)s, %(event_id)s, %(event_id_source)s, %(event_type)s, %(payment_status)s,
    %(payment_ref)s, %(payload_raw)s, %(payload)s, %(headers)s, %(source_ip)s, %(request_id)s,
    %(signature_hash)s, %(retry_delay_ms)s, %(max_attempts)s, %(payload_issues)s)

-- name: ingest_events
-- Store and apply a batch of verified webhooks in one statement and one commit (group commit:
-- tenrusl_ingest_events in 0011, tenrusl/store/batch.py). Parameters are arrays, one element per
-- delivery; each result row names its delivery by ``n``, its 1-based position.
SELECT * FROM tenrusl_ingest_events(
    %(id)s::text[], %(provider)s::text[], %(event_id)s::text[], %(event_id_source)s::text[],
    %(event_type)s::text[], %(payment_status)s::text[], %(payment_ref)s::text[],
    %(payload_raw)s::bytea[], %(payload)s::jsonb[], %(headers)s::jsonb[], %(source_ip)s::text[],
    %(request_id)s::text[], %(signature_hash)s::text[], %(payload_issues)s::text[],
    %(retry_delay_ms)s, %(max_attempts)s)

-- name: get_event
-- One webhook event by id.
SELECT * FROM webhook_events WHERE id = %(id)s
