"""One retry run end to end: outcomes, the run row, the summary, policy layers, replay, one."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from retry_job.lock import REDIS_LOCK_KEY
from retry_job.policy import resolve_policy
from retry_job.runner import Runner, RunOptions
from tenrusl.db import Connection
from tenrusl.policy import PolicyError
from tenrusl.providers import ProviderSpec, provider_spec
from tenrusl.settings import Settings
from tenrusl.store import ReplayFilter, Store
from tests.retry_job.conftest import Seed, event_row
from tests.retry_job.conftest import tenrusl_cli as _cli


async def _runs(db: Connection) -> list[dict]:
    return await (await db.execute("SELECT * FROM retry_runs ORDER BY started_at")).fetchall()


async def test_a_run_settles_each_event_and_records_itself(
    store: Store, seed: Seed, db: Connection, no_redis_settings: Settings
) -> None:
    ok = await seed(ref="pay-ok", payment=True)
    fail = await seed(ref="pay-missing")
    last = await seed(ref="pay-missing-too", attempts=21)
    result = await Runner(no_redis_settings, store, RunOptions(trigger="test")).run()
    assert (result.outcome, result.exit_code) == ("completed", 0)
    assert result.summary == "CLAIMED=3 OK=1 FAIL=1 DEAD=1"
    assert (await event_row(db, ok))["status"] == "processed"
    failed = await event_row(db, fail)
    assert failed["status"] == "failed" and failed["attempts"] == 2
    assert failed["last_error"] == "payment not found"
    assert failed["next_retry_at"] > failed["last_attempt_at"]  # floored at the min lease, never "now"
    dead = await event_row(db, last)
    assert dead["status"] == "dead" and dead["attempts"] == 22 and "max attempts 22" in dead["last_error"]
    [run] = await _runs(db)
    assert (run["outcome"], run["claimed"], run["ok"], run["failed"], run["dead"]) == (
        "completed",
        3,
        1,
        1,
        1,
    )
    assert run["lock_backend"] == "pg_advisory" and run["policy"]["maxAttempts"] == 22
    assert run["trigger"] == "test" and run["finished_at"] is not None
    # A second run finds nothing due: the failed event waits for its backoff.
    again = await Runner(no_redis_settings, store).run()
    assert again.summary == "CLAIMED=0 OK=0 FAIL=0 DEAD=0"


async def test_an_exception_marks_the_event_failed_and_the_run_goes_on(
    store: Store, seed: Seed, db: Connection, no_redis_settings: Settings, monkeypatch
) -> None:
    boom = await seed(provider="stripe", ref="x")
    fine = await seed(ref="pay-fine", payment=True)

    def provider(name: str) -> ProviderSpec:
        if name == "stripe":
            raise RuntimeError("verifier exploded")
        return provider_spec(name)

    monkeypatch.setattr("retry_job.runner.provider_spec", provider)
    result = await Runner(no_redis_settings, store).run()
    assert result.summary == "CLAIMED=2 OK=1 FAIL=1 DEAD=0"
    row = await event_row(db, boom)
    assert row["status"] == "failed" and row["last_error"] == "RuntimeError: verifier exploded"
    assert row["next_retry_at"] > row["last_attempt_at"]
    assert (await event_row(db, fine))["status"] == "processed"


async def test_paused_policy_claims_nothing_and_exits_0(
    store: Store, seed: Seed, db: Connection, no_redis_settings: Settings, tmp_path: Path
) -> None:
    event_id = await seed()
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"version": 1, "paused": True}))
    result = await Runner(no_redis_settings.replace(policy_file=str(policy)), store).run()
    assert (result.outcome, result.exit_code, result.claimed) == ("paused", 0, 0)
    assert (await event_row(db, event_id))["attempts"] == 1
    assert (await _runs(db))[0]["outcome"] == "paused"


async def test_the_policy_file_is_reread_between_batches(
    store: Store, seed: Seed, no_redis_settings: Settings, tmp_path: Path
) -> None:
    for _ in range(5):
        await seed(ref="none")
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"version": 2, "batchSize": 2}))
    runner = Runner(no_redis_settings.replace(policy_file=str(policy)), store)
    original = runner.read_batch

    async def read_batch(*args, **kwargs):
        # the operator pauses while the first batch runs
        policy.write_text(json.dumps({"version": 2, "batchSize": 2, "paused": True}))
        return await original(*args, **kwargs)

    runner.read_batch = read_batch  # type: ignore[method-assign]
    result = await runner.run()
    assert (result.outcome, result.claimed) == ("paused", 2)
    assert result.summary == "CLAIMED=2 OK=0 FAIL=2 DEAD=0"  # the batch in hand was still settled


async def test_a_policy_file_broken_mid_run_still_settles_the_batch_in_hand(
    store: Store, seed: Seed, db: Connection, no_redis_settings: Settings, tmp_path: Path
) -> None:
    ids = [await seed(ref="none") for _ in range(3)]
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"version": 2, "batchSize": 2}))
    runner = Runner(no_redis_settings.replace(policy_file=str(policy)), store)
    original = runner.read_batch

    async def read_batch(*args, **kwargs):
        policy.write_text("{ not json")
        return await original(*args, **kwargs)

    runner.read_batch = read_batch  # type: ignore[method-assign]
    result = await runner.run()
    assert (result.outcome, result.exit_code, result.summary) == ("error", 2, "CLAIMED=2 OK=0 FAIL=2 DEAD=0")
    statuses = [(await event_row(db, event_id))["status"] for event_id in ids]
    assert statuses == ["failed", "failed", "failed"]  # two settled (attempt 2), one never claimed
    assert [(await event_row(db, event_id))["attempts"] for event_id in ids] == [2, 2, 1]


def test_policy_layers_defaults_env_file_flags(tmp_path: Path) -> None:
    env = {
        "TENRUSL_SCHEDULER_LIMIT": "50",
        "TENRUSL_SCHEDULER_BATCH_SIZE": "25",
        "TENRUSL_RETRY_BASE_MS": "1000",
        "TENRUSL_RETRY_CAP_MS": "60000",
        "TENRUSL_SCHEDULER_BACKOFF_MODE": "equal",
        "TENRUSL_MAX_RETRY_ATTEMPTS": "7",
        "TENRUSL_SCHEDULER_PROVIDER": "stripe",
    }
    defaults = resolve_policy(Settings.from_env({}))
    assert (defaults.limit, defaults.batch_size) == (2000, 200)
    from_env = resolve_policy(Settings.from_env(env))
    assert (from_env.limit, from_env.batch_size) == (50, 25)
    assert (from_env.base_ms, from_env.cap_ms, from_env.mode) == (1000, 60000, "equal")
    assert (from_env.max_attempts, from_env.providers) == (7, ("stripe",))
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"version": 2, "limit": 20, "backoff": {"mode": "decorrelated"}}))
    from_file = resolve_policy(Settings.from_env({**env, "TENRUSL_POLICY_FILE": str(policy)}))
    assert (from_file.limit, from_file.batch_size, from_file.mode) == (20, 25, "decorrelated")
    assert from_file.max_attempts == 7
    flagged = resolve_policy(
        Settings.from_env({**env, "TENRUSL_POLICY_FILE": str(policy)}), {"limit": 3, "mode": None}
    )
    assert (flagged.limit, flagged.mode) == (3, "decorrelated")
    policy.write_text(json.dumps({"version": 2, "backoff": {"baseMs": 10, "capMs": 5}}))
    with pytest.raises(PolicyError, match="capMs"):
        resolve_policy(Settings.from_env({"TENRUSL_POLICY_FILE": str(policy)}))


async def test_a_bad_policy_is_exit_2_and_an_error_row(
    store: Store, seed: Seed, db: Connection, no_redis_settings: Settings, tmp_path: Path
) -> None:
    await seed()
    policy = tmp_path / "policy.json"
    policy.write_text('{"version": 2, "limit": 0}')
    result = await Runner(no_redis_settings.replace(policy_file=str(policy)), store).run()
    assert (result.outcome, result.exit_code, result.claimed) == ("error", 2, 0)
    [run] = await _runs(db)
    assert run["outcome"] == "error" and "limit" in run["error"]


async def test_a_busy_lock_exits_0_and_records_busy(
    store: Store, seed: Seed, db: Connection, settings: Settings, redis_client: aioredis.Redis
) -> None:
    from tests.retry_job.conftest import NOT_DUE_AGAIN_MS

    await seed()
    settings = settings.replace(retry_min_delay_ms=NOT_DUE_AGAIN_MS)  # it fails: not due again
    await redis_client.set(REDIS_LOCK_KEY, "another-run", px=60_000)
    result = await Runner(settings, store).run()
    assert (result.outcome, result.exit_code, result.claimed) == ("busy", 0, 0)
    assert (await _runs(db))[0]["outcome"] == "busy"
    assert await redis_client.get(REDIS_LOCK_KEY) == b"another-run"  # not ours: left alone
    await redis_client.delete(REDIS_LOCK_KEY)
    done = await Runner(settings, store).run()
    assert (done.outcome, done.claimed, done.lock_backend) == ("completed", 1, "redis")
    assert await redis_client.get(REDIS_LOCK_KEY) is None  # released


async def test_replay_brings_dead_events_back(
    store: Store, seed: Seed, db: Connection, no_redis_settings: Settings
) -> None:
    dead = await seed(
        status="dead", attempts=22, due_in_s=None, ref="late-pay", last_error="payment not found"
    )
    other = await seed(status="dead", attempts=22, due_in_s=None, provider="stripe")
    flt = ReplayFilter(status="dead", provider="mock")
    assert await store.replay_events(flt, actor="test", dry_run=True) == 1
    assert (await event_row(db, dead))["status"] == "dead"  # dry run changed nothing
    assert await store.replay_events(flt, actor="test") == 1
    row = await event_row(db, dead)
    assert (row["status"], row["attempts"]) == ("failed", 0)
    assert row["last_error"].startswith("replayed by test at ")
    assert row["last_error"].endswith("previous error: payment not found")
    assert (await event_row(db, other))["status"] == "dead"
    # The payment now exists: the next run finishes the replayed event.
    await db.execute(
        "INSERT INTO payments (id, provider, provider_ref, amount, currency) VALUES ('p1','mock','late-pay',1,'IDR')"
    )
    result = await Runner(no_redis_settings, store).run()
    assert result.summary == "CLAIMED=1 OK=1 FAIL=0 DEAD=0"
    assert (await event_row(db, dead))["attempts"] == 1


async def test_retry_one_and_force(store: Store, seed: Seed, db: Connection, settings: Settings) -> None:
    later = await seed(due_in_s=3600, ref="pay-1", payment=True)
    runner = Runner(settings, store)
    result, outcome = await runner.process_one(later, force=False)
    assert outcome is None and result.claimed == 0
    result, outcome = await runner.process_one(later, force=True)
    assert outcome == "ok" and result.summary == "CLAIMED=1 OK=1 FAIL=0 DEAD=0"
    dead = await seed(status="dead", attempts=22, due_in_s=None, ref="nope")
    _, outcome = await runner.process_one(dead, force=False)
    assert outcome is None
    _, outcome = await runner.process_one(dead, force=True)  # one extra attempt, fails again: dead
    row = await event_row(db, dead)
    assert outcome == "dead" and (row["status"], row["attempts"]) == ("dead", 23)


async def test_cli_retry_once_status_and_the_run_row_agree(
    seed: Seed, db: Connection, base_env: dict[str, str]
) -> None:
    env = {**base_env, "TENRUSL_REDIS_URL": "", "TENRUSL_SCHEDULER_BATCH_SIZE": "3"}
    for i in range(4):
        await seed(ref=f"pay-{i}", payment=i % 2 == 0, due_in_s=-100 + i)
    await seed(status="failed", due_in_s=3600)
    await seed(status="processing", due_in_s=120)
    await seed(status="processing", due_in_s=-5, attempts=22)  # its runner died on the last attempt
    await seed(status="processed", due_in_s=None)
    await seed(status="dead", due_in_s=None)
    await seed(status="received", due_in_s=None)
    from tests.retry_job.conftest import NOT_DUE_AGAIN_MS

    # The two events that fail must not be due again before `status` looks.
    env["TENRUSL_RETRY_MIN_DELAY_MS"] = str(NOT_DUE_AGAIN_MS)

    dry = _cli(env, "retry", "run", "--dry-run")
    assert dry.returncode == 0 and "would claim 3 event(s)" in dry.stdout, dry.stderr
    once = _cli(env, "retry", "once")
    assert once.returncode == 0, once.stderr
    # The batch size (3) applies per claim; the run goes on: 5 due events in two batches.
    assert once.stdout.strip().splitlines()[-1] == "CLAIMED=5 OK=2 FAIL=2 DEAD=1"
    summary_logs = [json.loads(line) for line in once.stderr.splitlines() if '"retry_run"' in line]
    assert [entry["message"] for entry in summary_logs if entry.get("outcome")] == [
        "CLAIMED=5 OK=2 FAIL=2 DEAD=1"
    ]
    [run] = await _runs(db)
    assert (run["claimed"], run["ok"], run["failed"], run["dead"], run["outcome"]) == (
        5,
        2,
        2,
        1,
        "completed",
    )
    status = _cli(env, "status", "--json")
    assert status.returncode == 0, status.stderr
    state = json.loads(status.stdout)
    assert state["events_by_status"] == {
        "failed": 3,
        "processing": 1,
        "processed": 3,
        "dead": 2,
        "received": 1,
    }
    assert state["due"] == 0
    last = state["runs"][0]
    assert (last["claimed"], last["ok"], last["failed"], last["dead"]) == (5, 2, 2, 1)
    human = _cli(env, "status")
    assert "CLAIMED=5 OK=2 FAIL=2 DEAD=1" in human.stdout and "due backlog:    0" in human.stdout


def test_cli_exit_1_when_the_database_is_unreachable(base_env: dict[str, str]) -> None:
    from tenrusl.embedded import free_port

    env = {
        **base_env,
        "TENRUSL_REDIS_URL": "",
        "TENRUSL_DATABASE_URL": f"postgresql://nobody@127.0.0.1:{free_port()}/none",
    }
    result = _cli(env, "retry", "once")
    assert result.returncode == 1, (result.stdout, result.stderr)


def test_cli_exit_2_on_a_bad_policy_file(base_env: dict[str, str], tmp_path: Path) -> None:
    policy = tmp_path / "policy.json"
    policy.write_text('{"version": 1, "backoff": {"mode": "linear"}}')
    result = _cli({**base_env, "TENRUSL_POLICY_FILE": str(policy)}, "retry", "once")
    assert result.returncode == 2 and "backoff.mode" in result.stderr


async def test_a_missing_policy_file_means_environment_defaults(
    store: Store, seed: Seed, db: Connection, no_redis_settings: Settings, tmp_path: Path
) -> None:
    """The operator's policy was deleted (its ConfigMap garbage-collected): runs go on, on defaults."""
    event_id = await seed()
    gone = tmp_path / "no-such-policy.json"
    result = await Runner(no_redis_settings.replace(policy_file=str(gone)), store).run()
    assert (result.outcome, result.exit_code, result.claimed) == ("completed", 0, 1)
    assert (await event_row(db, event_id))["attempts"] == 2


async def test_a_bad_provider_key_stops_the_run_at_start_and_no_event_moves(
    seed: Seed, db: Connection, base_env: dict[str, str]
) -> None:
    """A configuration error is the deployment's, not an event's: exit 2 before claiming anything."""
    dana = await seed(provider="dana", ref="sim_dana_1", payment=True)
    before = await event_row(db, dana)
    for command in (("retry", "once"), ("retry", "one", dana, "--force")):
        result = _cli({**base_env, "TENRUSL_DANA_PUBLIC_KEY": "not-a-key"}, *command)
        assert result.returncode == 2, (command, result.stdout, result.stderr)
        assert "TENRUSL_DANA_PUBLIC_KEY" in result.stderr and "Traceback" not in result.stderr
    after = await event_row(db, dana)
    assert (after["status"], after["attempts"], after["next_retry_at"], after["last_error"]) == (
        before["status"],
        before["attempts"],
        before["next_retry_at"],
        before["last_error"],
    )
    assert await _runs(db) == []  # nothing started: no run row either
    # With the key fixed (unset here), the same event is processed on the next run.
    ok = _cli(base_env, "retry", "once")
    assert ok.returncode == 0, ok.stderr
    assert (await event_row(db, dana))["status"] == "processed"


async def test_each_run_purges_expired_idempotency_keys_oldest_first_within_its_bound(
    store: Store,
    db: Connection,
    no_redis_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Nothing else deletes expired keys: without this the table only grows."""
    await db.execute(
        "INSERT INTO idempotency_keys (key, request_hash, state, locked_until, expires_at) "
        "SELECT 'old-' || g, 'h', 'done', now(), now() - g * interval '1 minute' "
        "FROM generate_series(1, 5) g"
    )
    await db.execute(
        "INSERT INTO idempotency_keys (key, request_hash, state, locked_until, expires_at) "
        "VALUES ('live', 'h', 'done', now(), now() + interval '1 day')"
    )
    monkeypatch.setattr("retry_job.runner.PURGE_LIMIT", 3)

    async def keys() -> list[str]:
        rows = await (await db.execute("SELECT key FROM idempotency_keys ORDER BY key")).fetchall()
        return [r["key"] for r in rows]

    with caplog.at_level(logging.INFO, logger="tenrusl.retry"):
        first = await Runner(no_redis_settings, store).run()
    assert (first.outcome, first.idempotency_keys_purged) == ("completed", 3)
    assert await keys() == ["live", "old-1", "old-2"]  # the three that expired first went first
    [summary] = [r for r in caplog.records if r.getMessage() == first.summary]
    assert summary.__dict__["idempotency_keys_purged"] == 3  # recorded in the run's log line
    second = await Runner(no_redis_settings, store).run()
    assert second.idempotency_keys_purged == 2 and await keys() == ["live"]
    assert (await Runner(no_redis_settings, store).run()).idempotency_keys_purged == 0
