"""A runner SIGKILLed mid-batch loses nothing: the next run after the lease finishes its events."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys

import pytest

from tenrusl.db import Connection
from tests.conftest import fetch_row
from tests.retry_job.conftest import seed_many

EVENTS = 60


async def _count(db: Connection, where: str) -> int:
    row = await fetch_row(db, f"SELECT count(*) AS n FROM webhook_events WHERE {where}")
    return int(row["n"])


def _start(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-P", "-m", "retry_job", "run", "--lease-seconds", "5", "--batch-size", "20"],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
async def test_sigkill_mid_batch_loses_nothing(db: Connection, base_env: dict[str, str]) -> None:
    await seed_many(db, EVENTS)
    env = {**base_env, "TENRUSL_REDIS_URL": "", "TENRUSL_RETRY_DEBUG_EVENT_DELAY_MS": "100"}
    victim = _start(env)
    try:
        # Until a batch is done and the next one claimed (a batch is settled together with the
        # next claim; both commit within milliseconds, in either order).
        for _ in range(600):
            if await _count(db, "status = 'processed'") >= 5 and await _count(db, "status = 'processing'"):
                break
            await asyncio.sleep(0.05)
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=30)
    finally:
        if victim.poll() is None:
            victim.kill()
    assert victim.returncode == -signal.SIGKILL
    in_flight = await _count(db, "status = 'processing'")
    done_before = await _count(db, "status = 'processed'")
    assert in_flight > 0 and 0 < done_before < EVENTS  # killed with claims outstanding

    # Wait for the leases to run out (5 s), then a normal run finishes everything.
    for _ in range(400):
        if await _count(db, "status = 'processing' AND next_retry_at > now()") == 0:
            break
        await asyncio.sleep(0.05)
    survivor = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-P", "-m", "retry_job", "once"],
        env={**os.environ, **base_env, "TENRUSL_REDIS_URL": ""},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert survivor.returncode == 0, survivor.stderr
    assert (
        survivor.stdout.strip() == f"CLAIMED={EVENTS - done_before} OK={EVENTS - done_before} FAIL=0 DEAD=0"
    )
    assert await _count(db, "status = 'processed'") == EVENTS
    # Processed exactly once: an event's payment moved once, and no event took more than the
    # claim that was interrupted plus the one that finished it.
    assert await _count(db, "attempts > 3") == 0
    row = await fetch_row(db, "SELECT count(*) AS n FROM payments WHERE status = 'succeeded'")
    assert row["n"] == EVENTS
    runs = await (await db.execute("SELECT outcome FROM retry_runs ORDER BY started_at")).fetchall()
    # The killed run's row said `running` until the survivor took the lock, which proves it dead.
    assert [r["outcome"] for r in runs] == ["abandoned", "completed"]
