"""The operator in the real operator image, started with the chart's rendered arguments, against the kmock
API server: it reconciles, answers its liveness probe and serves the effective policy on /metrics
at the ports the chart names, and exits 0 on SIGTERM. Its calls are recorded for the RBAC test
like every other kmock test's."""

from __future__ import annotations

import json
import os
from pathlib import Path

import aiohttp
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tenrusl.embedded import free_port
from tests.chart.conftest import CHART, one, run_helm, value_args
from tests.image.conftest import Containers, eventually, http_status
from tests.operator import conftest as operator_fixtures
from tests.operator.conftest import CONFIGMAPS, CRONJOBS, WRP, Cluster, condition, cronjob_body, policy_body

pytestmark = pytest.mark.slow
cluster = operator_fixtures.cluster  # the kmock API server of the operator tests
kubeconfig = operator_fixtures.kubeconfig
GRACE_S = 30


def rendered_operator(helm: str, liveness_port: int, metrics_port: int) -> dict:
    """The operator container of `helm template` (free ports: the container runs on the host network)."""
    sets = {"operator.livenessPort": liveness_port, "operator.metricsPort": metrics_port}
    done = run_helm(helm, "template", "tenrusl", str(CHART), "--namespace", "payments", *value_args([], sets))
    objects = [doc for doc in yaml.safe_load_all(done.stdout) if doc]
    return one(objects, "Deployment", "tenrusl-operator")["spec"]["template"]["spec"]["containers"][0]


async def scrape(url: str) -> str:
    async with aiohttp.ClientSession() as session, session.get(url) as answer:
        assert answer.status == 200
        return await answer.text()


async def test_the_operator_in_the_image_runs_the_charts_arguments_serves_health_and_metrics_and_exits_0(
    helm: str, operator_containers: Containers, cluster: Cluster, kubeconfig: Path
) -> None:
    cluster.put(CRONJOBS, cronjob_body())
    cluster.put(WRP, policy_body(limit=50))
    os.chmod(kubeconfig, 0o644)  # readable by the image's user 10001
    container = rendered_operator(helm, free_port(), free_port())
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert container["image"].startswith("ghcr.io/tenrusl/tenrusl-operator:"), (
        "the chart runs the operator image"
    )
    release = next(e["value"] for e in container["env"] if e["name"] == "TENRUSL_OPERATOR_RELEASE")
    env = {"KUBECONFIG": "/etc/tenrusl/kubeconfig", "TENRUSL_OPERATOR_NAMESPACE": "payments",
           "TENRUSL_OPERATOR_RELEASE": release}  # fmt: skip
    operator = await operator_containers.start(
        *container["args"], env=env, opts=("-v", f"{kubeconfig}:/etc/tenrusl/kubeconfig:ro")
    )

    async def ready() -> bool:
        return condition(cluster.get(WRP, "default"), "Ready").get("status") == "True"

    await eventually(ready, 60, "the policy to be reconciled")
    written = cluster.get(CONFIGMAPS, "default-policy")
    assert written is not None and json.loads(written["data"]["policy.json"])["limit"] == 50
    probe = container["livenessProbe"]["httpGet"]
    assert await http_status(f"http://127.0.0.1:{ports[probe['port']]}{probe['path']}") == 200

    # What the operator ServiceMonitor scrapes (port `metrics`, /metrics): the effective policy.
    text = await scrape(f"http://127.0.0.1:{ports['metrics']}/metrics")
    samples = {
        sample.name: (sample.labels, sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    policy = {"policy_namespace": "payments", "policy": "default"}
    assert samples == {
        "tenrusl_retry_policy_paused": (policy, 0.0),
        "tenrusl_retry_policy_paused_since_timestamp_seconds": (policy, 0.0),
        "tenrusl_retry_policy_cap": (policy, 50.0),
        "tenrusl_retry_policy_limit": (policy, 50.0),
    }, text

    await operator.signal("TERM")
    assert await operator.wait(GRACE_S) == 0
    assert "Traceback" not in await operator.logs()
