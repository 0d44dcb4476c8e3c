"""`tenrusl simulate` against a live receiver, for every provider module present."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import pytest

from receiver.keys import RATE_LIMITER
from receiver.simulate.cli import _simulate, register, run_simulation
from receiver.simulate.client import render_summary
from tenrusl.constants import PROVIDERS
from tests.simulate.conftest import receiver_url


def simulate_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    return parser.parse_args(["simulate", *argv, "--no-progress"])


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_simulate_counts_every_outcome(provider: str, sim_settings: Any, make_client: Any) -> None:
    settings = sim_settings(TENRUSL_PROVIDERS_ALLOWLIST=",".join(PROVIDERS))
    client = await make_client(settings)
    args = simulate_args(
        provider,
        "--url", receiver_url(client),
        "--count", "20",
        "--concurrency", "4",
        "--duplicate-rate", "0.1",
        "--tamper-rate", "0.1",
        "--seed", "42",
        "--with-payments",
    )  # fmt: skip
    summary = await run_simulation(args, settings)
    assert dict(summary.planned) == {"fresh": 16, "duplicate": 2, "tampered": 2}
    assert summary.outcomes["accepted"] == 16, summary.outcomes
    assert summary.outcomes["duplicate"] == 2
    assert summary.outcomes["rejected"] == 2
    assert summary.outcomes["rate_limited"] == 0 and summary.outcomes["error"] == 0
    assert summary.tampered["rejected_401"] == 2
    assert summary.ok
    assert "payments created 16, succeeded after the webhooks 16" in summary.notes


async def test_simulate_without_redelivery_reports_429_as_given_up(
    sim_settings: Any, make_client: Any
) -> None:
    settings = sim_settings(TENRUSL_PROVIDERS_ALLOWLIST="mock", TENRUSL_RATE_WEBHOOKS_PER_MINUTE="5")
    client = await make_client(settings)
    client.server.app[RATE_LIMITER].clock = lambda: 1_700_000_000.0  # no minute boundary mid-test
    args = simulate_args(
        "mock", "--url", receiver_url(client), "--count", "8", "--concurrency", "1", "--max-redeliveries", "0"
    )
    summary = await run_simulation(args, settings)
    assert summary.outcomes["accepted"] == 5 and summary.outcomes["rate_limited"] == 3
    assert summary.redeliveries == 0 and summary.gave_up == 3
    assert not summary.ok  # three events were never stored


async def stored_events(db: Any, provider: str) -> tuple[int, int]:
    """(rows, distinct event ids) the receiver stored for ``provider``."""
    cur = await db.execute(
        "SELECT count(*) AS n, count(DISTINCT event_id) AS ids FROM webhook_events WHERE provider = %s",
        (provider,),
    )
    row = await cur.fetchone()
    return int(row["n"]), int(row["ids"])


async def test_simulate_redelivers_after_retry_after_like_a_provider(
    sim_settings: Any, make_client: Any, db: Any
) -> None:
    """2/s against 8 deliveries, 4 at a time: some get 429, wait Retry-After, and are redelivered.

    Every event ends stored exactly once, the duplicates still come back as duplicates, and each
    redelivery answers one 429 the receiver counted.
    """
    settings = sim_settings(TENRUSL_PROVIDERS_ALLOWLIST="mock", TENRUSL_RATE_WEBHOOKS_PER_SECOND="2")
    client = await make_client(settings)
    args = simulate_args(
        "mock",
        "--url", receiver_url(client),
        "--count", "8",
        "--duplicate-rate", "0.25",
        "--concurrency", "4",
        "--seed", "7",
        "--with-payments",
    )  # fmt: skip
    summary = await run_simulation(args, settings)
    assert summary.outcomes["accepted"] == 6 and summary.outcomes["duplicate"] == 2, summary.outcomes
    assert summary.outcomes["rate_limited"] == 0 and summary.outcomes["error"] == 0
    assert summary.gave_up == 0 and summary.ok
    # 4 sent at once within one 1 s window (or two, if the burst straddles a boundary): >= 2 refused
    assert summary.delayed >= 2 and summary.redeliveries >= summary.delayed
    assert summary.waited_s == summary.redeliveries  # each wait is the Retry-After: 1 s here
    metrics = await (await client.admin.get("/metrics")).text()
    refused = f'tenrusl_webhooks_total{{outcome="rate_limited",provider="mock"}} {summary.redeliveries}.0'
    assert refused in metrics
    assert await stored_events(db, "mock") == (6, 6)
    assert "payments created 6, succeeded after the webhooks 6" in summary.notes
    text = render_summary(summary)
    assert f"redelivered after 429/503: {summary.delayed} deliveries delayed" in text
    assert "0 gave up" in text


async def test_simulate_gives_up_when_redeliveries_run_out_and_exits_1(
    sim_settings: Any, make_client: Any, db: Any, capsys: Any
) -> None:
    """A per-minute quota with the clock pinned never frees up: the capped waits end, the run fails."""
    settings = sim_settings(TENRUSL_PROVIDERS_ALLOWLIST="mock", TENRUSL_RATE_WEBHOOKS_PER_MINUTE="2")
    client = await make_client(settings)
    client.server.app[RATE_LIMITER].clock = lambda: 1_700_000_000.0  # Retry-After stays 40 s
    args = simulate_args(
        "mock",
        "--url", receiver_url(client),
        "--count", "4",
        "--concurrency", "1",
        "--max-redeliveries", "2",
        "--max-wait", "0.05",
    )  # fmt: skip
    code = await asyncio.to_thread(_simulate, args, settings)  # the command's own exit status
    out = capsys.readouterr().out
    assert code == 1, out
    assert "redelivered after 429/503: 2 deliveries delayed (4 redeliveries" in out
    assert "2 gave up" in out
    assert await stored_events(db, "mock") == (2, 2)


async def test_simulate_flags_an_accepted_tamper(sim_settings: Any, make_client: Any) -> None:
    """A receiver that does not check bodies (here: xendit's token, forged) must fail the run."""
    settings = sim_settings(TENRUSL_PROVIDERS_ALLOWLIST="xendit")
    client = await make_client(settings)
    args = simulate_args("xendit", "--url", receiver_url(client), "--count", "10", "--tamper-rate", "0.2")
    summary = await run_simulation(args, settings)
    assert summary.tampered["rejected_401"] == 2 and summary.ok  # the forged token is refused
    assert any("static token" in note for note in summary.notes)


async def test_simulate_without_a_receiver_is_an_error(sim_settings: Any) -> None:
    from tenrusl.embedded import free_port

    args = simulate_args("mock", "--url", f"http://127.0.0.1:{free_port()}", "--count", "2")
    summary = await run_simulation(args, sim_settings())
    assert summary.outcomes["error"] == 2 and not summary.ok
