"""Day two on the Kubernetes API emulator: uninstall leaves nothing Terminating, the operator takes
over nothing it did not make, serves only its release, creates the chart's policy on a first
install, and two reconciles racing to create the policy file both succeed."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from tenrusl_operator import handlers, kube, reconcile

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
from tests.operator.test_reconcile_on_kmock import posted_reasons, requests_to, suspend


def terminating(cluster: Cluster) -> list[str]:
    """Every object of the emulator that is marked for deletion but still there."""
    stuck = []
    for obj in list(cluster.kmock.objects.values()):
        if obj.deleted:
            continue
        meta = obj.raw.get("metadata") or {}
        if meta.get("deletionTimestamp"):
            stuck.append(f"{obj.raw.get('kind')}/{meta.get('name')} finalizers={meta.get('finalizers')}")
    return stuck


def delete(resource: str, name: str) -> None:
    """What ``helm uninstall`` (or ``kubectl delete``) sends: a DELETE to the API server."""
    conn = kube.connect()
    try:
        if resource == CRONJOBS:
            kube.client.BatchV1Api(conn.api).delete_namespaced_cron_job(name, NAMESPACE)
        else:
            kube.client.CustomObjectsApi(conn.api).delete_namespaced_custom_object(
                "tenrusl.io", "v1alpha1", NAMESPACE, "webhookretrypolicies", name
            )
    finally:
        conn.api.close()


async def reconciled(cluster: Cluster, name: str = "default") -> None:
    await cluster.wait_for(
        lambda: condition(cluster.get(WRP, name), "Ready").get("status") == "True", what=f"{name} Ready"
    )


async def uninstall(cluster: Cluster, start_operator: StartOperator) -> None:
    """Helm's order: the operator (Deployment, RBAC) goes first, the custom resources last."""
    await start_operator.stop()
    for resource, name in ((CRONJOBS, "tenrusl-retry"), (WRP, "default")):
        await asyncio.to_thread(delete, resource, name)


async def test_uninstall_deletes_the_policy_at_once_though_the_operator_went_first(
    cluster: Cluster, start_operator: StartOperator
) -> None:
    cluster.put(CRONJOBS, cronjob_body())
    cluster.put(WRP, policy_body(paused=True))
    await start_operator()
    await reconciled(cluster)
    assert not cluster.must(WRP, "default")["metadata"].get("finalizers"), "the operator holds no finalizer"

    await uninstall(cluster, start_operator)

    assert cluster.get(WRP, "default") is None
    assert terminating(cluster) == [], "nothing may be left Terminating (kubectl delete namespace would hang)"


async def test_an_older_operators_finalizer_is_removed_so_a_later_uninstall_finishes(
    cluster: Cluster, start_operator: StartOperator
) -> None:
    """A policy an operator of 0.1.0 reconciled carries its finalizer; the upgrade's operator drops it.

    (The emulator never moves resourceVersion, so kopf, seeing a stale event, sends the removal
    again and retries it for a while: the test waits for the removal, not for Ready.)"""
    await start_operator()
    cluster.put(CRONJOBS, cronjob_body())
    old = policy_body()
    old["metadata"]["finalizers"] = [handlers.FINALIZER]
    cluster.put(WRP, old)
    await cluster.wait_for(
        lambda: not cluster.must(WRP, "default")["metadata"].get("finalizers"), what="the old finalizer to go"
    )

    await uninstall(cluster, start_operator)
    assert cluster.get(WRP, "default") is None and terminating(cluster) == []


async def test_a_reinstall_after_uninstall_starts_clean(
    cluster: Cluster, start_operator: StartOperator
) -> None:
    cluster.put(CRONJOBS, cronjob_body())
    cluster.put(WRP, policy_body(paused=True))
    await start_operator()
    await reconciled(cluster)
    await uninstall(cluster, start_operator)

    cluster.put(CRONJOBS, cronjob_body())
    cluster.put(WRP, policy_body(limit=77))
    await start_operator()
    await reconciled(cluster)
    assert json.loads(cluster.must(CONFIGMAPS, "default-policy")["data"]["policy.json"])["limit"] == 77
    assert terminating(cluster) == []


# -- taking over nothing ---------------------------------------------------------------------------


async def test_a_foreign_cronjob_named_in_a_policy_is_refused_and_left_untouched(operator: Cluster) -> None:
    foreign = cronjob_body("nightly-backup", suspend=False)
    foreign["metadata"]["labels"] = {"app": "backup"}
    operator.put(CRONJOBS, foreign)
    operator.put(WRP, policy_body(paused=True, cronJobName="nightly-backup"))
    await operator.wait_for(
        lambda: condition(operator.get(WRP, "default"), "Degraded").get("reason") == "ForeignCronJob",
        what="ForeignCronJob",
    )
    degraded = condition(operator.get(WRP, "default"), "Degraded")
    assert degraded["status"] == "True" and "nightly-backup" in degraded["message"]
    assert "app.kubernetes.io/component=retry-runner" in degraded["message"]
    assert condition(operator.get(WRP, "default"), "Ready")["status"] == "False"
    await operator.wait_for(lambda: "ForeignCronJob" in posted_reasons(operator), what="a warning event")
    await asyncio.sleep(0.5)  # more reconciles (kopf retries the handler) change nothing either
    assert requests_to(operator, "cronjobs", "PATCH") == [], "the CronJob was not written to"
    assert operator.must(CRONJOBS, "nightly-backup") == foreign, "untouched"


async def test_another_releases_cronjob_is_refused_by_a_release_scoped_operator(
    cluster: Cluster, start_operator: StartOperator
) -> None:
    theirs = cronjob_body("other-tenrusl-retry")
    theirs["metadata"]["labels"]["app.kubernetes.io/instance"] = "other"
    cluster.put(CRONJOBS, theirs)
    cluster.put(WRP, policy_body(paused=True, cronJobName="other-tenrusl-retry"))
    await start_operator(None, fast_memo(release="tenrusl"))
    await cluster.wait_for(
        lambda: condition(cluster.get(WRP, "default"), "Degraded").get("reason") == "ForeignCronJob"
    )
    assert (
        "app.kubernetes.io/instance=tenrusl" in condition(cluster.get(WRP, "default"), "Degraded")["message"]
    )
    assert requests_to(cluster, "cronjobs", "PATCH") == [] and suspend(cluster, "other-tenrusl-retry") is None


async def test_a_foreign_configmap_is_refused_and_left_untouched_while_the_pause_still_applies(
    operator: Cluster,
) -> None:
    foreign = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "app-settings", "namespace": NAMESPACE, "uid": "cm-1", "resourceVersion": "1",
                     "labels": {"app": "shop"}},
        "data": {"feature": "on"},
    }  # fmt: skip
    operator.put(CONFIGMAPS, json.loads(json.dumps(foreign)))
    operator.put(CRONJOBS, cronjob_body())
    operator.put(WRP, policy_body(paused=True, configMapName="app-settings"))
    await operator.wait_for(
        lambda: condition(operator.get(WRP, "default"), "Degraded").get("reason") == "ForeignConfigMap",
        what="ForeignConfigMap",
    )
    assert "app-settings" in condition(operator.get(WRP, "default"), "Degraded")["message"]
    assert operator.must(CONFIGMAPS, "app-settings") == foreign, "not adopted, not rewritten, no owner added"
    assert [r for r in requests_to(operator, "configmaps", "PATCH")] == []
    assert suspend(operator) is True, "the pause, the safety that matters, still reaches the CronJob"
    assert condition(operator.get(WRP, "default"), "Paused")["status"] == "True"


async def test_the_operator_serves_only_its_release(cluster: Cluster, start_operator: StartOperator) -> None:
    cluster.put(CRONJOBS, cronjob_body())
    cluster.put(WRP, policy_body("ours", paused=True))
    cluster.put(WRP, policy_body("theirs", labels={"app.kubernetes.io/instance": "other"}, paused=True))
    await start_operator(None, fast_memo(release="tenrusl"))
    await reconciled(cluster, "ours")
    await asyncio.sleep(0.6)  # three periodic looks
    assert "status" not in cluster.must(WRP, "theirs"), "another release's policy is not ours to apply"
    assert cluster.get(CONFIGMAPS, "theirs-policy") is None
    patched = {r.name for r in requests_to(cluster, "webhookretrypolicies")}
    assert "theirs" not in patched


# -- the chart's policy on a first install ------------------------------------------------------------


def chart_policy(**spec: Any) -> dict[str, Any]:
    """The policy the chart hands the operator (TENRUSL_OPERATOR_POLICY). The uid and the
    resourceVersion are the emulator's gotcha: a real API server assigns them on create."""
    return {
        "apiVersion": "tenrusl.io/v1alpha1",
        "kind": "WebhookRetryPolicy",
        "metadata": {
            "name": "tenrusl", "uid": "u-chart", "resourceVersion": "1", "generation": 1, "namespace": NAMESPACE,
            "labels": {"app.kubernetes.io/instance": "tenrusl", "app.kubernetes.io/managed-by": "Helm"},
            "annotations": {"meta.helm.sh/release-name": "tenrusl", "meta.helm.sh/release-namespace": NAMESPACE},
        },
        "spec": {"cronJobName": "tenrusl-retry", **spec},
    }  # fmt: skip


async def test_a_first_install_gets_the_charts_policy_from_the_operator(
    cluster: Cluster, start_operator: StartOperator
) -> None:
    cluster.put(CRONJOBS, cronjob_body())
    await start_operator(None, fast_memo(release="tenrusl", policy=chart_policy(limit=500)))
    await reconciled(cluster, "tenrusl")
    made = cluster.must(WRP, "tenrusl")
    # Owned by the CronJob: deleting the release deletes it, even before an upgrade made it Helm's.
    (owner,) = made["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"]) == ("CronJob", "tenrusl-retry") and owner["uid"]
    # Helm's ownership marks, so the next `helm upgrade` (which renders it) adopts it.
    assert made["metadata"]["annotations"]["meta.helm.sh/release-name"] == "tenrusl"
    assert made["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"
    assert made["spec"]["limit"] == 500
    assert json.loads(cluster.must(CONFIGMAPS, "tenrusl-policy")["data"]["policy.json"])["limit"] == 500


async def test_an_existing_policy_is_left_as_it_is_pause_included(
    cluster: Cluster, start_operator: StartOperator
) -> None:
    cluster.put(CRONJOBS, cronjob_body())
    cluster.put(WRP, chart_policy(paused=True, limit=42))
    await start_operator(None, fast_memo(release="tenrusl", policy=chart_policy(limit=500)))
    await reconciled(cluster, "tenrusl")
    spec = cluster.must(WRP, "tenrusl")["spec"]
    assert spec["paused"] is True and spec["limit"] == 42
    assert suspend(cluster) is True


# -- the race on the policy file ---------------------------------------------------------------------


async def test_creating_the_policy_file_that_another_reconcile_just_created_is_not_an_error(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Read (404), create (409: the other reconcile won): the file exists as wanted, so carry on."""
    meta = {"name": "default", "namespace": NAMESPACE, "uid": "u-1", "generation": 1,
            "labels": {"app.kubernetes.io/instance": "tenrusl"}}  # fmt: skip
    policy = reconcile.policy_from_spec({"limit": 9}, reconcile.source_of(meta))
    body = reconcile.render_configmap("default-policy", meta, policy)
    cluster.put(CONFIGMAPS, {**json.loads(json.dumps(body)), "metadata": {**body["metadata"], "uid": "c-1",
                                                                          "resourceVersion": "1"}})  # fmt: skip
    reads = []
    real_read = kube._read_configmap

    def late_read(core: Any, namespace: str, name: str) -> Any:
        reads.append(name)
        return None if len(reads) == 1 else real_read(core, namespace, name)  # the first read lost the race

    monkeypatch.setattr(kube, "_read_configmap", late_read)
    conn = await asyncio.to_thread(kube.connect)
    try:
        assert await asyncio.to_thread(kube.ensure_configmap, conn.api, body) == "unchanged"
    finally:
        conn.api.close()
    assert len(reads) == 2 and len(requests_to(cluster, "configmaps", "POST")) == 1
