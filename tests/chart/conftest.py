"""Render the chart with the real helm: the three value sets, and any values a test adds."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.tools import ROOT

CHART = ROOT / "charts" / "tenrusl"
NAMESPACE = "payments"
RELEASE = "tenrusl"
# The chart's oldest supported Kubernetes (Chart.yaml kubeVersion) and the newest schema we have.
KUBE_VERSIONS = ("1.28", "1.37")
# What a cluster serving the WebhookRetryPolicy kind tells `helm upgrade` (.Capabilities): the chart
# then renders its policy; a first install, where the CRD arrives with the release, does not.
SERVES_POLICIES = "tenrusl.io/v1alpha1/WebhookRetryPolicy"
VALUE_SETS: dict[str, list[Path]] = {
    "defaults": [],
    "production": [CHART / "ci" / "production-values.yaml"],
    "minimal": [CHART / "ci" / "minimal-values.yaml"],
}

Render = Callable[..., list[dict[str, Any]]]


def run_helm(helm: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([helm, *args], capture_output=True, text=True, timeout=120, env=_helm_env())
    if check:
        assert done.returncode == 0, f"helm {' '.join(args)}:\n{done.stderr}"
    return done


def _helm_env() -> dict[str, str]:
    """helm with its own empty home, so a developer's repositories and plugins play no part."""
    import os
    import tempfile

    home = Path(tempfile.gettempdir()) / "tenrusl-helm-home"
    home.mkdir(exist_ok=True)
    return {"PATH": os.environ.get("PATH", ""), "HOME": str(home), "HELM_CACHE_HOME": str(home / "cache"),
            "HELM_CONFIG_HOME": str(home / "config"), "HELM_DATA_HOME": str(home / "data")}  # fmt: skip


def value_args(files: list[Path], sets: dict[str, Any] | None = None) -> list[str]:
    args: list[str] = []
    for path in files:
        args += ["-f", str(path)]
    for key, value in (sets or {}).items():
        args += ["--set-json", f"{key}={json.dumps(value)}"]
    return args


@pytest.fixture(scope="session")
def render(helm: str) -> Render:
    """``render(value_set, **sets)``: the rendered objects (hooks and tests included)."""
    cache: dict[str, list[dict[str, Any]]] = {}

    def run(
        value_set: str = "defaults",
        sets: dict[str, Any] | None = None,
        kube: str = KUBE_VERSIONS[0],
        first_install: bool = False,
    ) -> list[dict[str, Any]]:
        """The objects of an upgrade (the cluster serves the policy kind), or of a first install."""
        key = repr((value_set, sorted((sets or {}).items()), kube, first_install))
        if key not in cache:
            serves = [] if first_install else ["--api-versions", SERVES_POLICIES]
            done = run_helm(
                helm, "template", RELEASE, str(CHART), "--namespace", NAMESPACE, "--kube-version", f"{kube}.0",
                *serves, *value_args(VALUE_SETS[value_set], sets),
            )  # fmt: skip
            cache[key] = [doc for doc in yaml.safe_load_all(done.stdout) if doc]
        return cache[key]

    return run


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def one(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [o for o in by_kind(objects, kind) if name is None or o["metadata"]["name"] == name]
    assert len(found) == 1, (
        f"expected one {kind} {name or ''}, found {[o['metadata']['name'] for o in found]}"
    )
    return found[0]


def pod_specs(objects: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every pod spec the chart renders: Deployments, StatefulSets, the CronJob's job, bare Pods."""
    for obj in objects:
        name = f"{obj['kind']}/{obj['metadata']['name']}"
        if obj["kind"] in ("Deployment", "StatefulSet"):
            yield name, obj["spec"]["template"]["spec"]
        elif obj["kind"] == "CronJob":
            yield name, obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        elif obj["kind"] == "Pod":
            yield name, obj["spec"]
