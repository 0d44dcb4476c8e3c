"""The gradual resume on kmock: the operator dates a pause and its end, moves status.cap along the
ramp on its timer, writes resumedAt into the policy file, and exports paused, since and cap on
/metrics; an operator clock stands in for the wall clock, so the test steps minutes without waiting.
And the migration of a policy written before batchSize existed."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest
from tenrusl_operator import reconcile

from tests.operator.conftest import (
    CONFIGMAPS,
    CRONJOBS,
    NAMESPACE,
    WRP,
    Cluster,
    RunPlugin,
    StartOperator,
    condition,
    cronjob_body,
    metrics_memo,
    policy_body,
    scrape,
)
from tests.operator.test_reconcile_on_kmock import posted_reasons

T0 = datetime(2026, 5, 4, 3, 0, tzinfo=UTC)
POLICY = f"{NAMESPACE}/default"


class Clock:
    """The operator's clock (reconcile.utcnow), moved by the test."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock(T0)
    monkeypatch.setattr(reconcile, "utcnow", fake)
    return fake


def status(cluster: Cluster) -> dict[str, Any]:
    return cluster.must(WRP, "default").get("status") or {}


def has_cap(cluster: Cluster, cap: int) -> bool:
    return status(cluster).get("cap") == cap


def reconciled(cluster: Cluster, name: str) -> bool:
    return "cap" in (cluster.must(WRP, name).get("status") or {})


def policy_file(cluster: Cluster) -> dict[str, Any]:
    return json.loads(cluster.must(CONFIGMAPS, "default-policy")["data"]["policy.json"])


async def test_pause_then_resume_ramps_the_cap_in_status_file_and_metrics(
    cluster: Cluster, start_operator: StartOperator, run_plugin: RunPlugin, clock: Clock
) -> None:
    cluster.put(CRONJOBS, cronjob_body())
    cluster.put(WRP, policy_body(limit=100, batchSize=20))
    memo = metrics_memo(observe_s=0.2)
    await start_operator(None, memo)
    await cluster.wait_for(lambda: status(cluster).get("cap") == 100, what="cap 100")
    assert status(cluster)["policyFileVersion"] == 2 and "pausedAt" not in status(cluster)
    metrics = await scrape(memo)
    assert metrics[("tenrusl_retry_policy_paused", POLICY)] == 0
    assert metrics[("tenrusl_retry_policy_paused_since_timestamp_seconds", POLICY)] == 0
    assert metrics[("tenrusl_retry_policy_cap", POLICY)] == 100
    assert metrics[("tenrusl_retry_policy_limit", POLICY)] == 100

    code, _, err = await run_plugin("pause")
    assert code == 0, err
    assert status(cluster)["pausedAt"] == "2026-05-04T03:00:00Z"
    await cluster.wait_for(lambda: status(cluster).get("cap") == 0, what="cap 0 while paused")
    assert policy_file(cluster)["pausedAt"] == "2026-05-04T03:00:00Z"
    metrics = await scrape(memo)
    assert metrics[("tenrusl_retry_policy_paused", POLICY)] == 1
    assert metrics[("tenrusl_retry_policy_paused_since_timestamp_seconds", POLICY)] == T0.timestamp()
    assert metrics[("tenrusl_retry_policy_cap", POLICY)] == 0

    clock.now = T0 + timedelta(hours=2)
    code, out, err = await run_plugin("resume", "--ramp-minutes", "10", "--ramp-floor", "10")
    assert code == 0, err
    assert "the per-run cap climbs from 10 to 100 events over 10 min" in out
    assert cluster.must(WRP, "default")["spec"]["resume"] == {"rampMinutes": 10, "floor": 10}
    await cluster.wait_for(lambda: status(cluster).get("resumedAt") == "2026-05-04T05:00:00Z")
    assert "pausedAt" not in status(cluster)
    assert status(cluster)["cap"] == 10
    doc = policy_file(cluster)
    assert (doc["paused"], doc["resumedAt"], doc["resume"]) == (False, "2026-05-04T05:00:00Z", doc["resume"])
    assert "pausedAt" not in doc
    seen = [(0, 10)]
    for minutes, cap in ((5, 55), (9, 91), (10, 100)):
        clock.now = T0 + timedelta(hours=2, minutes=minutes)
        await cluster.wait_for(partial(has_cap, cluster, cap), what=f"cap {cap}")
        metrics = await scrape(memo)
        assert metrics[("tenrusl_retry_policy_cap", POLICY)] == cap
        assert metrics[("tenrusl_retry_policy_paused", POLICY)] == 0
        seen.append((minutes, cap))
        if minutes == 5:
            code, out, _ = await run_plugin("status")
            assert code == 0
            cap_line = next(line for line in out.splitlines() if line.strip().startswith("Cap now"))
            assert (
                "55 (gradual resume since 2026-05-04T05:00:00Z" in cap_line and "climbing to 100" in cap_line
            )
    print(f"\nstatus.cap and tenrusl_retry_policy_cap after resume (minute, cap): {seen}")
    assert "Resumed" in posted_reasons(cluster)


async def test_a_resume_with_an_invalid_ramp_is_refused(cluster: Cluster, run_plugin: RunPlugin) -> None:
    cluster.put(WRP, policy_body(paused=True))
    code, _, err = await run_plugin("resume", "--ramp-minutes", "2000")
    assert code == 1 and "refusing to resume" in err and "rampMinutes" in err
    assert cluster.must(WRP, "default")["spec"] == {"paused": True}


async def test_a_policy_from_before_batch_size_is_migrated_once(
    cluster: Cluster, start_operator: StartOperator
) -> None:
    """An operator of that time applied ``limit: 50`` as the claim size: it becomes batchSize."""
    old = policy_body(limit=50, paused=True, maxAttempts=9)
    old["status"] = {
        "observedGeneration": 1,
        "conditions": [{"type": "Paused", "status": "True", "reason": "PausedBySpec",
                        "lastTransitionTime": "2026-05-01T08:00:00Z"}],
    }  # fmt: skip
    cluster.put(CRONJOBS, cronjob_body(suspend=True))
    cluster.put(WRP, old)
    # Changed since an old operator saw it (generation 2, observed 1): taken as it is.
    edited = policy_body("edited", generation=2, limit=50)
    edited["status"] = {"observedGeneration": 1}
    edited["spec"]["cronJobName"] = "other-retry"
    cluster.put(CRONJOBS, cronjob_body("other-retry"))
    cluster.put(WRP, edited)
    # New: never reconciled.
    fresh = policy_body("fresh", limit=50, cronJobName="third-retry")
    cluster.put(CRONJOBS, cronjob_body("third-retry"))
    cluster.put(WRP, fresh)

    await start_operator()
    await cluster.wait_for(lambda: status(cluster).get("policyFileVersion") == 2, what="the migration")
    spec = cluster.must(WRP, "default")["spec"]
    assert (spec["limit"], spec["batchSize"], spec["maxAttempts"], spec["paused"]) == (2000, 50, 9, True)
    doc = policy_file(cluster)
    assert (doc["version"], doc["limit"], doc["batchSize"]) == (2, 2000, 50)
    assert status(cluster)["pausedAt"] == "2026-05-01T08:00:00Z", "dated by the Paused condition"
    annotations = cluster.must(WRP, "default")["metadata"]["annotations"]
    assert annotations[reconcile.MIGRATED] == "limit 50 -> batchSize"
    await cluster.wait_for(lambda: "Migrated" in posted_reasons(cluster), what="a Migrated event")

    for name in ("edited", "fresh"):
        await cluster.wait_for(partial(reconciled, cluster, name), what=f"{name} reconciled")
        assert (
            cluster.must(WRP, name)["spec"]["limit"] == 50
            and "batchSize" not in cluster.must(WRP, name)["spec"]
        )
    assert condition(cluster.get(WRP, "default"), "Paused")["status"] == "True"
    # Once: the annotation comes in the same patch as the new spec, so no view of the policy can
    # show the new limit without it. (kmock never bumps resourceVersion, so kopf may run a handler
    # twice on the same old body; that second run computes the same patch, and so a second event.)
    assert cluster.must(WRP, "default")["spec"]["batchSize"] == 50
