"""Backoff: the original's formulas, bounds, cap, base, floor, and each mode's distribution."""

from __future__ import annotations

import random
import statistics

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from retry_job.backoff import Backoff, exp_delay, format_table, jitter_delay, normalise_mode
from retry_job.policy import resolve_policy
from tenrusl.policy import RetryPolicy
from tenrusl.settings import Settings

HOUR_MS = 3_600_000
attempts = st.integers(min_value=1, max_value=60)
bases = st.integers(min_value=0, max_value=120_000)
caps = st.integers(min_value=0, max_value=86_400_000)
modes = st.sampled_from(["full", "equal", "decorrelated"])


def backoff(*, min_ms: int | None = None, **fields: object) -> Backoff:
    """A Backoff from a policy: the fields given, the policy's defaults for the rest."""
    if min_ms is not None:
        fields["min_delay_ms"] = min_ms
    return Backoff.from_policy(RetryPolicy(**fields))  # type: ignore[arg-type]


def test_exp_doubles_from_base_and_stops_at_cap() -> None:
    assert [exp_delay(n, 500, 30_000) for n in range(1, 9)] == [
        500,
        1000,
        2000,
        4000,
        8000,
        16000,
        30000,
        30000,
    ]
    assert exp_delay(1000, 60_000, 43_200_000) == 43_200_000  # no huge integers, no overflow
    assert exp_delay(0, 500, 30_000) == 500  # attempt is at least 1
    assert exp_delay(9, 500, 30_000, max_attempts=3) == 2000  # clamped to max attempts


def test_cap_below_base_is_raised_to_base() -> None:
    assert exp_delay(5, 500, 100) == 500


def test_an_unknown_mode_is_an_error_not_full() -> None:
    """The original mapped an unknown mode to full; here it is refused (Settings and the policy
    refuse it too), so a typo never runs with another jitter than the one asked for."""
    assert normalise_mode(" EQUAL ") == "equal"
    with pytest.raises(ValueError, match="linear"):
        normalise_mode("linear")
    with pytest.raises(ValueError):
        jitter_delay(1, 500, 30_000, "linear")


@settings(max_examples=300, deadline=None)
@given(attempts, bases, caps, modes, st.integers(min_value=0, max_value=2**32))
def test_every_delay_is_within_the_modes_bounds(n: int, base: int, cap: int, mode: str, seed: int) -> None:
    rng = random.Random(seed)
    exp = exp_delay(n, base, cap)
    d = jitter_delay(n, base, cap, mode, rng=rng)
    top = max(base, cap)
    assert 0 <= d <= top  # never above the cap
    if mode == "full":
        assert 0 <= d <= exp
    elif mode == "equal":
        assert exp // 2 <= d <= 2 * (exp // 2)
    else:
        assert base <= d <= max(base, min(top, 3 * max(base, exp)))  # never below base


@settings(max_examples=200, deadline=None)
@given(attempts, bases, caps, st.integers(min_value=0, max_value=10**8), st.integers(0, 2**32))
def test_decorrelated_uses_the_previous_delay(n: int, base: int, cap: int, prev: int, seed: int) -> None:
    d = jitter_delay(n, base, cap, "decorrelated", prev_ms=prev, rng=random.Random(seed))
    hi = min(max(base, cap), 3 * max(base, prev))
    assert base <= d <= max(base, hi)


@settings(max_examples=200, deadline=None)
@given(attempts, bases, caps, modes, st.integers(min_value=0, max_value=5000), st.integers(0, 2**32))
def test_the_min_delay_floors_every_delay(
    n: int, base: int, cap: int, mode: str, floor: int, seed: int
) -> None:
    b = backoff(mode=mode, base_ms=base, cap_ms=cap, max_attempts=100, min_ms=floor)
    d = b.delay(n, random.Random(seed))
    lo, hi = b.bounds(n)
    assert d >= floor
    assert lo <= d <= hi


def test_full_jitter_zero_becomes_the_min_delay() -> None:
    class Zero(random.Random):
        def randint(self, a: int, b: int) -> int:
            return a

    assert backoff(mode="full", base_ms=500, cap_ms=30_000, min_ms=250).delay(3, Zero()) == 250


def test_original_equal_mode_properties() -> None:
    # The original's own test: equal, base 500, cap 30000, attempts 1..5: within [0, cap], non-decreasing.
    rng = random.Random(7)
    for _ in range(200):
        delays = [jitter_delay(n, 500, 30_000, "equal", rng=rng) for n in range(1, 6)]
        assert all(0 <= d <= 30_000 for d in delays)
        lows = [exp_delay(n, 500, 30_000) // 2 for n in range(1, 6)]
        assert all(d >= lo for d, lo in zip(delays, lows, strict=True))
    # The ranges themselves never go down with the attempt number.
    b = backoff(mode="equal", base_ms=500, cap_ms=30_000, max_attempts=6, min_ms=0)
    bounds = [b.bounds(n) for n in range(1, 6)]
    assert bounds == sorted(bounds)


def test_full_mode_samples_are_not_all_zero() -> None:
    rng = random.Random(3)
    samples = [jitter_delay(3, 500, 30_000, "full", rng=rng) for _ in range(25)]
    assert all(0 <= s <= 30_000 for s in samples) and any(s > 0 for s in samples)


def _check_distribution(b: Backoff, attempt: int, rng: random.Random) -> None:
    lo, hi = b.bounds(attempt)
    samples = [b.delay(attempt, rng) for _ in range(20_000)]
    mean = statistics.fmean(samples)
    expected = b.expected(attempt)
    assert abs(mean - expected) <= 0.02 * (hi - lo) + 1, (b.mode, mean, expected)
    # Uniform over [lo, hi]: each quarter of the range holds about a quarter of the draws.
    width = (hi - lo) / 4
    quarters = [0, 0, 0, 0]
    for s in samples:
        quarters[min(3, int((s - lo) / width))] += 1
    assert all(4_400 <= q <= 5_600 for q in quarters), (b.mode, quarters)


def test_each_mode_is_uniform_over_its_range_with_the_expected_mean() -> None:
    rng = random.Random(20240601)
    for mode in ("full", "equal", "decorrelated"):
        b = backoff(mode=mode, base_ms=60_000, cap_ms=43_200_000, max_attempts=22, min_ms=0)
        for attempt in (1, 4, 12):
            _check_distribution(b, attempt, rng)


def test_expectation_matches_the_formulas() -> None:
    full = backoff(mode="full", base_ms=1000, cap_ms=10**9, min_ms=0)
    equal = backoff(mode="equal", base_ms=1000, cap_ms=10**9, min_ms=0)
    deco = backoff(mode="decorrelated", base_ms=1000, cap_ms=10**9, min_ms=0)
    assert full.expected(3) == 2000  # exp 4000 / 2
    assert equal.expected(3) == 3000  # 2000 + 2000/2
    assert deco.expected(3) == (1000 + 12000) / 2  # [base, 3*exp]
    # The floor raises the mean exactly: U{0..4000} floored at 1000.
    floored = backoff(mode="full", base_ms=1000, cap_ms=10**9, min_ms=1000)
    exact = statistics.fmean(max(1000, v) for v in range(0, 4001))
    assert abs(floored.expected(3) - exact) < 1e-6


def test_explicit_schedule_replaces_the_formula_and_its_last_delay_repeats() -> None:
    b = backoff(schedule_ms=(0, 5_000, 300_000), max_attempts=6, min_ms=250)
    assert [b.delay(n) for n in range(1, 6)] == [250, 5_000, 300_000, 300_000, 300_000]
    assert b.expected(2) == 5_000
    assert b.expected_total_ms() == 250 + 5_000 + 3 * 300_000


def test_default_policy_keeps_an_event_alive_for_72_hours_in_expectation() -> None:
    settings = Settings.from_env({})
    b = Backoff.from_policy(resolve_policy(settings))
    assert (b.mode, b.base_ms, b.cap_ms, b.max_attempts) == ("full", 60_000, 43_200_000, 22)
    total = b.expected_total_ms()
    assert total >= 72 * HOUR_MS
    # The number docs/retry.md quotes: sum over n = 1..21 of min(cap, base * 2^(n-1)) / 2.
    closed_form = sum(min(43_200_000, 60_000 * 2 ** (n - 1)) / 2 for n in range(1, 22))
    assert abs(total - closed_form) < 22 * 1  # the 250 ms floor changes each mean by < 1 ms
    assert round(total / HOUR_MS, 1) == 74.5
    table = format_table(b)
    assert "| 21 |" in table and "| 22 |" not in table and "74.5 h" in table


def test_docs_retry_md_tables_the_default_policy_exactly() -> None:
    """The table in docs/retry.md is what `tenrusl retry schedule` prints for the defaults."""
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "retry.md").read_text(encoding="utf-8")
    assert format_table(Backoff.from_policy(RetryPolicy())) in doc
