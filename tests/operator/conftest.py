"""Fixtures for the operator: a kmock API server holding a retry CronJob, and the operator on it.

kmock's three gotchas (reference/tooling.md) are handled here once: the bundled resources are
loaded (kopf waits forever without ``v1/namespaces``), every object gets a ``uid`` and a
``resourceVersion`` (kopf's JSON-patch ``test`` op needs one), and the operator runs with an
explicit registry (kopf's default one, holding only ``tenrusl_operator.handlers``).
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
NAMESPACE = "payments"
WRP = "tenrusl.io/v1alpha1/webhookretrypolicies"
CRONJOBS = "batch/v1/cronjobs"
CONFIGMAPS = "v1/configmaps"
JOBS = "batch/v1/jobs"
EVENTS = "v1/events"


def _import_operator_package() -> None:
    """Make ``tenrusl_operator`` importable when the editable install predates the folder.

    Only a fallback for a stale install; ``test_packaging`` checks the real install separately.
    """
    if importlib.util.find_spec("tenrusl_operator") is not None:
        return
    spec = importlib.util.spec_from_file_location(
        "tenrusl_operator", ROOT / "operator" / "__init__.py", submodule_search_locations=[str(ROOT / "operator")]
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["tenrusl_operator"] = module
    spec.loader.exec_module(module)


_import_operator_package()


def cronjob_body(name: str = "tenrusl-retry", *, suspend: bool | None = None, **status: Any) -> dict[str, Any]:
    """A retry CronJob shaped like the chart's: it mounts the policy ConfigMap, never sets suspend."""
    spec: dict[str, Any] = {
        "schedule": "* * * * *",
        "concurrencyPolicy": "Forbid",
        "jobTemplate": {
            "spec": {
                "backoffLimit": 1,
                "template": {
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [
                            {
                                "name": "retry",
                                "image": "ghcr.io/tenrusl/tenrusl:0.1.0",
                                "args": ["retry", "run"],
                                "env": [
                                    {"name": "TENRUSL_POLICY_FILE", "value": "/etc/tenrusl/policy/policy.json"}
                                ],
                                "volumeMounts": [
                                    {"name": "policy", "mountPath": "/etc/tenrusl/policy", "readOnly": True}
                                ],
                            }
                        ],
                        "volumes": [
                            {"name": "policy", "configMap": {"name": "default-policy", "optional": True}}
                        ],
                    }
                },
            }
        },
    }
    if suspend is not None:
        spec["suspend"] = suspend
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": _meta(name),
        "spec": spec,
        "status": dict(status),
    }


def policy_body(name: str = "default", generation: int = 1, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "tenrusl.io/v1alpha1",
        "kind": "WebhookRetryPolicy",
        "metadata": {**_meta(name), "generation": generation},
        "spec": spec,
    }


def _meta(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": NAMESPACE,
        "uid": str(uuid.uuid4()),
        "resourceVersion": "1",
        "creationTimestamp": "2026-11-28T10:00:00Z",
    }


class Cluster:
    """The kmock server seen as a tiny cluster: put objects, read them back, wait for a state."""

    def __init__(self, kmock: Any) -> None:
        self.kmock = kmock

    def put(self, resource: str, body: dict[str, Any]) -> dict[str, Any]:
        self.kmock.objects[resource, body["metadata"]["namespace"], body["metadata"]["name"]] = body
        return body

    def get(self, resource: str, name: str) -> dict[str, Any] | None:
        key = (resource, NAMESPACE, name)
        if key not in self.kmock.objects:
            return None
        obj = self.kmock.objects[key]
        return None if obj.deleted else dict(obj.raw)

    def events(self) -> list[dict[str, Any]]:
        return [
            dict(obj.raw)
            for (resource, _ns, _name), obj in list(self.kmock.objects.items())
            if str(resource) == EVENTS and not obj.deleted
        ]

    async def wait_for(
        self, check: Callable[[], Any], timeout: float = 10.0, what: str = "condition"
    ) -> float:
        """Poll until ``check()`` is truthy; return the seconds it took (the test's timeout is generous)."""
        started = time.monotonic()
        while True:
            try:
                if check():
                    return time.monotonic() - started
            except (KeyError, TypeError, IndexError):
                pass
            if time.monotonic() - started > timeout:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}")
            await asyncio.sleep(0.02)


def condition(body: dict[str, Any] | None, kind: str) -> dict[str, Any]:
    for item in ((body or {}).get("status") or {}).get("conditions") or []:
        if item.get("type") == kind:
            return item
    return {}


@pytest.fixture
def cluster(kmock: Any, kubeconfig: Path) -> Cluster:
    kmock.resources.load_bundled()
    kmock.resources[WRP] = {
        "kind": "WebhookRetryPolicy",
        "singular": "webhookretrypolicy",
        "namespaced": True,
        "shortnames": ["wrp"],
        "verbs": ["get", "list", "watch", "create", "patch", "update", "delete"],
        "subresources": ["status"],
    }
    return Cluster(kmock)


@pytest.fixture
def kubeconfig(kmock: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A kubeconfig for the kmock server, exported as KUBECONFIG like a user's shell would."""
    path = tmp_path / "kubeconfig"
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "kmock", "cluster": {"server": str(kmock.url).rstrip("/")}}],
        "users": [{"name": "tester", "user": {"token": "test-token"}}],
        "contexts": [
            {"name": "kmock", "context": {"cluster": "kmock", "user": "tester", "namespace": NAMESPACE}},
            {"name": "other", "context": {"cluster": "kmock", "user": "tester", "namespace": "elsewhere"}},
        ],
        "current-context": "kmock",
    }
    path.write_text(yaml.safe_dump(doc))
    monkeypatch.setenv("KUBECONFIG", str(path))
    yield path


@pytest.fixture
async def operator(cluster: Cluster) -> AsyncIterator[Cluster]:
    """The operator, running in this event loop against the kmock server, watching NAMESPACE."""
    import kopf

    from tenrusl_operator import handlers

    registry = kopf.get_default_registry()
    stop = asyncio.Event()
    ready = asyncio.Event()
    task = asyncio.create_task(
        kopf.operator(
            registry=registry,
            namespaces=[NAMESPACE],
            standalone=True,
            stop_flag=stop,
            ready_flag=ready,
        )
    )
    await asyncio.wait_for(ready.wait(), 10)
    assert handlers.RESOURCE  # the module is loaded and registered
    try:
        yield cluster
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)


RunPlugin = Callable[..., Awaitable[tuple[int, str, str]]]


@pytest.fixture
def run_plugin(capsys: pytest.CaptureFixture[str]) -> RunPlugin:
    """Run ``kubectl tenrusl ARGS`` in a thread (it blocks; kmock serves from this loop)."""
    from tenrusl_operator import plugin

    async def run(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = await asyncio.to_thread(plugin.main, list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run
