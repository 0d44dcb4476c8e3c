-- The retry runner: claim, settle, dead-letter, replay, run records, and the admin views of
-- webhook events. Statuses are tenrusl/constants.py's; the retryable ones are exactly the
-- predicate of the partial index webhook_events_due_idx (0001).

-- name: claim_due_events
-- Claim one batch of due events in one statement (docs/retry.md, "The claim"). Each claimed row becomes
-- `processing` with attempts + 1 and a lease: next_retry_at = now() + lease. A runner that dies
-- holding rows needs no clean-up: when the lease runs out the row is due again and the next
-- run claims it (that is why `processing` is in the candidate predicate).
WITH candidate AS MATERIALIZED (
    -- Due and retryable. The status list and `next_retry_at <= now()` match the partial index
    -- webhook_events_due_idx exactly, and the order is the index's own, so the scan walks only
    -- retryable rows in due order and stops after `limit` of them: its cost is the batch's, not
    -- the backlog's nor the history's, whatever the statistics say (a test guards the plan; an
    -- `ORDER BY next_retry_at, id` needed a sort, and misestimated statistics made that a sort of
    -- every due row: docs/PERFORMANCE.md).
    SELECT e.id, e.status AS prev_status, e.next_retry_at AS due_at, e.last_attempt_at AS prev_attempt_at,
           -- Whether the payment fields stored with the event are still current (see RETURNING).
           (e.extracted_with = %(rules)s AND e.payment_status IS NOT NULL
              AND NOT 'extraction_failed' = ANY (e.payload_issues)) IS TRUE AS fields_current
      FROM webhook_events e
     WHERE e.status IN ('received', 'processing', 'failed')
       AND e.next_retry_at <= now()
       AND (%(providers)s::text[] IS NULL OR e.provider = ANY (%(providers)s::text[]))
     ORDER BY e.next_retry_at
     LIMIT %(limit)s
     -- Rows another runner has locked are skipped, never waited for: two runners at once
     -- never claim the same row, and neither blocks the other.
       FOR UPDATE OF e SKIP LOCKED
)
UPDATE webhook_events w
       -- An event that already made its last attempt (its runner died after claiming it, or
       -- maxAttempts was lowered) is dead-lettered here instead of being processed again.
   SET status          = CASE WHEN w.attempts >= %(max_attempts)s THEN 'dead' ELSE 'processing' END,
       attempts        = CASE WHEN w.attempts >= %(max_attempts)s THEN w.attempts ELSE w.attempts + 1 END,
       next_retry_at   = CASE WHEN w.attempts >= %(max_attempts)s THEN NULL
                              ELSE now() + make_interval(secs => %(lease_seconds)s) END,
       last_error      = CASE WHEN w.attempts >= %(max_attempts)s
                              THEN left(coalesce(w.last_error || '; ', '') || 'max attempts '
                                        || %(max_attempts)s || ' reached', 2000)
                              ELSE w.last_error END,
       last_attempt_at = CASE WHEN w.attempts >= %(max_attempts)s THEN w.last_attempt_at ELSE now() END,
       updated_at      = now()
  FROM candidate c
       -- The claimed ids as an array: the rows are found through the primary key even in a
       -- generic (prepared) plan, which cannot know the limit and would otherwise hash-join
       -- the batch against a scan of the whole table.
 WHERE w.id = ANY (ARRAY(SELECT id FROM candidate)) AND w.id = c.id
RETURNING w.id, w.provider, w.event_id, w.status, w.attempts, w.last_error,
          c.prev_status, c.due_at, c.prev_attempt_at,
          -- What the receiver (or the last attempt) read from the payload, and whether the
          -- runner's own rules read it (migration 0010) without raising (the receiver then
          -- stores `extraction_failed` in payload_issues: receiver/webhooks.py). Only when not is
          -- the payload itself returned, to be read again: most events never send it.
          w.payment_status, w.payment_provider_ref AS payment_ref, c.fields_current,
          CASE WHEN c.fields_current THEN NULL ELSE w.payload END AS payload

-- name: claim_event
-- Claim one event by id (`tenrusl retry one`). Without force it must be due and retryable,
-- exactly like a batch claim; with force it is claimed even when not due, leased by another
-- run, or dead, and its attempts may go past max_attempts (one extra attempt per force).
-- A processed event is never claimed. Returns what claim_due_events returns.
WITH candidate AS (
    SELECT e.id, e.status AS prev_status, e.next_retry_at AS due_at, e.last_attempt_at AS prev_attempt_at,
           -- Whether the payment fields stored with the event are still current (see RETURNING).
           (e.extracted_with = %(rules)s AND e.payment_status IS NOT NULL
              AND NOT 'extraction_failed' = ANY (e.payload_issues)) IS TRUE AS fields_current
      FROM webhook_events e
     WHERE e.id = %(id)s
       AND (   (e.status IN ('received', 'processing', 'failed') AND e.next_retry_at <= now())
            OR (%(force)s AND e.status IN ('received', 'processing', 'failed', 'dead')))
       FOR UPDATE OF e SKIP LOCKED
)
UPDATE webhook_events w
   SET status          = CASE WHEN NOT %(force)s AND w.attempts >= %(max_attempts)s
                              THEN 'dead' ELSE 'processing' END,
       attempts        = CASE WHEN NOT %(force)s AND w.attempts >= %(max_attempts)s
                              THEN w.attempts ELSE w.attempts + 1 END,
       next_retry_at   = CASE WHEN NOT %(force)s AND w.attempts >= %(max_attempts)s THEN NULL
                              ELSE now() + make_interval(secs => %(lease_seconds)s) END,
       last_error      = CASE WHEN NOT %(force)s AND w.attempts >= %(max_attempts)s
                              THEN left(coalesce(w.last_error || '; ', '') || 'max attempts '
                                        || %(max_attempts)s || ' reached', 2000)
                              ELSE w.last_error END,
       last_attempt_at = now(),
       updated_at      = now()
  FROM candidate c
 WHERE w.id = c.id
RETURNING w.id, w.provider, w.event_id, w.status, w.attempts, w.last_error,
          c.prev_status, c.due_at, c.prev_attempt_at,
          w.payment_status, w.payment_provider_ref AS payment_ref, c.fields_current,
          CASE WHEN c.fields_current THEN NULL ELSE w.payload END AS payload

-- name: retry_apply_batch
-- Settle a claimed batch in one set-based statement: the arrays hold, in claim order, each
-- event's id, provider, payment status and reference (as the runner's rules `rules` read them)
-- and its retry delay. Per event, the rules of the receiver's ingest:
--   * the payment it names exists: the guarded transition runs (pending -> final only, so a
--     final status never moves back or flips) and the event is `processed`;
--   * no reference, or no such payment (yet): the event is `failed` and due again after its
--     delay, or `dead` once it made max_attempts attempts.
-- Returns each event's state afterwards and the payment's status. Nothing here scans a table:
-- every row is reached through a unique index, whatever plan the statistics suggest.
-- The settle moves payments, so it commits durably even on the runner's asynchronously
-- committing connections (RUNNER_SESSION in retry_job/runner.py): `set_config(..., true)` turns
-- synchronous commit on for this statement's own transaction (an autocommit statement is one),
-- and PostgreSQL reads the setting when that transaction commits, before it reverts local
-- settings. A payment status a reader has seen never goes back after a crash of the database
-- server; the flush also makes every earlier claim durable (WAL is flushed in order). In the
-- statement itself, not a BEGIN / SET LOCAL / COMMIT around it: three statements and a
-- transaction block less per batch (docs/PERFORMANCE.md). An uncorrelated sub-select in the
-- WHERE runs once, before the first row, whatever the join order (a one-time filter); a test
-- holds it (tests/retry_job/test_session.py).
WITH item AS MATERIALIZED (
    SELECT i.id, i.payment_status, i.ref, i.delay_ms, i.ord, p.id AS payment_id, p.status AS payment_was
      FROM unnest(%(ids)s::text[], %(providers)s::text[], %(payment_statuses)s::text[],
                  %(payment_refs)s::text[], %(retry_delays_ms)s::bigint[])
           WITH ORDINALITY AS i (id, provider, payment_status, ref, delay_ms, ord)
           -- OFFSET 0 keeps this a lookup per event (payments_provider_ref_unique), never a
           -- join the planner could turn into a scan of every payment.
      LEFT JOIN LATERAL (SELECT p.id, p.status FROM payments p
                          WHERE p.provider = i.provider AND p.provider_ref = i.ref
                         OFFSET 0) p ON true
), moved AS (
    -- One transition per payment: the first event of the batch (in claim order) that settles
    -- it, as if the events were applied one after another. A payment another transaction moved
    -- meanwhile fails `status = 'pending'` on its new version and is left alone.
    UPDATE payments p
       SET status = t.payment_status, updated_at = now()
      FROM (SELECT DISTINCT ON (payment_id) payment_id, payment_status
              FROM item
             WHERE payment_was = 'pending' AND payment_status <> 'pending'
             ORDER BY payment_id, ord) t
     WHERE p.id = ANY (ARRAY(SELECT payment_id FROM item
                              WHERE payment_was = 'pending' AND payment_status <> 'pending'))
       AND p.id = t.payment_id AND p.status = 'pending'
    RETURNING p.id, p.status
)
UPDATE webhook_events w
   SET status               = CASE WHEN o.payment_id IS NOT NULL THEN 'processed'
                                   WHEN w.attempts >= %(max_attempts)s THEN 'dead' ELSE 'failed' END,
       payment_status       = o.payment_status,
       payment_provider_ref = o.ref,
       extracted_with       = %(rules)s,
       processed_at         = CASE WHEN o.payment_id IS NOT NULL THEN now() ELSE w.processed_at END,
       next_retry_at        = CASE WHEN o.payment_id IS NOT NULL OR w.attempts >= %(max_attempts)s THEN NULL
                                   ELSE now() + make_interval(secs => o.delay_ms / 1000.0) END,
       last_error           = CASE WHEN o.payment_id IS NOT NULL THEN NULL
                                   ELSE CASE WHEN o.ref IS NULL THEN 'payment reference not found in payload'
                                             ELSE 'payment not found' END
                                        || CASE WHEN w.attempts >= %(max_attempts)s
                                                THEN ' (max attempts ' || %(max_attempts)s || ' reached)'
                                                ELSE '' END END,
       last_attempt_at      = now(),
       updated_at           = now()
  FROM item o
  LEFT JOIN moved m ON m.id = o.payment_id
 WHERE w.id = ANY (%(ids)s::text[]) AND w.id = o.id
   AND (SELECT set_config('synchronous_commit', 'on', true)) = 'on'
RETURNING w.id, coalesce(m.status, o.payment_was) AS payment_status, w.status, w.attempts,
          w.next_retry_at, w.last_error

-- name: retry_mark_failed
-- Processing a claimed event raised: record the error and make it due again after the backoff,
-- or dead when that was its last attempt. Only a row still `processing` is touched.
UPDATE webhook_events
   SET status        = CASE WHEN attempts >= %(max_attempts)s THEN 'dead' ELSE 'failed' END,
       next_retry_at = CASE WHEN attempts >= %(max_attempts)s THEN NULL
                            ELSE now() + make_interval(secs => %(retry_delay_ms)s::bigint / 1000.0) END,
       last_error    = left(%(error)s || CASE WHEN attempts >= %(max_attempts)s
                                              THEN ' (max attempts ' || %(max_attempts)s || ' reached)'
                                              ELSE '' END, 2000),
       updated_at    = now()
 WHERE id = %(id)s AND status = 'processing'
RETURNING status, attempts, next_retry_at, last_error

-- name: peek_due_events
-- What a claim would take now, without taking it (`--dry-run`): same predicate, no lock.
SELECT e.id, e.provider, e.event_id, e.status, e.attempts, e.next_retry_at
  FROM webhook_events e
 WHERE e.status IN ('received', 'processing', 'failed')
   AND e.next_retry_at <= now()
   AND (%(providers)s::text[] IS NULL OR e.provider = ANY (%(providers)s::text[]))
 ORDER BY e.next_retry_at, e.id
 LIMIT %(limit)s

-- name: replay_events
-- Operator replay: matching events (dead by default) go back to `failed`, due now, with a fresh
-- attempt budget. The previous error is kept inside the note, so the history is not lost.
WITH replayed AS (
    UPDATE webhook_events
       SET status = 'failed', attempts = 0, next_retry_at = now(), updated_at = now(),
           last_error = left('replayed by ' || %(actor)s || ' at '
                             || to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
                             || coalesce('; previous error: ' || last_error, ''), 2000)
     WHERE status = %(status)s
       AND (%(provider)s::text IS NULL OR provider = %(provider)s)
       AND (%(since)s::timestamptz IS NULL OR received_at >= %(since)s)
       AND (%(until)s::timestamptz IS NULL OR received_at < %(until)s)
    RETURNING 1
)
SELECT count(*) AS replayed FROM replayed

-- name: count_replayable
-- How many events a replay with these filters would bring back (`--dry-run`).
SELECT count(*) AS replayable
  FROM webhook_events
 WHERE status = %(status)s
   AND (%(provider)s::text IS NULL OR provider = %(provider)s)
   AND (%(since)s::timestamptz IS NULL OR received_at >= %(since)s)
   AND (%(until)s::timestamptz IS NULL OR received_at < %(until)s)

-- name: schedule_event_now
-- Admin "retry now" over HTTP: make an event due now, so the next runner tick takes it.
-- received/failed: just due now. With force, a leased `processing` row is released to due now
-- and a `dead` one is replayed (failed, attempts reset, note kept). Processed rows never match.
UPDATE webhook_events
   SET next_retry_at = now(), updated_at = now(),
       status     = CASE WHEN status = 'dead' THEN 'failed' ELSE status END,
       attempts   = CASE WHEN status = 'dead' THEN 0 ELSE attempts END,
       last_error = CASE WHEN status = 'dead'
                         THEN left('replayed by ' || %(actor)s || ' at '
                                   || to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
                                   || coalesce('; previous error: ' || last_error, ''), 2000)
                         ELSE last_error END
 WHERE id = %(id)s
   AND (status IN ('received', 'failed') OR (%(force)s AND status IN ('processing', 'dead')))
RETURNING id, provider, event_id, event_type, status, payment_status, attempts, deliveries,
          received_at, processed_at, next_retry_at, last_error, payload_issues

-- name: list_events
-- Admin list of webhook events: every filter optional (NULL = any); newest first, one page, and
-- the total of every matching row (joined like list_payments: a page past the last still returns
-- one row, its event columns NULL, that carries the total). needs_review: events whose payload
-- had to be repaired to be stored (payload_issues).
WITH matching AS NOT MATERIALIZED (
    SELECT e.id, e.provider, e.event_id, e.event_type, e.status, e.payment_status, e.attempts,
           e.deliveries, e.received_at, e.processed_at, e.next_retry_at, e.last_error, e.payload_issues
      FROM webhook_events e
     WHERE (%(status)s::text IS NULL OR e.status = %(status)s)
       AND (%(provider)s::text IS NULL OR e.provider = %(provider)s)
       AND (%(q)s::text IS NULL OR e.id = %(q)s OR e.event_id = %(q)s OR e.payment_provider_ref = %(q)s)
       AND (%(received_from)s::timestamptz IS NULL OR e.received_at >= %(received_from)s)
       AND (%(received_to)s::timestamptz IS NULL OR e.received_at < %(received_to)s)
       AND (%(needs_review)s::boolean IS NULL OR (cardinality(e.payload_issues) > 0) = %(needs_review)s)
), page AS (
    SELECT * FROM matching ORDER BY received_at DESC, id DESC LIMIT %(limit)s OFFSET %(offset)s
)
SELECT page.*, counted.total
  FROM (SELECT count(*) AS total FROM matching) counted
  LEFT JOIN page ON true
 ORDER BY page.received_at DESC, page.id DESC

-- name: start_retry_run
-- A run begins: its row exists (outcome `running`) before anything is claimed.
INSERT INTO retry_runs (id, trigger, policy) VALUES (%(id)s, %(trigger)s, %(policy)s)
RETURNING started_at

-- name: retry_run_locked
-- A run took the run lock: record the lock backend on its row, and mark `abandoned` every other
-- `running` row whose run cannot still be alive (it was killed before it could record its end):
--   * rows that held the same lock backend. That lock is ours now, so their holder lost it: an
--     advisory lock is freed when its session ends, a Redis lock <= 60 s after its last renewal;
--   * rows that never took a lock (`retry one`, or a run killed before it got the lock) once they
--     are older than their lease plus a grace: whatever they claimed is due again by then.
-- Rows of the other backend are left alone: while Redis is unreachable from this runner only, a
-- Redis-locked run may still be alive beside an advisory-locked one. A run that does finish later
-- after all overwrites the outcome with the truth (finish_retry_run).
WITH mine AS (
    UPDATE retry_runs SET lock_backend = %(lock_backend)s WHERE id = %(id)s
), abandoned AS (
    UPDATE retry_runs r
       SET outcome = 'abandoned', finished_at = now(),
           error = 'abandoned: the run never recorded its end (killed?); '
                   || CASE WHEN r.lock_backend IS NULL THEN 'its lease ran out'
                           ELSE 'its ' || r.lock_backend || ' run lock was free' END
                   || ', seen by run ' || %(id)s
     WHERE r.outcome = 'running'
       AND r.id <> %(id)s
       AND (r.lock_backend = %(lock_backend)s
            OR (r.lock_backend IS NULL
                AND r.started_at < now() - make_interval(
                        secs => coalesce((r.policy ->> 'leaseSeconds')::integer, %(lease_seconds)s)
                                + %(grace_seconds)s)))
    RETURNING r.id, r.trigger, r.started_at, r.lock_backend
)
SELECT id, trigger, started_at, lock_backend FROM abandoned ORDER BY started_at

-- name: finish_retry_run
-- A run ends: outcome, counters, the policy it used and the lock backend, in one update.
UPDATE retry_runs
   SET finished_at = now(), outcome = %(outcome)s, policy = %(policy)s, lock_backend = %(lock_backend)s,
       claimed = %(claimed)s, ok = %(ok)s, failed = %(failed)s, dead = %(dead)s, error = %(error)s
 WHERE id = %(id)s

-- name: recent_retry_runs
-- The last runs, newest first (`tenrusl status`); cap: the most events the run could handle.
SELECT id, started_at, finished_at, trigger, outcome, lock_backend, claimed, ok, failed, dead, error,
       (policy ->> 'cap')::integer AS cap
  FROM retry_runs
 ORDER BY started_at DESC
 LIMIT %(limit)s

-- name: retry_status
-- Events by state, the due backlog, its oldest age, when the next not-yet-due retry is, and the
-- runs still marked running and those found abandoned (killed) in the last 24 hours.
SELECT
    (SELECT count(*) FROM retry_runs WHERE outcome = 'running') AS runs_running,
    (SELECT count(*) FROM retry_runs
      WHERE outcome = 'abandoned' AND started_at > now() - interval '24 hours') AS runs_abandoned_24h,
    (SELECT coalesce(jsonb_object_agg(status, n), '{}'::jsonb)
       FROM (SELECT status, count(*) AS n FROM webhook_events GROUP BY status) s) AS events_by_status,
    (SELECT count(*) FROM webhook_events
      WHERE status IN ('received', 'processing', 'failed') AND next_retry_at <= now()) AS due,
    (SELECT extract(epoch FROM now() - min(next_retry_at)) FROM webhook_events
      WHERE status IN ('received', 'processing', 'failed') AND next_retry_at <= now()) AS oldest_due_seconds,
    (SELECT min(next_retry_at) FROM webhook_events
      WHERE status IN ('received', 'processing', 'failed') AND next_retry_at > now()) AS next_due_at
