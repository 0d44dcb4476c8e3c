-- Gauges for /metrics, one round trip per snapshot (the receiver caches it for a few seconds).

-- name: metrics_snapshot
-- Events by state, the due backlog and its oldest age, and retry-run totals. The run counters
-- count finished runs only (`running` is a gauge: a killed run's row leaves it when the next run
-- marks it `abandoned`). "Last run" ignores abandoned rows: they carry no counts and end when the
-- run that found them started, not when they stopped.
SELECT
    (SELECT coalesce(jsonb_object_agg(status, n), '{}'::jsonb)
       FROM (SELECT status, count(*) AS n FROM webhook_events GROUP BY status) s) AS events_by_status,
    (SELECT count(*) FROM webhook_events
      WHERE status IN ('received', 'processing', 'failed') AND next_retry_at <= now()) AS backlog,
    (SELECT coalesce(extract(epoch FROM now() - min(next_retry_at)), 0) FROM webhook_events
      WHERE status IN ('received', 'processing', 'failed') AND next_retry_at <= now()) AS backlog_oldest_seconds,
    (SELECT jsonb_build_object('claimed', coalesce(sum(claimed), 0), 'ok', coalesce(sum(ok), 0),
                               'failed', coalesce(sum(failed), 0), 'dead', coalesce(sum(dead), 0))
       FROM retry_runs) AS runs_totals,
    (SELECT coalesce(jsonb_object_agg(outcome, n), '{}'::jsonb)
       FROM (SELECT outcome, count(*) AS n FROM retry_runs WHERE outcome <> 'running' GROUP BY outcome) o)
        AS runs_by_outcome,
    (SELECT count(*) FROM retry_runs WHERE outcome = 'running') AS runs_running,
    last.counts AS last_run,
    last.outcome AS last_run_outcome,
    (SELECT extract(epoch FROM max(finished_at)) FROM retry_runs
      WHERE outcome <> 'abandoned') AS last_run_ts,
    (SELECT extract(epoch FROM max(finished_at)) FROM retry_runs
      WHERE outcome IN ('completed', 'paused')) AS last_success_ts
  FROM (SELECT NULL) one
  LEFT JOIN LATERAL (
      SELECT jsonb_build_object('claimed', claimed, 'ok', ok, 'failed', failed, 'dead', dead) AS counts,
             outcome
        FROM retry_runs
       WHERE finished_at IS NOT NULL AND outcome <> 'abandoned'
       ORDER BY started_at DESC
       LIMIT 1
  ) last ON true
