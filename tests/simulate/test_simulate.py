"""`tenrusl simulate` against a live receiver, for every provider module present."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from receiver.keys import RATE_LIMITER
from receiver.simulate.cli import register, run_simulation
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


async def test_simulate_reports_rate_limiting(sim_settings: Any, make_client: Any) -> None:
    settings = sim_settings(TENRUSL_PROVIDERS_ALLOWLIST="mock", TENRUSL_RATE_WEBHOOKS_PER_MINUTE="5")
    client = await make_client(settings)
    client.server.app[RATE_LIMITER].clock = lambda: 1_700_000_000.0  # no minute boundary mid-test
    args = simulate_args("mock", "--url", receiver_url(client), "--count", "8", "--concurrency", "1")
    summary = await run_simulation(args, settings)
    assert summary.outcomes["accepted"] == 5 and summary.outcomes["rate_limited"] == 3
    assert summary.ok  # 429 is reported, not a failure of the receiver


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
