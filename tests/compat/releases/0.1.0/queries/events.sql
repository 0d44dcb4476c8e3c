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
-- delivery, sent in binary (``%%(x)b``: no per-element quoting and escaping, which in text form cost
-- about a fifth of the receiver's CPU); each result row names its delivery by ``n``, its
-- 1-based position.
SELECT * FROM tenrusl_ingest_events(
    %(id)b::text[], %(provider)b::text[], %(event_id)b::text[], %(event_id_source)b::text[],
    %(event_type)b::text[], %(payment_status)b::text[], %(payment_ref)b::text[],
    %(payload_raw)b::bytea[], %(payload)b::jsonb[], %(headers)b::jsonb[], %(source_ip)b::text[],
    %(request_id)b::text[], %(signature_hash)b::text[], %(payload_issues)b::text[],
    %(retry_delay_ms)s, %(max_attempts)s)

-- name: get_event
-- One webhook event by id.
SELECT * FROM webhook_events WHERE id = %(id)s
