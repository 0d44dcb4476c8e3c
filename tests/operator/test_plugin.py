"""``kubectl tenrusl`` against kmock: pause, resume, status, tune, and its errors."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from tenrusl_operator import plugin

from tests.operator.conftest import (
    CONFIGMAPS,
    CRONJOBS,
    JOBS,
    NAMESPACE,
    WRP,
    Cluster,
    RunPlugin,
    condition,
    cronjob_body,
    policy_body,
)


def spec_of(cluster: Cluster, name: str = "default") -> dict[str, Any]:
    return (cluster.get(WRP, name) or {}).get("spec") or {}


def patches_of(cluster: Cluster, plural: str) -> list[Any]:
    return [r for r in list(cluster.kmock) if r.resource is not None and r.resource.plural == plural
            and r.method.value == "PATCH"]  # fmt: skip


async def test_pause_and_resume_reach_the_cronjob_within_two_seconds(
    operator: Cluster, run_plugin: RunPlugin, record_property: Any
) -> None:
    """The done-when: ``kubectl tenrusl pause`` suspends the chart's CronJob and is confirmed quickly."""
    operator.put(CRONJOBS, cronjob_body())
    operator.put(WRP, policy_body())
    await operator.wait_for(lambda: condition(operator.get(WRP, "default"), "Ready").get("status") == "True")

    started = time.monotonic()
    code, out, err = await run_plugin("pause")
    paused_after = time.monotonic() - started
    assert code == 0, err
    assert "spec.paused=true" in out and "confirmed by the operator" in out
    assert operator.must(CRONJOBS, "tenrusl-retry")["spec"]["suspend"] is True
    assert json.loads(operator.must(CONFIGMAPS, "default-policy")["data"]["policy.json"])["paused"] is True
    assert condition(operator.get(WRP, "default"), "Paused")["status"] == "True"

    started = time.monotonic()
    code, out, err = await run_plugin("resume", "default", "-n", NAMESPACE)
    resumed_after = time.monotonic() - started
    assert code == 0, err
    assert operator.must(CRONJOBS, "tenrusl-retry")["spec"]["suspend"] is False
    assert json.loads(operator.must(CONFIGMAPS, "default-policy")["data"]["policy.json"])["paused"] is False
    assert condition(operator.get(WRP, "default"), "Paused")["status"] == "False"

    record_property("pause_confirmed_s", round(paused_after, 3))
    record_property("resume_confirmed_s", round(resumed_after, 3))
    print(f"\npause confirmed after {paused_after:.3f}s, resume after {resumed_after:.3f}s")
    assert paused_after < 10 and resumed_after < 10  # generous; the measured values are reported


async def test_pause_without_an_operator_is_not_confirmed(cluster: Cluster, run_plugin: RunPlugin) -> None:
    cluster.put(WRP, policy_body())
    code, _, err = await run_plugin("pause", "--wait", "0.3")
    assert code == 1
    assert spec_of(cluster)["paused"] is True, "the spec is patched even so"
    assert "has not confirmed within 0.3s" in err


async def test_the_runbooks_operator_down_fix_resumes_without_the_operator(
    cluster: Cluster, run_plugin: RunPlugin
) -> None:
    """docs/RUNBOOK.md: the CronJob is suspended, the policy says resume, the operator is down."""
    cluster.put(CRONJOBS, cronjob_body(suspend=True))
    paused = policy_body(paused=True, limit=300)
    paused["status"] = {"pausedAt": "2026-11-28T09:00:00Z"}  # the operator applied the pause, then died
    cluster.put(WRP, paused)
    code, out, err = await run_plugin("resume", "--without-operator")
    assert code == 0, err
    assert "applied without the operator" in out
    assert spec_of(cluster)["paused"] is False
    assert cluster.must(CRONJOBS, "tenrusl-retry")["spec"]["suspend"] is False
    written = json.loads(cluster.must(CONFIGMAPS, "default-policy")["data"]["policy.json"])
    assert written["paused"] is False and written["limit"] == 300
    assert written["resumedAt"], "the gradual resume starts now, as the operator would have started it"


async def test_pause_without_the_operator_writes_the_pause_the_runner_reads(
    cluster: Cluster, run_plugin: RunPlugin
) -> None:
    cluster.put(CRONJOBS, cronjob_body())
    cluster.put(WRP, policy_body())
    code, _, err = await run_plugin("pause", "--without-operator")
    assert code == 0, err
    assert cluster.must(CRONJOBS, "tenrusl-retry")["spec"]["suspend"] is True
    assert json.loads(cluster.must(CONFIGMAPS, "default-policy")["data"]["policy.json"])["paused"] is True


async def test_without_the_operator_a_foreign_cronjob_is_refused_too(
    cluster: Cluster, run_plugin: RunPlugin
) -> None:
    foreign = cronjob_body("nightly-backup", suspend=False)
    foreign["metadata"]["labels"] = {"app": "backup"}
    cluster.put(CRONJOBS, foreign)
    cluster.put(WRP, policy_body(cronJobName="nightly-backup"))
    code, _, err = await run_plugin("pause", "--without-operator")
    assert code == 1 and "refusing CronJob payments/nightly-backup" in err
    assert cluster.must(CRONJOBS, "nightly-backup") == foreign and patches_of(cluster, "cronjobs") == []


async def test_pause_with_no_wait_only_patches(cluster: Cluster, run_plugin: RunPlugin) -> None:
    cluster.put(WRP, policy_body())
    code, _, _ = await run_plugin("pause", "--wait", "0")
    assert code == 0 and spec_of(cluster)["paused"] is True
    (patch,) = patches_of(cluster, "webhookretrypolicies")
    assert patch.data == {"spec": {"paused": True}}, "the same body as kubectl patch --type merge"
    assert patch.headers["Content-Type"] == "application/merge-patch+json"


async def test_tune_patches_only_the_given_fields(cluster: Cluster, run_plugin: RunPlugin) -> None:
    cluster.put(WRP, policy_body(paused=True, backoff={"mode": "full", "baseMs": 1000}))
    code, out, err = await run_plugin(
        "tune", "--limit", "25", "--mode", "equal", "--cap-ms", "90000", "--providers", "stripe,xendit"
    )
    assert code == 0, err
    spec = spec_of(cluster)
    assert spec == {
        "paused": True,
        "limit": 25,
        "backoff": {"mode": "equal", "baseMs": 1000, "capMs": 90000},
        "providers": ["stripe", "xendit"],
    }
    assert "limit" in out and "2000 -> 25" in out and "full -> equal" in out


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--cap-ms", "10"], "capMs"),
        (["--limit", "0"], "limit"),
        (["--providers", "visa"], "providers"),
    ],
)
async def test_tune_refuses_an_invalid_policy_before_patching(
    cluster: Cluster, run_plugin: RunPlugin, flags: list[str], message: str
) -> None:
    cluster.put(WRP, policy_body(backoff={"baseMs": 60000}))
    code, _, err = await run_plugin("tune", *flags)
    assert code == 1
    assert "refusing to tune" in err and message in err
    assert patches_of(cluster, "webhookretrypolicies") == []


async def test_tune_needs_a_flag(cluster: Cluster, run_plugin: RunPlugin) -> None:
    cluster.put(WRP, policy_body())
    code, _, err = await run_plugin("tune")
    assert code == 1 and "nothing to tune" in err


async def test_status_shows_policy_conditions_cronjob_and_last_runs(
    cluster: Cluster, run_plugin: RunPlugin
) -> None:
    body = policy_body(paused=True, limit=50)
    body["status"] = {
        "observedGeneration": 1,
        "configMap": "default-policy",
        "conditions": [
            {"type": "Ready", "status": "True", "reason": "Reconciled", "message": "ok",
             "lastTransitionTime": "2026-11-28T10:00:00Z"},
            {"type": "Paused", "status": "True", "reason": "PausedBySpec", "message": "suspended",
             "lastTransitionTime": "2026-11-28T10:00:00Z"},
        ],
    }  # fmt: skip
    cluster.put(WRP, body)
    cluster.put(CRONJOBS, cronjob_body(suspend=True, lastScheduleTime="2026-11-28T09:58:00Z"))
    for name, start, done in (
        ("tenrusl-retry-1", "09:57:00", "09:57:07"),
        ("tenrusl-retry-2", "09:58:00", None),
    ):
        job = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {**cronjob_body()["metadata"], "name": name,
                         "ownerReferences": [{"kind": "CronJob", "name": "tenrusl-retry"}]},
            "status": {"startTime": f"2026-11-28T{start}Z", **({"completionTime": f"2026-11-28T{done}Z",
                       "succeeded": 1} if done else {"active": 1})},
        }  # fmt: skip
        cluster.put(JOBS, job)

    code, out, err = await run_plugin("status")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith(f"WebhookRetryPolicy {NAMESPACE}/default")
    assert any(line.split() == ["Paused", "true"] for line in lines)
    assert any(line.split() == ["Limit", "50", "events", "per", "run"] for line in lines)
    assert any(line.split() == ["Batch", "size", "200"] for line in lines)
    assert any(line.split()[:3] == ["Cap", "now", "-"] for line in lines), "no status.cap reported yet"
    assert any(line.split()[:3] == ["Paused", "True", "PausedBySpec"] for line in lines)
    assert any(line.split() == ["Suspended", "true"] for line in lines)
    assert any(line.startswith("  Last schedule  2026-11-28T09:58:00Z") for line in lines)
    runs = [line.split() for line in lines if line.startswith("tenrusl-retry-")]
    assert [r[:2] for r in runs] == [["tenrusl-retry-2", "Running"], ["tenrusl-retry-1", "Succeeded"]]
    assert runs[1][3] == "7s"


def test_status_of_a_policy_whose_cronjob_is_missing() -> None:
    text = plugin.render_status(policy_body(), None, [], now=datetime.now(UTC))
    assert "No conditions yet: is the operator running?" in text
    assert "CronJob payments/tenrusl-retry: NOT FOUND" in text


async def test_wrong_name_is_a_clear_error(cluster: Cluster, run_plugin: RunPlugin) -> None:
    cluster.put(WRP, policy_body("eu"))
    code, _, err = await run_plugin("pause", "us")
    assert code == 1
    assert (
        err.strip() == 'error: webhookretrypolicy "us" not found in namespace "payments"; policies here: eu'
    )


async def test_missing_crd_is_a_clear_error(kmock: Any, kubeconfig: Path, run_plugin: RunPlugin) -> None:
    kmock.resources.load_bundled()  # a cluster without the WebhookRetryPolicy CRD
    code, _, err = await run_plugin("status")
    assert code == 1
    assert "webhookretrypolicies.tenrusl.io CRD is not installed" in err


async def test_namespace_and_context_choose_where_to_look(cluster: Cluster, run_plugin: RunPlugin) -> None:
    other = policy_body("default")
    other["metadata"]["namespace"] = "elsewhere"
    cluster.kmock.objects[WRP, "elsewhere", "default"] = other
    cluster.put(WRP, policy_body("default"))

    assert (await run_plugin("pause", "--wait", "0", "--context", "other"))[0] == 0
    assert cluster.kmock.objects[WRP, "elsewhere", "default"].raw["spec"] == {"paused": True}
    assert spec_of(cluster) == {}, "the current context's namespace is untouched"

    assert (await run_plugin("-n", "elsewhere", "resume", "--wait", "0"))[0] == 0
    assert cluster.kmock.objects[WRP, "elsewhere", "default"].raw["spec"] == {"paused": False}


async def test_kubeconfig_flag_wins_over_the_environment(
    cluster: Cluster, kubeconfig: Path, run_plugin: RunPlugin, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cluster.put(WRP, policy_body())
    broken = _unreachable_copy(kubeconfig, tmp_path / "broken")

    monkeypatch.setenv("KUBECONFIG", str(broken))
    code, _, err = await run_plugin("status")
    assert code == 1 and "cannot reach the Kubernetes API server" in err
    code, _, err = await run_plugin("status", "--kubeconfig", str(kubeconfig))
    assert code == 0, err


def _unreachable_copy(kubeconfig: Path, path: Path) -> Path:
    doc = yaml.safe_load(kubeconfig.read_text())
    doc["clusters"][0]["cluster"]["server"] = "http://127.0.0.1:9"
    path.write_text(yaml.safe_dump(doc))
    return path


async def test_no_configuration_is_a_clear_error(
    run_plugin: RunPlugin, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    code, _, err = await run_plugin("status")
    assert code == 1 and "cannot load kubeconfig" in err
