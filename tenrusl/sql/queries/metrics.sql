-- Gauges for /metrics, one round trip per scrape.

-- name: metrics_snapshot
-- Events by state, the due backlog and its oldest age, and retry-run totals.
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
       FROM (SELECT outcome, count(*) AS n FROM retry_runs GROUP BY outcome) o) AS runs_by_outcome,
    (SELECT jsonb_build_object('claimed', claimed, 'ok', ok, 'failed', failed, 'dead', dead)
       FROM retry_runs WHERE finished_at IS NOT NULL ORDER BY started_at DESC LIMIT 1) AS last_run,
    (SELECT extract(epoch FROM max(finished_at)) FROM retry_runs) AS last_run_ts,
    (SELECT extract(epoch FROM max(finished_at)) FROM retry_runs
      WHERE outcome IN ('completed', 'paused')) AS last_success_ts
