"""Retry delays: exponential backoff with full, equal or decorrelated jitter, or a fixed schedule.

Pure functions, no I/O; randomness comes from an injectable :class:`random.Random` so every mode
can be tested alone and reproduced. The formulas are the original's (docs/retry.md, "Backoff"):

* ``exp(n) = min(cap, base * 2**(n-1))`` for attempt ``n >= 1`` (clamped to ``max_attempts``);
* **full**: a uniform integer in ``[0, exp]``;
* **equal**: ``half = exp // 2``, then ``half`` + a uniform integer in ``[0, half]``;
* **decorrelated**: ``prev = max(base, prev_ms if given else exp)``, ``hi = min(cap, 3 * prev)``;
  ``base`` when ``hi <= base``, else a uniform integer in ``[base, hi]``.

Two things differ from the original, on purpose:

* an explicit **schedule** (a list of delays, as Svix and Standard Webhooks publish) replaces the
  formula when given: attempt ``n`` waits ``schedule[n-1]``, and the last entry repeats;
* every delay is floored at ``min_ms`` (``TENRUSL_RETRY_MIN_DELAY_MS``), so full jitter can never
  schedule an event "now" and spin it (docs/design-notes.md, defect 20).

"Attempt n" is the attempt that just failed: after attempt ``n`` the event waits
``delay(n)`` before attempt ``n + 1``. With ``max_attempts = M`` an event therefore waits ``M - 1``
times before it is dead.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from tenrusl.policy import BACKOFF_MODES, RetryPolicy


def normalise_mode(mode: str) -> str:
    """Lower-cased and trimmed; an unknown mode is a ValueError, never quietly ``full``.

    (The original mapped anything unknown to ``full``; a policy with a typo would then run with
    another jitter than the one its author asked for.)
    """
    cleaned = mode.strip().lower()
    if cleaned not in BACKOFF_MODES:
        raise ValueError(f"backoff mode {mode!r} is not one of {', '.join(BACKOFF_MODES)}")
    return cleaned


def exp_delay(attempt: int, base_ms: int, cap_ms: int, max_attempts: int = 0) -> int:
    """The un-jittered exponential delay after ``attempt``, capped."""
    attempt = max(1, attempt)
    if max_attempts > 0:
        attempt = min(attempt, max_attempts)
    base = max(0, base_ms)
    cap = max(base, cap_ms)
    # Compare exponents first: 2**(attempt-1) for a large attempt is a huge int for no reason.
    if base == 0:
        return 0
    if attempt - 1 >= cap.bit_length():
        return cap
    return min(cap, base * (1 << (attempt - 1)))


def _bounds(
    attempt: int, base_ms: int, cap_ms: int, mode: str, max_attempts: int, prev_ms: int | None
) -> tuple[int, int]:
    """The inclusive range ``[lo, hi]`` the jittered delay is drawn from (before the floor)."""
    base = max(0, base_ms)
    cap = max(base, cap_ms)
    exp = exp_delay(attempt, base, cap, max_attempts)
    mode = normalise_mode(mode)
    if mode == "equal":
        half = exp // 2
        return half, half + half
    if mode == "decorrelated":
        prev = max(base, exp if prev_ms is None else prev_ms)
        hi = min(cap, prev * 3)
        return (base, base) if hi <= base else (base, hi)
    return 0, max(0, exp)


def jitter_delay(
    attempt: int,
    base_ms: int,
    cap_ms: int,
    mode: str,
    max_attempts: int = 0,
    prev_ms: int | None = None,
    rng: random.Random | None = None,
) -> int:
    """One delay in ms for the attempt that just failed, exactly the original's formula."""
    lo, hi = _bounds(attempt, base_ms, cap_ms, mode, max_attempts, prev_ms)
    return lo if hi <= lo else (rng or random).randint(lo, hi)


def _mean_at_least(lo: int, hi: int, floor: int) -> float:
    """E[max(floor, U)] for U uniform over the integers ``lo..hi``."""
    if floor <= lo:
        return (lo + hi) / 2
    if floor >= hi:
        return float(floor)
    count = hi - lo + 1
    below = floor - lo  # values lo..floor-1 become floor
    above_sum = (floor + hi) * (hi - floor + 1) / 2
    return (below * floor + above_sum) / count


@dataclass(frozen=True)
class Backoff:
    """A retry schedule: the mode and its numbers, or an explicit list of delays.

    Built only from a policy (:meth:`from_policy`), so its numbers have one source: the policy
    table in tenrusl/policy.py. ``delay(n)`` draws the wait after failed attempt ``n``;
    ``expected(n)`` is its mean, which is what the docs/retry.md table and the ">= 72 h" guarantee
    are computed from. For decorrelated mode the mean follows the original's rule ``prev = exp``
    (the runner passes the event's real previous delay, which makes the walk random).
    """

    mode: str
    base_ms: int
    cap_ms: int
    max_attempts: int
    schedule_ms: tuple[int, ...]
    min_ms: int

    @classmethod
    def from_policy(cls, policy: RetryPolicy) -> Backoff:
        return cls(
            mode=normalise_mode(policy.mode),
            base_ms=policy.base_ms,
            cap_ms=policy.cap_ms,
            max_attempts=policy.max_attempts,
            schedule_ms=tuple(policy.schedule_ms),
            min_ms=policy.min_delay_ms,
        )

    def delay(self, attempt: int, rng: random.Random | None = None, prev_ms: int | None = None) -> int:
        if self.schedule_ms:
            raw = self.schedule_ms[min(max(1, attempt), len(self.schedule_ms)) - 1]
        else:
            raw = jitter_delay(attempt, self.base_ms, self.cap_ms, self.mode, self.max_attempts, prev_ms, rng)
        return max(self.min_ms, raw)

    def bounds(self, attempt: int) -> tuple[int, int]:
        """Smallest and largest possible delay after ``attempt`` (floor included)."""
        if self.schedule_ms:
            d = max(self.min_ms, self.schedule_ms[min(max(1, attempt), len(self.schedule_ms)) - 1])
            return d, d
        lo, hi = _bounds(attempt, self.base_ms, self.cap_ms, self.mode, self.max_attempts, None)
        return max(self.min_ms, lo), max(self.min_ms, hi)

    def expected(self, attempt: int) -> float:
        """The mean delay after ``attempt``, in ms (exact: the draws are uniform integers)."""
        if self.schedule_ms:
            return float(self.bounds(attempt)[0])
        lo, hi = _bounds(attempt, self.base_ms, self.cap_ms, self.mode, self.max_attempts, None)
        return _mean_at_least(lo, hi, self.min_ms)

    def expected_total_ms(self) -> float:
        """Mean time from the first attempt to the last one (``max_attempts - 1`` waits)."""
        return sum(self.expected(n) for n in range(1, self.max_attempts))

    def table(self) -> list[ScheduleRow]:
        """One row per wait: the per-attempt table of docs/retry.md."""
        rows: list[ScheduleRow] = []
        total = 0.0
        for n in range(1, self.max_attempts):
            lo, hi = self.bounds(n)
            mean = self.expected(n)
            total += mean
            rows.append(ScheduleRow(n, lo, mean, hi, total))
        return rows


@dataclass(frozen=True)
class ScheduleRow:
    attempt: int  # the attempt that failed
    min_ms: int
    expected_ms: float
    max_ms: int
    cumulative_expected_ms: float


def human(ms: float) -> str:
    """``90061000`` -> ``1d 1h 1m 1s``; sub-second values in ms."""
    if ms < 1000:
        return f"{ms:.0f}ms"
    seconds = round(ms / 1000)
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size or (unit == "s" and not parts):
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return " ".join(parts)


def format_table(backoff: Backoff, rows: Sequence[ScheduleRow] | None = None) -> str:
    """A Markdown table of ``backoff.table()``, for `tenrusl retry schedule` and docs/retry.md."""
    rows = backoff.table() if rows is None else rows
    lines = [
        "| after attempt | min | expected | max | expected total |",
        "|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.attempt} | {human(r.min_ms)} | {human(r.expected_ms)} | {human(r.max_ms)} "
            f"| {human(r.cumulative_expected_ms)} |"
        )
    total = rows[-1].cumulative_expected_ms if rows else 0.0
    lines.append("")
    lines.append(
        f"Attempt {backoff.max_attempts} is the last; when it fails the event is `dead`. "
        f"Expected time from the first attempt to the last: {total / 3_600_000:.1f} h."
    )
    return "\n".join(lines)
