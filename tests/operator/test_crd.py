"""The CRD: its names, a structural schema that teaches, defaults that match the runner, and its rules."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest
from tenrusl_operator import crd, reconcile

from tenrusl import policy as policy_module
from tenrusl.constants import PROVIDERS
from tenrusl.policy import BACKOFF_MODES, RetryPolicy


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return crd.load_crd(str(crd.CRD_FILE))


def spec_schema() -> dict[str, Any]:
    return crd.object_schema()["properties"]["spec"]


def test_names_scope_and_status_subresource(doc: dict[str, Any]) -> None:
    assert doc["metadata"]["name"] == "webhookretrypolicies.tenrusl.io"
    assert doc["spec"]["group"] == "tenrusl.io"
    assert doc["spec"]["scope"] == "Namespaced"
    names = doc["spec"]["names"]
    assert (names["kind"], names["plural"], names["shortNames"]) == (
        "WebhookRetryPolicy",
        "webhookretrypolicies",
        ["wrp"],
    )
    (version,) = doc["spec"]["versions"]
    assert version["name"] == "v1alpha1" and version["served"] and version["storage"]
    assert version["subresources"] == {"status": {}}


def test_the_crd_is_a_valid_kubernetes_object(doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, "1.32", strict=True)


def test_printer_columns(doc: dict[str, Any]) -> None:
    columns = {c["name"]: c for c in crd.version_entry(doc)["additionalPrinterColumns"]}
    for name in ("Paused", "Mode", "Limit", "Batch", "Cap", "Max attempts", "Last schedule", "Age"):
        assert name in columns, name
    assert columns["Paused"]["jsonPath"] == ".spec.paused"
    assert columns["Batch"]["jsonPath"] == ".spec.batchSize"
    assert columns["Cap"]["jsonPath"] == ".status.cap"
    assert columns["Resumed"]["jsonPath"] == ".status.resumedAt"
    assert columns["Mode"]["jsonPath"] == ".spec.backoff.mode"
    assert columns["Last schedule"]["jsonPath"] == ".status.lastScheduleTime"
    assert columns["Age"]["jsonPath"] == ".metadata.creationTimestamp"


def _nodes(node: dict[str, Any], path: str) -> list[tuple[str, dict[str, Any]]]:
    found = [(path, node)]
    for name, sub in node.get("properties", {}).items():
        found += _nodes(sub, f"{path}.{name}")
    if "items" in node:
        found += _nodes(node["items"], f"{path}[]")
    return found


def test_every_spec_and_status_field_is_typed_and_described() -> None:
    """Structural (every node typed) and teaching (``kubectl explain wrp.spec`` has text everywhere)."""
    schema = crd.object_schema()
    nodes = _nodes(schema["properties"]["spec"], "spec") + _nodes(schema["properties"]["status"], "status")
    assert len(nodes) > 25
    for path, node in nodes:
        assert node.get("type"), f"{path} has no type"
        if not path.endswith("[]") or node.get("type") == "object":
            assert node.get("description"), f"{path} has no description"


def test_defaults_are_the_retry_policy_defaults() -> None:
    """An empty spec, defaulted like the API server does, states exactly RetryPolicy()'s policy."""
    defaulted = crd.validate_spec({})
    assert defaulted == {
        "paused": False,
        "limit": 2000,
        "batchSize": 200,
        "maxAttempts": 22,
        "leaseSeconds": 120,
        "backoff": {"mode": "full", "baseMs": 60000, "capMs": 43200000},
        "resume": {"rampMinutes": 15, "floor": 100},
        "cronJobName": "tenrusl-retry",
    }
    assert reconcile.policy_from_spec(defaulted, {}) == RetryPolicy()


def test_bounds_and_enums_match_the_policy_module() -> None:
    props = spec_schema()["properties"]
    backoff = props["backoff"]["properties"]
    knob = policy_module.KNOB
    assert (props["limit"]["minimum"], props["limit"]["maximum"]) == (1, knob["limit"].maximum)
    assert props["maxAttempts"]["maximum"] == knob["max_attempts"].maximum
    assert (props["leaseSeconds"]["minimum"], props["leaseSeconds"]["maximum"]) == (
        knob["lease_seconds"].minimum,
        knob["lease_seconds"].maximum,
    )
    for name in ("baseMs", "capMs"):
        assert (backoff[name]["minimum"], backoff[name]["maximum"]) == (0, policy_module.MAX_DELAY_MS)
    assert tuple(backoff["mode"]["enum"]) == BACKOFF_MODES
    assert tuple(props["providers"]["items"]["enum"]) == PROVIDERS


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"paused": True}, {"paused": True, "limit": 2000, "batchSize": 200}),
        ({"limit": 50, "batchSize": 500}, {"limit": 50, "batchSize": 500, "resume.rampMinutes": 15}),
        ({"resume": {"rampMinutes": 0}}, {"resume.rampMinutes": 0, "resume.floor": 100}),
        (
            {"limit": 50, "backoff": {"mode": "equal"}},
            {"limit": 50, "backoff.mode": "equal", "backoff.capMs": 43200000},
        ),
        ({"providers": ["stripe", "xendit"], "maxAttempts": 5}, {"providers": ["stripe", "xendit"]}),
        ({"backoff": {"schedule": [5000, 60000, 300000]}, "maxAttempts": 3}, {"backoff.baseMs": 60000}),
        ({"cronJobName": "retry-eu", "configMapName": "eu-policy"}, {"cronJobName": "retry-eu"}),
    ],
)
def test_valid_policies_pass_with_defaults_applied(spec: dict[str, Any], expected: dict[str, Any]) -> None:
    defaulted = crd.validate_spec(spec)
    for dotted, value in expected.items():
        node: Any = defaulted
        for part in dotted.split("."):
            node = node[part]
        assert node == value, dotted
    reconcile.policy_from_spec(defaulted, {})  # and the operator accepts what the CRD accepts


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"limit": 0}, "spec.limit"),
        ({"limit": 100001}, "spec.limit"),
        ({"batchSize": 0}, "spec.batchSize"),
        ({"batchSize": 2001}, "spec.batchSize"),
        ({"resume": {"rampMinutes": -1}}, "spec.resume.rampMinutes"),
        ({"resume": {"floor": 0}}, "spec.resume.floor"),
        ({"resume": {"steps": 3}}, "spec.resume"),
        ({"maxAttempts": "many"}, "spec.maxAttempts"),
        ({"leaseSeconds": 1}, "spec.leaseSeconds"),
        ({"paused": "yes"}, "spec.paused"),
        ({"backoff": {"mode": "linear"}}, "spec.backoff.mode"),
        ({"backoff": {"baseMs": -1}}, "spec.backoff.baseMs"),
        ({"backoff": {"schedule": [1000, -5]}}, "spec.backoff.schedule.1"),
        ({"providers": ["visa"]}, "spec.providers.0"),
        ({"cronJobName": "Retry_Job"}, "spec.cronJobName"),
        ({"limits": 5}, "spec"),
        # The CEL rules, checked in Python:
        ({"backoff": {"baseMs": 5000, "capMs": 1000}}, "spec.backoff.capMs"),
        ({"maxAttempts": 2, "backoff": {"schedule": [1, 2, 3]}}, "spec.backoff.schedule"),
    ],
)
def test_invalid_policies_fail_for_the_right_field(spec: dict[str, Any], field: str) -> None:
    with pytest.raises(crd.SpecError) as caught:
        crd.validate_spec(spec)
    assert str(caught.value).startswith(f"{field}:"), str(caught.value)


def test_cel_rules_are_present() -> None:
    rules = crd.cel_rules()
    assert rules["spec.backoff"] == ["self.capMs >= self.baseMs"]
    assert rules["spec.cronJobName"] == ["self == oldSelf"]
    assert rules["spec.configMapName"] == ["self == oldSelf"]
    assert any("size(self.backoff.schedule) <= self.maxAttempts" in r for r in rules["spec"])
    for node_rules in crd.object_schema()["properties"]["spec"]["properties"]["backoff"][
        "x-kubernetes-validations"
    ]:
        assert node_rules["message"]
