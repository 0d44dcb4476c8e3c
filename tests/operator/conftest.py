"""Fixtures for the operator: a kmock API server holding a retry CronJob, and the operator on it.

kmock's three gotchas (docs/design-notes.md, "The operator") are handled here once: the bundled resources are
loaded (kopf waits forever without ``v1/namespaces``), every object gets a ``uid`` and a
``resourceVersion`` (kopf's JSON-patch ``test`` op needs one), and the operator runs with an
explicit registry (kopf's default one, holding only ``tenrusl_operator.handlers``).
"""

from __future__ import annotations

import asyncio
import json
import threading
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


def cronjob_body(
    name: str = "tenrusl-retry", *, suspend: bool | None = None, **status: Any
) -> dict[str, Any]:
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
                                    {
                                        "name": "TENRUSL_POLICY_FILE",
                                        "value": "/etc/tenrusl/policy/policy.json",
                                    }
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
        "metadata": {**_meta(name), "labels": dict(CHART_CRONJOB_LABELS)},
        "spec": spec,
        "status": dict(status),
    }


# The labels the chart puts on its retry CronJob (release "tenrusl"): the operator's proof of ownership.
CHART_CRONJOB_LABELS = {
    "app.kubernetes.io/name": "tenrusl",
    "app.kubernetes.io/instance": "tenrusl",
    "app.kubernetes.io/component": "retry-runner",
    "app.kubernetes.io/part-of": "tenrusl",
    "app.kubernetes.io/managed-by": "Helm",
}


def policy_body(
    name: str = "default", generation: int = 1, labels: dict[str, str] | None = None, **spec: Any
) -> dict[str, Any]:
    return {
        "apiVersion": "tenrusl.io/v1alpha1",
        "kind": "WebhookRetryPolicy",
        "metadata": {
            **_meta(name),
            "generation": generation,
            "labels": labels or {"app.kubernetes.io/instance": "tenrusl"},
        },
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
        try:
            obj = self.kmock.objects[resource, NAMESPACE, name]
        except KeyError:
            return None
        return None if obj.deleted else json.loads(json.dumps(obj.raw))

    def must(self, resource: str, name: str) -> dict[str, Any]:
        """The object, which the test expects to exist (KeyError, which wait_for retries, if not)."""
        found = self.get(resource, name)
        if found is None:
            raise KeyError(f"{resource}/{name} does not exist")
        return found

    async def wait_for(
        self, check: Callable[[], Any], within: float = 10.0, what: str = "condition"
    ) -> float:
        """Poll until ``check()`` is truthy; return the seconds it took (the test's timeout is generous)."""
        started = time.monotonic()
        while True:
            try:
                if check():
                    return time.monotonic() - started
            except (KeyError, TypeError, IndexError):
                pass
            if time.monotonic() - started > within:
                raise AssertionError(f"timed out after {within}s waiting for {what}")
            await asyncio.sleep(0.02)


def condition(body: dict[str, Any] | None, kind: str) -> dict[str, Any]:
    for item in ((body or {}).get("status") or {}).get("conditions") or []:
        if item.get("type") == kind:
            return item
    return {}


# The API calls the operator made in this session's kmock tests, by test: (group, resource, verb).
# tests/operator/test_rbac.py compares them with the chart's Role.
OPERATOR_CALLS: dict[str, set[tuple[str, str, str]]] = {}
# Who the operator is in kmock's request log: kopf's own client, and the operator's kubernetes client.
OPERATOR_AGENTS = ("kopf/", "tenrusl-operator/")


def rbac_verb(method: str, name: str | None, params: dict[str, str]) -> str:
    """The RBAC verb the API server checks for a request (Kubernetes' request-info rules)."""
    if method == "GET":
        if params.get("watch") in ("true", "1"):
            return "watch"
        return "get" if name else "list"
    return {"POST": "create", "PUT": "update", "PATCH": "patch"}.get(method) or (
        "delete" if name else "deletecollection"
    )


def operator_calls(kmock: Any) -> set[tuple[str, str, str]]:
    """(apiGroup, resource[/subresource], verb) of every resource request the operator sent."""
    calls = set()
    for request in list(kmock):
        agent = request.headers.get("User-Agent", "")
        if request.resource is None or not request.resource.plural or not agent.startswith(OPERATOR_AGENTS):
            continue  # the test's own calls, or discovery (allowed to every account)
        resource = request.resource.plural + (f"/{request.subresource}" if request.subresource else "")
        verb = rbac_verb(request.method.value, request.name, dict(request.params))
        calls.add((request.resource.group or "", resource, verb))
    return calls


@pytest.fixture
def cluster(kmock: Any, kubeconfig: Path, request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """The kmock API server; afterwards, the calls the operator made in it are recorded."""
    kmock.resources.load_bundled()
    kmock.resources[WRP] = {
        "kind": "WebhookRetryPolicy",
        "singular": "webhookretrypolicy",
        "namespaced": True,
        "shortnames": ["wrp"],
        "verbs": ["get", "list", "watch", "create", "patch", "update", "delete"],
        "subresources": ["status"],
    }
    yield Cluster(kmock)
    OPERATOR_CALLS[request.node.nodeid] = operator_calls(kmock)


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


class StartOperator:
    """``await start_operator(registry=None, memo=None)`` starts the operator; ``await
    start_operator.stop()`` stops every one started (as Helm deletes the operator's Deployment)."""

    def __init__(self, start: Callable[..., Awaitable[Cluster]], stop: Callable[[], Awaitable[None]]) -> None:
        self._start, self.stop = start, stop

    async def __call__(self, registry: Any = None, memo: Any = None) -> Cluster:
        return await self._start(registry, memo)


@pytest.fixture
async def start_operator(cluster: Cluster) -> AsyncIterator[StartOperator]:
    """Start the operator against the kmock server, in a thread with its own event loop.

    Not in the test's loop: on shutdown kopf cancels every task created after it started, which
    there would include kmock's request handlers and pytest's own fixture tasks. The default
    registry holds ``tenrusl_operator.handlers`` only; a test may pass its own.
    """
    import kopf
    from tenrusl_operator import handlers

    stops: list[threading.Event] = []
    threads: list[threading.Thread] = []
    errors: list[BaseException] = []

    async def start(registry: kopf.OperatorRegistry | None = None, memo: kopf.Memo | None = None) -> Cluster:
        """``memo``: kopf's root memo, as ``tenrusl operator`` passes it (the metrics port)."""
        ready, stop = threading.Event(), threading.Event()
        stops.append(stop)

        def run() -> None:
            try:
                asyncio.run(
                    kopf.operator(
                        registry=registry or kopf.get_default_registry(),
                        namespaces=[NAMESPACE],  # namespace-scoped, as deployed
                        standalone=True,
                        stop_flag=stop,
                        ready_flag=ready,
                        memo=memo,
                    )
                )
            except BaseException as exc:  # reported by the fixture, not lost in the thread
                errors.append(exc)

        thread = threading.Thread(target=run, name="kopf-operator", daemon=True)
        thread.start()
        threads.append(thread)
        assert await asyncio.to_thread(ready.wait, 10), f"the operator did not start: {errors}"
        return cluster

    async def stop_all() -> None:
        for stop in stops:
            stop.set()
        for thread in threads:
            await asyncio.to_thread(thread.join, 20)
            assert not thread.is_alive(), "the operator did not stop within 20 s"

    assert handlers.RESOURCE
    try:
        yield StartOperator(start, stop_all)
    finally:
        await stop_all()
        assert not errors, f"the operator failed: {errors!r}"


@pytest.fixture
async def operator(start_operator: StartOperator) -> Cluster:
    """The operator with its real handlers, running."""
    return await start_operator()


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


def fast_memo(observe_s: float = 0.2, **values: Any) -> Any:
    """A root memo that makes the operator's periodic look come every ``observe_s`` instead of 30 s."""
    import kopf

    return kopf.Memo(observe_interval=observe_s, **values)


def metrics_memo(observe_s: float = 30.0) -> Any:
    """A root memo that makes the operator serve /metrics on a free loopback port."""
    return fast_memo(observe_s, metrics_port=0, metrics_host="127.0.0.1")


async def metrics_text(memo: Any) -> str:
    """The operator's /metrics (started with :func:`metrics_memo`)."""
    import aiohttp

    url = f"http://127.0.0.1:{memo.metrics_port}/metrics"
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        assert resp.status == 200
        return await resp.text()


async def scrape(memo: Any) -> dict[tuple[str, str], float]:
    """The operator's /metrics as {(sample name, policy): value}."""
    from prometheus_client.parser import text_string_to_metric_families

    return {
        (sample.name, f"{sample.labels['policy_namespace']}/{sample.labels['policy']}"): sample.value
        for family in text_string_to_metric_families(await metrics_text(memo))
        for sample in family.samples
    }
