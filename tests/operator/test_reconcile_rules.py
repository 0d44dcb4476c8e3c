"""The pure reconcile rules: spec to policy file, conditions and status, without any server."""

from __future__ import annotations

import json

import pytest
from tenrusl_operator import crd, reconcile
from tenrusl_operator.reconcile import Outcome

from tenrusl.policy import PolicyError, RetryPolicy, parse_policy_document

META = {"name": "default", "namespace": "payments", "uid": "u-1", "generation": 4}


def test_policy_file_is_what_the_runner_parses() -> None:
    spec = {"paused": True, "limit": 10, "backoff": {"mode": "decorrelated", "schedule": [1000, 2000]},
            "providers": ["stripe"], "cronJobName": "tenrusl-retry"}  # fmt: skip
    policy = reconcile.policy_from_spec(spec, reconcile.source_of(META))
    text = reconcile.render_policy_file(policy)

    parsed = parse_policy_document(json.loads(text))
    assert RetryPolicy().with_overrides(parsed) == policy
    assert parsed["paused"] is True and parsed["limit"] == 10 and parsed["schedule_ms"] == (1000, 2000)
    assert parsed["source"] == {"namespace": "payments", "name": "default", "generation": 4, "uid": "u-1"}
    assert text == reconcile.render_policy_file(policy), "the same policy must render the same bytes"


@pytest.mark.parametrize(
    ("spec", "error", "field"),
    [
        ({"limit": 0}, PolicyError, "limit"),
        ({"backoff": {"baseMs": 10, "capMs": 5}}, PolicyError, "capMs"),
        ({"providers": ["visa"]}, PolicyError, "providers"),
        ({"paused": "yes"}, PolicyError, "paused"),
        ({"maxAttempts": 1, "backoff": {"schedule": [1, 2]}}, crd.SpecError, "schedule"),
    ],
)
def test_invalid_spec_names_the_field(spec: dict, error: type[Exception], field: str) -> None:
    with pytest.raises(error, match=field):
        reconcile.policy_from_spec(spec, {})


def test_names_default_from_the_policy() -> None:
    assert reconcile.cronjob_name({}) == "tenrusl-retry"
    assert reconcile.configmap_name("eu", {}) == "eu-policy"
    assert reconcile.configmap_name("eu", {"configMapName": "x"}) == "x"


def test_configmap_is_owned_by_the_policy() -> None:
    body = reconcile.render_configmap("default-policy", META, RetryPolicy(paused=True))
    (owner,) = body["metadata"]["ownerReferences"]
    assert owner == {"apiVersion": "tenrusl.io/v1alpha1", "kind": "WebhookRetryPolicy", "name": "default",
                     "uid": "u-1", "controller": True, "blockOwnerDeletion": True}  # fmt: skip
    assert json.loads(body["data"]["policy.json"])["paused"] is True


def test_conditions_keep_transition_time_while_status_holds() -> None:
    first = reconcile.conditions(Outcome(paused=False), 1, None, now="2026-01-01T00:00:00Z")
    again = reconcile.conditions(Outcome(paused=False), 2, first, now="2026-01-01T00:05:00Z")
    paused = reconcile.conditions(Outcome(paused=True), 3, again, now="2026-01-01T00:09:00Z")

    by_type = {c["type"]: c for c in again}
    assert by_type["Paused"]["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    assert by_type["Paused"]["observedGeneration"] == 2
    by_type = {c["type"]: c for c in paused}
    assert by_type["Paused"] | {"lastTransitionTime": None} == {
        "type": "Paused", "status": "True", "reason": "PausedBySpec", "lastTransitionTime": None,
        "message": by_type["Paused"]["message"], "observedGeneration": 3,
    }  # fmt: skip
    assert by_type["Paused"]["lastTransitionTime"] == "2026-01-01T00:09:00Z"
    assert by_type["Ready"]["lastTransitionTime"] == "2026-01-01T00:00:00Z"


def test_degraded_outcome_reports_reason_and_keeps_observed_generation() -> None:
    outcome = Outcome(None, "CronJobNotFound", "CronJob payments/tenrusl-retry not found", degraded=True)
    status = reconcile.status_patch(outcome, META, {}, {"observedGeneration": 3}, None)
    by_type = {c["type"]: c for c in status["conditions"]}
    assert "observedGeneration" not in status, "a spec that was not applied is not observed"
    assert by_type["Degraded"]["status"] == "True" and by_type["Degraded"]["reason"] == "CronJobNotFound"
    assert by_type["Ready"]["status"] == "False"
    assert by_type["Paused"]["status"] == "Unknown"


def test_status_carries_cronjob_run_times_and_skips_no_op_writes() -> None:
    cronjob = {"spec": {"suspend": True}, "status": {"lastScheduleTime": "T1", "lastSuccessfulTime": "T0"}}
    status = reconcile.status_patch(Outcome(paused=True), META, {}, {}, cronjob)
    assert (status["lastScheduleTime"], status["lastSuccessfulTime"]) == ("T1", "T0")
    assert status["observedGeneration"] == 4
    assert reconcile.status_changed({}, status)
    again = reconcile.status_patch(Outcome(paused=True), META, {}, status, cronjob)
    assert not reconcile.status_changed(status, again)


OLD_STATUS = {"observedGeneration": 4, "conditions": []}


@pytest.mark.parametrize(
    ("meta", "spec", "status", "expected"),
    [
        # Applied as it is by an operator from before batchSize: its limit was the claim size.
        (META, {"limit": 50}, OLD_STATUS, {"batchSize": 50, "limit": 2000}),
        (
            META,
            {"limit": 200, "batchSize": 200},
            OLD_STATUS,
            {"batchSize": 200, "limit": 2000},
        ),  # defaulted on read
        (META, {"limit": 50}, {**OLD_STATUS, "policyFileVersion": 2}, None),  # this operator's
        ({**META, "generation": 5}, {"limit": 50}, OLD_STATUS, None),  # edited since
        (META, {"limit": 50}, {}, None),  # never reconciled: new
        (META, {}, OLD_STATUS, None),  # nothing to move
        (
            {**META, "annotations": {reconcile.MIGRATED: "limit 50 -> batchSize"}},
            {"limit": 2000},
            OLD_STATUS,
            None,
        ),
    ],
)
def test_which_policies_are_migrated(meta: dict, spec: dict, status: dict, expected: dict | None) -> None:
    assert reconcile.migrate_spec(meta, spec, status) == expected


def test_pause_times_date_a_pause_and_its_end() -> None:
    from datetime import UTC, datetime

    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    assert reconcile.pause_times(False, {}, now) == {"pausedAt": None, "resumedAt": None}
    assert reconcile.pause_times(True, {}, now) == {"pausedAt": "2026-01-01T12:00:00Z", "resumedAt": None}
    paused = {"pausedAt": "2026-01-01T11:00:00Z", "resumedAt": "2025-12-31T00:00:00Z"}
    assert reconcile.pause_times(True, paused, now) == paused, "a pause keeps its start"
    assert reconcile.pause_times(False, paused, now) == {
        "pausedAt": None,
        "resumedAt": "2026-01-01T12:00:00Z",
    }
    resumed = {"resumedAt": "2026-01-01T11:00:00Z"}
    assert reconcile.pause_times(False, resumed, now) == {
        "pausedAt": None,
        "resumedAt": "2026-01-01T11:00:00Z",
    }
    older = {
        "conditions": [{"type": "Paused", "status": "True", "lastTransitionTime": "2026-01-01T09:00:00Z"}]
    }
    assert reconcile.pause_times(True, older, now)["pausedAt"] == "2026-01-01T09:00:00Z"
    policy = reconcile.with_pause_times(RetryPolicy(limit=100, ramp_minutes=10, ramp_floor=10),
                                        reconcile.pause_times(False, paused, now))  # fmt: skip
    assert reconcile.policy_status(policy, now) == {
        "pausedAt": None, "resumedAt": "2026-01-01T12:00:00Z", "cap": 10, "policyFileVersion": 2,
    }  # fmt: skip
