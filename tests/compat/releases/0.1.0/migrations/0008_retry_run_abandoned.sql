-- TenRusl schema, version 8: a retry run killed mid-way (SIGKILL, OOM, node loss) is recorded.
--
-- Such a run never reaches finish_retry_run, so its row stayed `running` for ever. The next run
-- that takes the run lock marks it `abandoned` (query retry_run_locked), and so does any run once
-- a lock-less row (`retry one`, or a run killed before it took the lock) is older than its lease.
ALTER TABLE retry_runs DROP CONSTRAINT retry_runs_outcome_check;
ALTER TABLE retry_runs ADD CONSTRAINT retry_runs_outcome_check
    CHECK (outcome IN ('running', 'completed', 'paused', 'busy', 'error', 'abandoned'));

-- The sweep and the metrics look only at running rows: a handful, among a year of finished ones.
CREATE INDEX retry_runs_running_idx ON retry_runs (started_at) WHERE outcome = 'running';
