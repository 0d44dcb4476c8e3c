"""The operator in the real image, against the kmock API server: it reconciles, answers its
liveness probe, and exits 0 on SIGTERM. Its calls are recorded for the RBAC test like every
other kmock test's."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tenrusl.embedded import free_port
from tests.image.conftest import Containers, eventually, http_status
from tests.operator import conftest as operator_fixtures
from tests.operator.conftest import CONFIGMAPS, CRONJOBS, WRP, Cluster, condition, cronjob_body, policy_body

pytestmark = pytest.mark.slow
cluster = operator_fixtures.cluster  # the kmock API server of the operator tests
kubeconfig = operator_fixtures.kubeconfig
GRACE_S = 30


async def test_the_operator_in_the_image_reconciles_answers_liveness_and_exits_0_on_sigterm(
    containers: Containers, cluster: Cluster, kubeconfig: Path
) -> None:
    cluster.put(CRONJOBS, cronjob_body())
    cluster.put(WRP, policy_body(limit=50))
    os.chmod(kubeconfig, 0o644)  # readable by the image's user 10001
    port = free_port()
    env = {"KUBECONFIG": "/etc/tenrusl/kubeconfig", "TENRUSL_OPERATOR_NAMESPACE": "payments"}
    operator = await containers.start(
        "operator",
        f"--liveness-port={port}",
        env=env,
        opts=("-v", f"{kubeconfig}:/etc/tenrusl/kubeconfig:ro"),
    )

    async def ready() -> bool:
        return condition(cluster.get(WRP, "default"), "Ready").get("status") == "True"

    await eventually(ready, 60, "the policy to be reconciled")
    written = cluster.get(CONFIGMAPS, "default-policy")
    assert written is not None and json.loads(written["data"]["policy.json"])["limit"] == 50
    assert await http_status(f"http://127.0.0.1:{port}/healthz") == 200
    await operator.signal("TERM")
    assert await operator.wait(GRACE_S) == 0
    assert "Traceback" not in await operator.logs()
