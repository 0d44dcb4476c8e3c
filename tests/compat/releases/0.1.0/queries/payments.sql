-- Payments and their Idempotency-Key records.

-- name: insert_payment
-- Create a simulated payment (status pending).
INSERT INTO payments (id, provider, provider_ref, amount, currency, description, metadata, status,
                      idempotency_key, idempotency_request_hash)
VALUES (%(id)s, %(provider)s, %(provider_ref)s, %(amount)s, %(currency)s, %(description)s,
        %(metadata)s, 'pending', %(idempotency_key)s, %(request_hash)s)
RETURNING *

-- name: get_payment
-- One payment by id.
SELECT * FROM payments WHERE id = %(id)s

-- name: get_payment_by_ref
-- One payment by the provider's reference.
SELECT * FROM payments WHERE provider = %(provider)s AND provider_ref = %(provider_ref)s

-- name: list_payment_events
-- The webhook events that named a payment, newest first.
SELECT id, provider, event_id, event_type, status, payment_status, attempts, deliveries,
       received_at, processed_at, next_retry_at, last_error, payload_issues
  FROM webhook_events
 WHERE provider = %(provider)s AND payment_provider_ref = %(provider_ref)s
 ORDER BY received_at DESC
 LIMIT 100

-- name: list_payments
-- Admin list: every filter is optional (NULL means "any"); newest first, one page, and the total
-- of every matching row in the same round trip. The page is joined to the total, so a page past
-- the last still returns one row (its payment columns NULL) that carries the total.
WITH matching AS NOT MATERIALIZED (
    SELECT p.*
      FROM payments p
     WHERE (%(provider)s::text IS NULL OR p.provider = %(provider)s)
       AND (%(status)s::text IS NULL OR p.status = %(status)s)
       AND (%(q)s::text IS NULL OR p.id ILIKE '%%' || %(q)s || '%%' OR p.provider_ref ILIKE '%%' || %(q)s || '%%')
       AND (%(created_from)s::timestamptz IS NULL OR p.created_at >= %(created_from)s)
       AND (%(created_to)s::timestamptz IS NULL OR p.created_at < %(created_to)s)
), page AS (
    SELECT * FROM matching ORDER BY created_at DESC, id DESC LIMIT %(limit)s OFFSET %(offset)s
)
SELECT page.*, counted.total
  FROM (SELECT count(*) AS total FROM matching) counted
  LEFT JOIN page ON true
 ORDER BY page.created_at DESC, page.id DESC

-- name: claim_idempotency_key
-- Take a key for this request: a new key, an expired one, or an in-flight lock whose holder
-- died (locked_until passed) is (re)taken and returned; a live key returns no row.
INSERT INTO idempotency_keys AS k (key, request_hash, state, locked_until, expires_at)
VALUES (%(key)s, %(request_hash)s, 'in_flight',
        now() + make_interval(secs => %(lock_seconds)s), now() + make_interval(secs => %(ttl_seconds)s))
ON CONFLICT (key) DO UPDATE
   SET request_hash = EXCLUDED.request_hash, state = 'in_flight', response_status = NULL,
       response_body = NULL, locked_until = EXCLUDED.locked_until, created_at = now(),
       expires_at = EXCLUDED.expires_at
 WHERE k.expires_at <= now() OR (k.state = 'in_flight' AND k.locked_until <= now())
RETURNING key

-- name: get_idempotency_key
-- The live record of a key that another request holds or completed.
SELECT key, request_hash, state, response_status, response_body
  FROM idempotency_keys WHERE key = %(key)s AND expires_at > now()

-- name: complete_idempotency_key
-- Store the response to replay for this key.
UPDATE idempotency_keys
   SET state = 'done', response_status = %(status)s, response_body = %(body)s
 WHERE key = %(key)s

-- name: release_idempotency_key
-- Forget an in-flight key whose request failed, so the client may retry with it.
DELETE FROM idempotency_keys WHERE key = %(key)s AND state = 'in_flight'

-- name: purge_idempotency_keys
-- Drop at most %(limit)s expired keys, oldest first (idempotency_keys_expires_idx); every retry
-- run does this, so the table holds about a day of keys instead of growing for ever. Expired keys
-- are already ignored by get_idempotency_key; a key a request is re-taking right now is locked,
-- so it is skipped and left to that request.
WITH expired AS (
    SELECT key
      FROM idempotency_keys
     WHERE expires_at <= now()
     ORDER BY expires_at
     LIMIT %(limit)s
       FOR UPDATE SKIP LOCKED
)
DELETE FROM idempotency_keys k USING expired e WHERE k.key = e.key
