"""The policy file's versions and the gradual resume: pure functions of tenrusl/policy.py."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from retry_job.policy import explain_policy
from tenrusl.policy import (
    KNOB,
    RetryPolicy,
    effective_cap,
    parse_policy_document,
    ramp_ends_at,
)
from tenrusl.settings import Settings

RESUMED = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)


def test_a_version_1_file_keeps_its_meaning_limit_was_the_claim_size(tmp_path: Path) -> None:
    """An old ConfigMap (written before batchSize existed) is read as it was meant."""
    old = {"version": 1, "paused": False, "limit": 50, "maxAttempts": 9, "backoff": {"mode": "equal"}}
    assert parse_policy_document(old) == {
        "paused": False,
        "batch_size": 50,
        "max_attempts": 9,
        "mode": "equal",
    }
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(old))
    env = {"TENRUSL_POLICY_FILE": str(path), "TENRUSL_SCHEDULER_LIMIT": "700"}
    resolved = explain_policy(Settings.from_env(env))
    # The per-run limit stays the environment's; the file's limit is the claim size.
    assert (resolved.policy.limit, resolved.policy.batch_size) == (700, 50)
    assert resolved.sources["limit"] == "env TENRUSL_SCHEDULER_LIMIT"
    assert resolved.sources["batchSize"] == "policy file"
    assert resolved.policy.ramp_minutes == KNOB["ramp_minutes"].default


@pytest.mark.parametrize(
    "doc",
    [
        {"version": 1, "batchSize": 10},  # version 1 had no such field
        {"version": 1, "resume": {"rampMinutes": 5}},
        {"version": 1, "resumedAt": "2026-01-01T10:00:00Z"},
        {"version": 3},
        {"version": True},
        {"version": 2, "resume": {"steps": 3}},
        {"version": 2, "resume": []},
        {"version": 2, "resumedAt": "yesterday"},
        {"version": 2, "resumedAt": "2026-01-01T10:00:00"},  # no zone
    ],
)
def test_what_a_version_does_not_have_is_an_error(doc: dict) -> None:
    with pytest.raises(ValueError):
        parse_policy_document(doc)


def test_version_2_round_trips_every_field() -> None:
    policy = RetryPolicy(
        paused=False,
        limit=50,
        batch_size=20,
        ramp_minutes=30,
        ramp_floor=5,
        resumed_at=RESUMED,
        paused_at=None,
        schedule_ms=(1000, 2000),
        providers=("stripe",),
        source={"name": "default"},
    )
    doc = policy.to_file()
    assert doc["version"] == 2
    assert (doc["limit"], doc["batchSize"], doc["resume"]) == (50, 20, {"rampMinutes": 30, "floor": 5})
    assert doc["resumedAt"] == "2026-01-01T10:00:00Z" and "pausedAt" not in doc
    assert RetryPolicy().with_overrides(parse_policy_document(json.loads(json.dumps(doc)))) == policy


def test_an_absent_resume_block_keeps_the_lower_layer() -> None:
    parsed = parse_policy_document({"version": 2, "limit": 10})
    assert parsed == {"limit": 10}
    assert RetryPolicy().with_overrides(parsed).ramp_minutes == KNOB["ramp_minutes"].default


@pytest.mark.parametrize(
    ("minutes_after", "cap"),
    [
        (-1, 10),  # a clock behind the operator's: the floor
        (0, 10),
        (5, 55),  # halfway: floor + (limit - floor) / 2
        (9, 91),
        (10, 100),
        (60, 100),
    ],
)
def test_the_cap_climbs_in_a_straight_line_from_floor_to_limit(minutes_after: int, cap: int) -> None:
    policy = RetryPolicy(limit=100, ramp_minutes=10, ramp_floor=10, resumed_at=RESUMED)
    assert effective_cap(policy, RESUMED + timedelta(minutes=minutes_after)) == cap


def test_no_ramp_paused_and_floors_above_the_limit() -> None:
    later = RESUMED + timedelta(minutes=1)
    assert effective_cap(RetryPolicy(limit=100), later) == 100, "never paused: the limit"
    assert effective_cap(RetryPolicy(limit=100, resumed_at=RESUMED, ramp_minutes=0), later) == 100
    assert effective_cap(RetryPolicy(limit=100, paused=True, resumed_at=RESUMED), later) == 0
    high_floor = RetryPolicy(limit=40, ramp_floor=500, ramp_minutes=10, resumed_at=RESUMED)
    assert effective_cap(high_floor, later) == 40, "a floor above the limit is the limit"
    assert ramp_ends_at(RetryPolicy(limit=100, resumed_at=RESUMED, ramp_minutes=10)) == RESUMED + timedelta(
        minutes=10
    )
    assert ramp_ends_at(RetryPolicy(limit=100)) is None
