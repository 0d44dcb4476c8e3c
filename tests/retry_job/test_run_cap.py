"""The per-run cap (the policy's ``limit``), the claim size (``batchSize``) and the gradual resume,
on a real database: what a run handles, in what order, and what it records."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from retry_job.runner import Runner, RunOptions
from tenrusl.db import Connection
from tenrusl.settings import Settings
from tenrusl.store import Store
from tests.retry_job.conftest import tenrusl_cli as _cli

RESUMED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class Fixed:
    """A clock that always tells ``now``."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def seed_due(db: Connection, count: int) -> list[str]:
    """``count`` due events naming no payment (each retry fails), the oldest first; their ids."""
    rows = await (
        await db.execute(
            """
            INSERT INTO webhook_events (id, provider, event_id, event_id_source, status, attempts,
                                        next_retry_at, last_attempt_at, payload_raw, payload)
            SELECT 'ev' || lpad(g::text, 5, '0'), 'mock', 'evt_' || g, 'payload', 'failed', 1,
                   now() - interval '1 hour' + g * interval '1 second', now() - interval '2 hours',
                   convert_to(p::text, 'UTF8'), p
              FROM generate_series(1, %(n)s) g,
                   LATERAL (SELECT jsonb_build_object('id', 'evt_' || g, 'status', 'succeeded',
                                                      'provider_ref', 'no-such-payment') AS p) x
            RETURNING id
            """,
            {"n": count},
        )
    ).fetchall()
    return sorted(r["id"] for r in rows)


async def attempted(db: Connection, since: datetime) -> list[str]:
    """The events a run claimed since ``since`` (each claim sets last_attempt_at)."""
    rows = await (
        await db.execute("SELECT id FROM webhook_events WHERE last_attempt_at >= %s ORDER BY id", (since,))
    ).fetchall()
    return [r["id"] for r in rows]


async def db_now(db: Connection) -> datetime:
    row = await (await db.execute("SELECT now() AS t")).fetchone()
    assert row is not None
    return row["t"]


def spy_claims(store: Store) -> list[int]:
    """Record the LIMIT of every claim statement the store runs."""
    sizes: list[int] = []
    claim = store.claim_due_events

    async def recording(**kwargs: Any) -> Any:
        sizes.append(kwargs["limit"])
        return await claim(**kwargs)

    store.claim_due_events = recording  # type: ignore[method-assign]
    return sizes


async def test_limit_50_over_400_due_one_run_handles_50_and_the_next_run_the_next_50(
    store: Store, db: Connection, no_redis_settings: Settings, tmp_path: Path
) -> None:
    """The done-when of issue 11, item 1: the policy's limit caps a run; the claim size is apart."""
    ids = await seed_due(db, 400)
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"version": 2, "limit": 50, "batchSize": 20}))
    settings = no_redis_settings.replace(policy_file=str(policy))
    claims = spy_claims(store)

    first_started = await db_now(db)
    first = await Runner(settings, store, RunOptions(trigger="test")).run()
    assert (first.outcome, first.claimed, first.failed, first.cap) == ("completed", 50, 50, 50)
    assert claims == [20, 20, 10], "claims of batchSize, the last one only what is left of the cap"
    assert await attempted(db, first_started) == ids[:50], "the 50 longest due"

    second_started = await db_now(db)
    second = await Runner(settings, store, RunOptions(trigger="test")).run()
    assert (second.outcome, second.claimed) == ("completed", 50)
    assert await attempted(db, second_started) == ids[50:100], "the next 50"

    due = await (
        await db.execute("SELECT count(*) AS n FROM webhook_events WHERE next_retry_at <= now()")
    ).fetchone()
    assert due is not None and due["n"] == 300
    runs = await (await db.execute("SELECT claimed, policy FROM retry_runs ORDER BY started_at")).fetchall()
    assert [(r["claimed"], r["policy"]["cap"], r["policy"]["limit"]) for r in runs] == [(50, 50, 50)] * 2
    print(
        f"\nlimit 50 over 400 due: run 1 claimed {first.claimed}, run 2 {second.claimed}, {due['n']} still due"
    )


async def test_the_cap_ramps_after_a_pause_on_an_injected_clock(
    store: Store, db: Connection, no_redis_settings: Settings, tmp_path: Path
) -> None:
    """rampMinutes 10 from a floor of 10 to a limit of 100: runs at +0, +5 and +10 minutes."""
    await seed_due(db, 400)
    policy = tmp_path / "policy.json"
    policy.write_text(
        json.dumps(
            {
                "version": 2,
                "limit": 100,
                "batchSize": 30,
                "resume": {"rampMinutes": 10, "floor": 10},
                "resumedAt": "2026-03-01T12:00:00Z",
            }
        )
    )
    settings = no_redis_settings.replace(policy_file=str(policy))
    handled = []
    for minutes in (0, 5, 10, 30):
        now = RESUMED + timedelta(minutes=minutes)
        result = await Runner(settings, store, RunOptions(trigger="test"), clock=Fixed(now)).run()
        handled.append((minutes, result.cap, result.claimed))
    assert handled == [(0, 10, 10), (5, 55, 55), (10, 100, 100), (30, 100, 100)]
    print(f"\nramp (minute, cap, claimed): {handled}")


async def test_lowering_the_limit_during_a_run_stops_it_at_the_new_cap(
    store: Store, db: Connection, no_redis_settings: Settings, tmp_path: Path
) -> None:
    await seed_due(db, 200)
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"version": 2, "limit": 100, "batchSize": 20}))
    runner = Runner(no_redis_settings.replace(policy_file=str(policy)), store)
    original = runner.read_batch

    async def read_batch(*args: Any, **kwargs: Any) -> Any:
        # `kubectl tenrusl tune --limit 30` while the first batch runs
        policy.write_text(json.dumps({"version": 2, "limit": 30, "batchSize": 20}))
        return await original(*args, **kwargs)

    runner.read_batch = read_batch  # type: ignore[method-assign]
    claims = spy_claims(store)
    result = await runner.run()
    assert (result.claimed, result.cap) == (30, 30)
    assert claims == [20, 10]


async def test_retry_run_flags_and_the_older_max_events_name(
    db: Connection, base_env: dict[str, str]
) -> None:
    await seed_due(db, 30)
    env = {**base_env, "TENRUSL_REDIS_URL": ""}
    dry = _cli(env, "retry", "run", "--limit", "7", "--batch-size", "3", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    lines = [line.split() for line in dry.stdout.splitlines()]
    assert ["limit", "7", "flag", "--limit"] in lines and ["batchSize", "3", "flag", "--batch-size"] in lines
    assert "dry run: a run would handle at most 7 event(s), in claims of 3" in dry.stdout
    assert "dry run: the first batch would claim 3 event(s)" in dry.stdout
    run = _cli(env, "retry", "run", "--limit", "7", "--batch-size", "3")
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().splitlines()[-1].startswith("CLAIMED=7 ")
    older = _cli(env, "retry", "run", "--max-events", "4")
    assert older.returncode == 0, older.stderr
    assert older.stdout.strip().splitlines()[-1].startswith("CLAIMED=4 ")
    bad = _cli(env, "retry", "run", "--batch-size", "0")
    assert bad.returncode == 2 and "batchSize" in bad.stderr


async def test_status_shows_the_effective_policy_and_where_each_value_comes_from(
    db: Connection, base_env: dict[str, str], tmp_path: Path
) -> None:
    """`tenrusl status [--json]`: defaults, the environment, the operator's file and its source."""
    await seed_due(db, 3)
    policy = tmp_path / "policy.json"
    resumed = datetime.now(UTC) - timedelta(minutes=5)
    policy.write_text(
        json.dumps(
            {
                "version": 2,
                "limit": 500,
                "resume": {"rampMinutes": 10, "floor": 100},
                "resumedAt": resumed.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "source": {"namespace": "payments", "name": "default", "generation": 7, "uid": "u-7"},
            }
        )
    )
    env = {
        **base_env,
        "TENRUSL_REDIS_URL": "",
        "TENRUSL_POLICY_FILE": str(policy),
        "TENRUSL_SCHEDULER_BATCH_SIZE": "30",
    }
    assert _cli(env, "retry", "once").returncode == 0

    status = _cli(env, "status", "--json")
    assert status.returncode == 0, status.stderr
    doc = json.loads(status.stdout)["policy"]
    effective, sources = doc["effective"], doc["sources"]
    assert (effective["limit"], effective["batchSize"], effective["paused"]) == (500, 30, False)
    assert 100 < effective["cap"] < 500, "halfway through a 10-minute ramp from 100 to 500"
    assert effective["rampEndsAt"] is not None
    assert sources["limit"] == "policy file" and sources["resume.rampMinutes"] == "policy file"
    assert sources["batchSize"] == "env TENRUSL_SCHEDULER_BATCH_SIZE"
    assert sources["maxAttempts"] == "default" and sources["backoff.mode"] == "default"
    assert doc["file"] == {
        "path": str(policy),
        "state": "read",
        "source": {"namespace": "payments", "name": "default", "generation": 7, "uid": "u-7"},
    }
    last_run = json.loads(status.stdout)["runs"][0]
    assert 100 <= last_run["cap"] < 500 and last_run["claimed"] == 3

    text = _cli(env, "status").stdout
    lines = [line.split() for line in text.splitlines()]
    assert ["limit", "500", "policy", "file"] in lines
    assert ["batchSize", "30", "env", "TENRUSL_SCHEDULER_BATCH_SIZE"] in lines
    assert ["maxAttempts", "22", "default"] in lines
    assert any(line[:2] == ["cap", "now"] and "(gradual" in line for line in lines)
    assert f"{policy} (WebhookRetryPolicy payments/default, generation 7)" in text
    print("\n" + text[: text.index("events by state")])


async def test_status_without_a_policy_file_says_so(db: Connection, base_env: dict[str, str]) -> None:
    env = {**base_env, "TENRUSL_REDIS_URL": "", "TENRUSL_SCHEDULER_LIMIT": "300"}
    status = _cli(env, "status", "--json")
    doc = json.loads(status.stdout)["policy"]
    assert doc["file"] == {"path": None, "state": "unset", "source": None}
    assert doc["effective"]["cap"] == 300 and doc["sources"]["limit"] == "env TENRUSL_SCHEDULER_LIMIT"
    assert "TENRUSL_POLICY_FILE is not set here" in _cli(env, "status").stdout
