"""Fixtures for the retry runner: a store on the test database and a row factory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from tenrusl.db import Connection, open_pool
from tenrusl.ids import new_id
from tenrusl.settings import Settings
from tenrusl.store import Store

Seed = Callable[..., Awaitable[str]]

# The least a failed event waits before its next attempt in these tests. With full jitter a delay can
# be as short as the 250 ms floor, so on a busy machine an event that failed early in a test could be
# due again (claimed twice in one drain, or counted as due backlog) before the test's last check.
NOT_DUE_AGAIN_MS = 3_600_000


@pytest.fixture
def no_redis_settings(make_settings: Callable[..., Settings]) -> Settings:
    """Settings without Redis: the run lock is the advisory lock, never shared with other tests.
    A failed event is not due again for an hour (NOT_DUE_AGAIN_MS)."""
    return make_settings().replace(redis_url=None, retry_min_delay_ms=NOT_DUE_AGAIN_MS)


@pytest.fixture
async def store(settings: Settings) -> AsyncIterator[Store]:
    async with open_pool(settings) as pool:
        yield Store(pool)


@pytest.fixture
def seed(db: Connection) -> Seed:
    """``await seed(status="failed", attempts=1, due_in_s=-60, ...)`` -> the new row's id.

    ``due_in_s`` None leaves next_retry_at NULL (as for processed/dead rows). ``ref`` puts a
    payment reference in the payload; ``payment`` also creates that payment (pending).
    """

    async def factory(
        *,
        status: str = "failed",
        attempts: int = 1,
        due_in_s: float | None = -60,
        provider: str = "mock",
        ref: str | None = None,
        payment: bool = False,
        payment_status: str = "succeeded",
        last_error: str | None = None,
        last_attempt_ago_s: float | None = None,
    ) -> str:
        event_id = new_id()
        payload: dict[str, Any] = {"id": f"evt_{event_id}", "status": payment_status}
        if ref:
            payload["provider_ref"] = ref
            if payment:
                await db.execute(
                    "INSERT INTO payments (id, provider, provider_ref, amount, currency) "
                    "VALUES (%s, %s, %s, 1000, 'IDR')",
                    (new_id(), provider, ref),
                )
        body = json.dumps(payload)
        await db.execute(
            """
            INSERT INTO webhook_events (id, provider, event_id, event_id_source, status, attempts,
                                        next_retry_at, last_attempt_at, last_error, payload_raw, payload)
            VALUES (%(id)s, %(provider)s, %(event_id)s, 'payload', %(status)s, %(attempts)s,
                    CASE WHEN %(due)s::float8 IS NULL THEN NULL
                         ELSE now() + make_interval(secs => %(due)s::float8) END,
                    now() - make_interval(secs => coalesce(%(ago)s::float8, 120)),
                    %(last_error)s, %(raw)s, %(payload)s::jsonb)
            """,
            {
                "id": event_id,
                "provider": provider,
                "event_id": payload["id"],
                "status": status,
                "attempts": attempts,
                "due": due_in_s,
                "ago": last_attempt_ago_s,
                "last_error": last_error,
                "raw": body.encode(),
                "payload": body,
            },
        )
        return event_id

    return factory


async def event_row(db: Connection, event_id: str) -> dict[str, Any]:
    cur = await db.execute("SELECT * FROM webhook_events WHERE id = %s", (event_id,))
    row = await cur.fetchone()
    assert row is not None
    return row


async def seed_many(
    db: Connection, count: int, *, status: str = "failed", with_payments: bool = True
) -> None:
    """``count`` due mock events by generate_series, each naming its own pending payment."""
    if with_payments:
        await db.execute(
            "INSERT INTO payments (id, provider, provider_ref, amount, currency) "
            "SELECT 'pay_' || g, 'mock', 'ref_' || g, 1000, 'IDR' FROM generate_series(1, %s) g",
            (count,),
        )
    await db.execute(
        """
        INSERT INTO webhook_events (id, provider, event_id, event_id_source, status, attempts,
                                    next_retry_at, last_attempt_at, payload_raw, payload)
        SELECT 'ev_' || lpad(g::text, 8, '0'), 'mock', 'evt_' || g, 'payload', %s, 1,
               now() - interval '1 hour' + g * interval '1 ms', now() - interval '2 hours',
               convert_to(p::text, 'UTF8'), p
          FROM generate_series(1, %s) g,
               LATERAL (SELECT jsonb_build_object('id', 'evt_' || g, 'status', 'succeeded',
                                                  'provider_ref', 'ref_' || g) AS p) x
        """,
        (status, count),
    )
    await db.execute("ANALYZE webhook_events")


def tenrusl_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """``tenrusl ARGS`` in a child process with ``env`` over this one's environment."""
    return subprocess.run(
        [sys.executable, "-P", "-m", "tenrusl.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
