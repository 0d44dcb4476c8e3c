"""The operator against a kmock API server holding a retry CronJob shaped like the chart's."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import kopf
import pytest
from tenrusl_operator import handlers, kube

from tests.operator.conftest import (
    CONFIGMAPS,
    CRONJOBS,
    NAMESPACE,
    WRP,
    Cluster,
    StartOperator,
    condition,
    cronjob_body,
    fast_memo,
    policy_body,
)


def policy_file(cluster: Cluster, name: str = "default-policy") -> dict[str, Any]:
    configmap = cluster.get(CONFIGMAPS, name)
    assert configmap is not None, f"ConfigMap {name} was not written"
    return json.loads(configmap["data"]["policy.json"])


def suspend(cluster: Cluster, name: str = "tenrusl-retry") -> Any:
    return (cluster.get(CRONJOBS, name) or {}).get("spec", {}).get("suspend")


async def merge_patch(cluster: Cluster, body: dict[str, Any], name: str = "default") -> None:
    """What ``kubectl patch wrp NAME --type merge -p BODY`` sends (kmock does not bump generation)."""
    conn = await asyncio.to_thread(kube.connect)
    try:
        await asyncio.to_thread(
            kube.client.CustomObjectsApi(conn.api).patch_namespaced_custom_object,
            "tenrusl.io", "v1alpha1", NAMESPACE, "webhookretrypolicies", name, body,
            _content_type=kube.MERGE_PATCH,
        )  # fmt: skip
    finally:
        conn.api.close()


def requests_to(cluster: Cluster, resource_plural: str, method: str = "PATCH") -> list[Any]:
    return [
        r
        for r in list(cluster.kmock)
        if r.resource is not None and r.resource.plural == resource_plural and r.method.value == method
    ]


def posted_reasons(cluster: Cluster) -> list[str]:
    return [r.data.get("reason") for r in requests_to(cluster, "events", "POST")]


async def running_policy(operator: Cluster, **spec: Any) -> Cluster:
    """A CronJob, and a policy the operator has already reconciled once."""
    operator.put(CRONJOBS, cronjob_body())
    operator.put(WRP, policy_body(**spec))
    await operator.wait_for(
        lambda: condition(operator.get(WRP, "default"), "Ready").get("status") == "True", what="Ready=True"
    )
    return operator


async def test_pause_suspends_cronjob_writes_paused_policy_and_sets_paused_condition(
    operator: Cluster,
) -> None:
    cluster = await running_policy(operator)
    assert condition(cluster.get(WRP, "default"), "Paused")["status"] == "False"
    assert suspend(cluster) is None, "the chart never sets suspend; the operator only changes it"
    assert policy_file(cluster)["paused"] is False

    await merge_patch(cluster, {"spec": {"paused": True}})
    took = await cluster.wait_for(
        lambda: condition(cluster.get(WRP, "default"), "Paused").get("status") == "True", what="Paused=True"
    )

    assert suspend(cluster) is True
    assert policy_file(cluster)["paused"] is True
    paused = condition(cluster.get(WRP, "default"), "Paused")
    assert paused["reason"] == "PausedBySpec" and paused["lastTransitionTime"]
    assert condition(cluster.get(WRP, "default"), "Ready")["status"] == "True"
    assert took < 10  # the done-when budget (2 s) is measured and reported by test_plugin
    await cluster.wait_for(lambda: "Paused" in posted_reasons(cluster), what="a Paused event")


async def test_resume_reverses_suspend_policy_file_and_condition(operator: Cluster) -> None:
    cluster = await running_policy(operator, paused=True)
    assert suspend(cluster) is True and policy_file(cluster)["paused"] is True

    await merge_patch(cluster, {"spec": {"paused": False}})
    await cluster.wait_for(
        lambda: condition(cluster.get(WRP, "default"), "Paused").get("status") == "False", what="Paused=False"
    )

    assert suspend(cluster) is False
    assert policy_file(cluster)["paused"] is False
    assert condition(cluster.get(WRP, "default"), "Paused")["reason"] == "Running"
    await cluster.wait_for(lambda: "Resumed" in posted_reasons(cluster), what="a Resumed event")


async def test_tune_rewrites_only_the_configmap(operator: Cluster) -> None:
    cluster = await running_policy(operator)
    cronjob_patches = len(requests_to(cluster, "cronjobs"))

    await merge_patch(cluster, {"spec": {"limit": 50, "backoff": {"mode": "equal", "capMs": 600000}}})
    await cluster.wait_for(lambda: policy_file(cluster)["limit"] == 50, what="limit 50 in the ConfigMap")

    doc = policy_file(cluster)
    assert doc["backoff"] == {"mode": "equal", "baseMs": 60000, "capMs": 600000}
    assert doc["paused"] is False and doc["version"] == 2
    assert len(requests_to(cluster, "cronjobs")) == cronjob_patches, "tuning must not touch the CronJob"
    assert suspend(cluster) is None
    await cluster.wait_for(lambda: "PolicyWritten" in posted_reasons(cluster), what="a PolicyWritten event")


async def test_configmap_is_owned_by_the_policy_and_names_its_source(operator: Cluster) -> None:
    cluster = await running_policy(operator, limit=75)
    configmap = cluster.get(CONFIGMAPS, "default-policy")
    policy = cluster.get(WRP, "default")
    assert configmap is not None and policy is not None

    (owner,) = configmap["metadata"]["ownerReferences"]
    assert owner["kind"] == "WebhookRetryPolicy" and owner["uid"] == policy["metadata"]["uid"]
    assert owner["controller"] is True
    source = policy_file(cluster)["source"]
    assert source == {"namespace": NAMESPACE, "name": "default", "generation": 1, "uid": owner["uid"]}
    assert policy["status"]["configMap"] == "default-policy"
    assert policy["status"]["cronJob"] == "tenrusl-retry"


async def test_missing_cronjob_degrades_and_recovers_when_it_appears(
    operator: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(handlers, "RETRY_DELAY_S", 0.5)
    operator.put(WRP, policy_body(paused=True))
    await operator.wait_for(
        lambda: condition(operator.get(WRP, "default"), "Degraded").get("status") == "True", what="Degraded"
    )
    degraded = condition(operator.get(WRP, "default"), "Degraded")
    assert degraded["reason"] == "CronJobNotFound"
    assert "tenrusl-retry" in degraded["message"]
    assert condition(operator.get(WRP, "default"), "Ready")["status"] == "False"
    assert condition(operator.get(WRP, "default"), "Paused")["status"] == "Unknown"
    assert "observedGeneration" not in operator.must(WRP, "default")["status"]
    assert policy_file(operator)["paused"] is True, "the policy is written even without the CronJob"
    await operator.wait_for(lambda: "CronJobNotFound" in posted_reasons(operator), what="a warning event")

    operator.put(CRONJOBS, cronjob_body())
    await operator.wait_for(lambda: suspend(operator) is True, what="the retry to suspend the new CronJob")
    await operator.wait_for(
        lambda: condition(operator.get(WRP, "default"), "Degraded").get("status") == "False", what="recovery"
    )
    assert condition(operator.get(WRP, "default"), "Paused")["status"] == "True"


async def test_invalid_spec_degrades_and_changes_nothing(operator: Cluster) -> None:
    operator.put(CRONJOBS, cronjob_body())
    operator.put(WRP, policy_body(paused=True, backoff={"baseMs": 5000, "capMs": 1000}))
    await operator.wait_for(
        lambda: condition(operator.get(WRP, "default"), "Degraded").get("status") == "True", what="Degraded"
    )
    degraded = condition(operator.get(WRP, "default"), "Degraded")
    assert degraded["reason"] == "InvalidSpec"
    assert "capMs" in degraded["message"]
    assert operator.get(CONFIGMAPS, "default-policy") is None
    assert suspend(operator) is None, "an invalid spec must not touch the CronJob"


async def test_observed_generation_follows_the_spec(operator: Cluster) -> None:
    cluster = await running_policy(operator)
    assert cluster.must(WRP, "default")["status"]["observedGeneration"] == 1

    # The API server bumps metadata.generation on a spec change; kmock does not, so the test does.
    await merge_patch(cluster, {"metadata": {"generation": 2}, "spec": {"maxAttempts": 5}})
    await cluster.wait_for(
        lambda: cluster.must(WRP, "default")["status"]["observedGeneration"] == 2, what="observedGeneration 2"
    )
    status = cluster.must(WRP, "default")["status"]
    assert all(c["observedGeneration"] == 2 for c in status["conditions"])
    assert policy_file(cluster)["maxAttempts"] == 5
    assert policy_file(cluster)["source"]["generation"] == 2


async def test_cronjob_run_times_are_reported(operator: Cluster) -> None:
    operator.put(
        CRONJOBS,
        cronjob_body(lastScheduleTime="2026-11-28T09:59:00Z", lastSuccessfulTime="2026-11-28T09:59:12Z"),
    )
    operator.put(WRP, policy_body())
    await operator.wait_for(lambda: "lastScheduleTime" in operator.must(WRP, "default")["status"])
    status = operator.must(WRP, "default")["status"]
    assert status["lastScheduleTime"] == "2026-11-28T09:59:00Z"
    assert status["lastSuccessfulTime"] == "2026-11-28T09:59:12Z"


async def test_deleting_a_paused_policy_resumes_the_cronjob(operator: Cluster) -> None:
    cluster = await running_policy(operator, paused=True)
    assert suspend(cluster) is True
    assert not cluster.must(WRP, "default")["metadata"].get("finalizers"), "nothing waits for the operator"

    await asyncio.to_thread(_delete_policy)
    assert cluster.get(WRP, "default") is None, "deleted at once"
    await cluster.wait_for(lambda: suspend(cluster) is False, what="the operator to resume the CronJob")
    await cluster.wait_for(lambda: "Resumed" in posted_reasons(cluster), what="a Resumed event")


async def test_deleting_a_policy_whose_cronjob_is_gone_is_not_blocked(operator: Cluster) -> None:
    cluster = await running_policy(operator, paused=True)
    cluster.kmock.objects[CRONJOBS, NAMESPACE, "tenrusl-retry"].delete()

    await asyncio.to_thread(_delete_policy)
    await cluster.wait_for(lambda: cluster.get(WRP, "default") is None, what="the policy to be released")


def _delete_policy() -> None:
    conn = kube.connect()
    try:
        kube.client.CustomObjectsApi(conn.api).delete_namespaced_custom_object(
            "tenrusl.io", "v1alpha1", NAMESPACE, "webhookretrypolicies", "default"
        )
    finally:
        conn.api.close()


async def test_the_periodic_look_refreshes_run_times_and_undoes_a_manual_unsuspend(
    start_operator: StartOperator,
) -> None:
    """The periodic look alone (no change handler registered), every 0.2 s instead of 30 s."""
    registry = kopf.OperatorRegistry()
    kopf.on.startup(registry=registry)(handlers.configure)
    kopf.on.cleanup(registry=registry)(handlers.disconnect)
    kopf.on.login(registry=registry)(handlers.login)
    cluster = await start_operator(registry, fast_memo())

    cluster.put(CRONJOBS, cronjob_body(suspend=False, lastScheduleTime="2026-11-28T09:00:00Z"))
    cluster.put(WRP, policy_body(paused=True))
    await cluster.wait_for(lambda: suspend(cluster) is True, what="the timer to suspend the CronJob")
    await cluster.wait_for(
        lambda: cluster.must(WRP, "default")["status"].get("lastScheduleTime") == "2026-11-28T09:00:00Z"
    )

    # Someone un-suspends by hand and a run happens: the next tick reports it and pauses again.
    cluster.kmock.objects[CRONJOBS, NAMESPACE, "tenrusl-retry"].patch(
        {"spec": {"suspend": False}, "status": {"lastScheduleTime": "2026-11-28T09:05:00Z"}}
    )
    await cluster.wait_for(
        lambda: cluster.must(WRP, "default")["status"].get("lastScheduleTime") == "2026-11-28T09:05:00Z"
    )
    await cluster.wait_for(lambda: suspend(cluster) is True, what="the timer to undo the drift")
