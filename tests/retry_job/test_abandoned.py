"""Killed runs become `abandoned` once their lock or lease is gone, and only then.

Each test kills a real runner process (SIGKILL, so it cannot record its end) and lets the next
real run find it. Rows are backdated only to stand in for waiting out a lease.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from typing import Any

import pytest

from retry_job.lock import ADVISORY, REDIS
from retry_job.runner import ABANDON_GRACE_S
from tenrusl.db import Connection
from tenrusl.embedded import free_port
from tests.retry_job.conftest import Seed, seed_many

SLOW = {"TENRUSL_RETRY_DEBUG_EVENT_DELAY_MS": "200"}


def _start(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-P", "-m", "retry_job", *args],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


async def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-P", "-m", "retry_job", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done


async def _runs(db: Connection) -> list[dict[str, Any]]:
    cur = await db.execute("SELECT id, outcome, lock_backend, error FROM retry_runs ORDER BY started_at")
    return await cur.fetchall()


async def _wait_for(db: Connection, sql: str, proc: subprocess.Popen[str]) -> None:
    for _ in range(600):
        row = await (await db.execute(sql)).fetchone()
        if row and next(iter(row.values())):
            return
        assert proc.poll() is None, proc.communicate()
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for: {sql}")


def _kill(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.slow
@pytest.mark.parametrize("backend", [ADVISORY, REDIS])
async def test_a_killed_run_is_abandoned_by_the_next_run_that_takes_its_lock(
    backend: str, db: Connection, base_env: dict[str, str], redis_client: Any
) -> None:
    await seed_many(db, 30)
    env = {**base_env, **({"TENRUSL_REDIS_URL": ""} if backend == ADVISORY else {})}
    victim = _start({**env, **SLOW}, "run", "--batch-size", "10", "--lease-seconds", "5")
    try:
        # Killed while it holds the lock and a batch: its row names the lock it took.
        await _wait_for(db, "SELECT count(*) > 0 FROM webhook_events WHERE status = 'processed'", victim)
        _kill(victim)
    finally:
        if victim.poll() is None:
            victim.kill()
    [killed] = await _runs(db)
    assert (killed["outcome"], killed["lock_backend"]) == ("running", backend)
    text = await _cli_status(env)
    assert "runs running:   1" in text

    if backend == REDIS:
        # A SIGKILLed holder's Redis lock outlives it for up to a minute: the next run is busy
        # and must not touch the row (the lock is not free, so the holder may be alive).
        busy = await _run(env, "once")
        assert busy.stdout.strip() == "CLAIMED=0 OK=0 FAIL=0 DEAD=0"
        assert [r["outcome"] for r in await _runs(db)] == ["running", "busy"]
        await _run(env, "unlock")  # what the runbook says to do; the TTL would do it in <= 60 s

    for _ in range(400):  # the killed run's leases (5 s) run out, so the next run finishes its events
        row = await (
            await db.execute(
                "SELECT count(*) AS n FROM webhook_events WHERE status = 'processing' AND next_retry_at > now()"
            )
        ).fetchone()
        if row is not None and row["n"] == 0:
            break
        await asyncio.sleep(0.05)
    await _run(env, "once")
    runs = await _runs(db)
    assert runs[0]["outcome"] == "abandoned"
    assert f"its {backend} run lock was free" in runs[0]["error"]
    assert runs[-1]["outcome"] == "completed"
    row = await (
        await db.execute("SELECT count(*) AS n FROM webhook_events WHERE status <> 'processed'")
    ).fetchone()
    assert row is not None and row["n"] == 0  # and the killed run's events were finished by the next one

    text = await _cli_status(env)
    assert "runs running:   0" in text
    assert "abandoned runs: 1 in the last 24 h" in text
    assert any(line.split()[2] == "abandoned" for line in text.splitlines() if line.startswith("  20"))
    as_json = json.loads(await _cli_status(env, "--json"))
    assert (as_json["runs_running"], as_json["runs_abandoned_24h"]) == (0, 1)


async def _cli_status(env: dict[str, str], *args: str) -> str:
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-P", "-m", "tenrusl.cli", "status", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.slow
async def test_a_live_run_holding_the_other_lock_backend_is_left_alone(
    db: Connection, base_env: dict[str, str], redis_client: Any
) -> None:
    """During a Redis outage seen by one runner only, a Redis-locked run and an advisory-locked
    run overlap (docs/retry.md); the advisory holder must not call the live Redis run abandoned."""
    await seed_many(db, 40)
    live = _start({**base_env, **SLOW}, "run", "--batch-size", "5")
    try:
        await _wait_for(
            db,
            "SELECT count(*) > 0 FROM retry_runs WHERE lock_backend = 'redis' AND outcome = 'running'",
            live,
        )
        no_redis = {**base_env, "TENRUSL_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}  # refused
        other = await _run(no_redis, "run", "--max-events", "5")
        assert other.stdout.startswith("CLAIMED=5 ")
        assert live.poll() is None  # the Redis run was alive during the whole other run
        outcomes = {r["lock_backend"]: r["outcome"] for r in await _runs(db)}
        assert outcomes == {REDIS: "running", ADVISORY: "completed"}
        _, stderr = live.communicate(timeout=120)
        assert live.returncode == 0, stderr
    finally:
        if live.poll() is None:
            live.kill()
    outcomes = {r["lock_backend"]: r["outcome"] for r in await _runs(db)}
    assert outcomes == {REDIS: "completed", ADVISORY: "completed"}


@pytest.mark.slow
async def test_a_killed_retry_one_is_abandoned_once_its_lease_is_over(
    db: Connection, base_env: dict[str, str], seed: Seed
) -> None:
    """`retry one` takes no run lock; its row is judged by its lease (plus a grace) instead."""
    event_id = await seed(ref="pay-one", payment=True)
    env = {**base_env, "TENRUSL_REDIS_URL": "", "TENRUSL_PROCESSING_LEASE_SECONDS": "30"}
    victim = _start({**env, "TENRUSL_RETRY_DEBUG_EVENT_DELAY_MS": "60000"}, "one", event_id)
    try:
        await _wait_for(
            db, f"SELECT status = 'processing' FROM webhook_events WHERE id = '{event_id}'", victim
        )
        _kill(victim)
    finally:
        if victim.poll() is None:
            victim.kill()
    [killed] = await _runs(db)
    assert (killed["outcome"], killed["lock_backend"]) == ("running", None)

    # Within its lease the row may belong to a live `retry one`: a run that takes the lock
    # leaves it running.
    await _run(env, "once")
    assert [r["outcome"] for r in await _runs(db)] == ["running", "completed"]

    # Its lease (30 s) and the grace are over: the next run marks it abandoned.
    await db.execute(
        "UPDATE retry_runs SET started_at = started_at - make_interval(secs => %s) WHERE id = %s",
        (30 + ABANDON_GRACE_S + 1, killed["id"]),
    )
    await _run(env, "once")
    runs = {r["id"]: r for r in await _runs(db)}
    assert runs[killed["id"]]["outcome"] == "abandoned"
    assert "its lease ran out" in runs[killed["id"]]["error"]
    assert sorted(r["outcome"] for r in runs.values()) == ["abandoned", "completed", "completed"]


async def test_metrics_show_running_and_abandoned_runs(
    db: Connection, make_client: Any, settings: Any
) -> None:
    await db.execute(
        "INSERT INTO retry_runs (id, trigger, outcome, finished_at) VALUES "
        "('r1', 'cron', 'abandoned', now()), ('r2', 'cron', 'completed', now()), ('r3', 'cron', 'running', NULL)"
    )
    client = await make_client(settings)
    text = await (await client.admin.get("/metrics")).text()
    assert 'tenrusl_retry_runs_total{outcome="abandoned"} 1.0' in text
    assert 'tenrusl_retry_runs_total{outcome="completed"} 1.0' in text
    assert 'outcome="running"' not in text  # a gauge, not a counter that could go down
    assert "tenrusl_retry_runs_running 1.0" in text
    assert 'tenrusl_retry_last_run_outcome{outcome="completed"} 1.0' in text
