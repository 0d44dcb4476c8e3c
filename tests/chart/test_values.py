"""values.yaml, its schema, its documentation, and the monitoring files the chart ships."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from tests.chart import values_table
from tests.chart.conftest import CHART, RELEASE, run_helm

# (values, the path the schema error names): each must make `helm template` fail.
BAD_VALUES: list[tuple[dict[str, Any], str]] = [
    ({"iamge": {"tag": "1"}}, "iamge"),
    ({"receiver": {"replicas": 3}}, "replicas"),
    ({"receiver": {"replicaCount": 0}}, "/receiver/replicaCount"),
    ({"receiver": {"replicaCount": "two"}}, "/receiver/replicaCount"),
    ({"receiver": {"port": 80}}, "/receiver/port"),
    ({"receiver": {"service": {"type": "Ingress"}}}, "/receiver/service/type"),
    (
        {"receiver": {"probes": {"readiness": {"periodSeconds": 0}}}},
        "/receiver/probes/readiness/periodSeconds",
    ),
    ({"receiver": {"resources": {"limits": {"memory": "lots"}}}}, "/receiver/resources/limits/memory"),
    ({"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy"),
    ({"image": {"digest": "latest"}}, "/image/digest"),
    ({"config": {"env": "prod"}}, "/config/env"),
    ({"config": {"providers": ["paypl"]}}, "/config/providers/0"),
    ({"config": {"extraEnv": {"lower-case": "x"}}}, "lower-case"),
    (
        {"secrets": {"providers": {"TENRUSL_STRIPE_WEBHOOK_SECRET": 42}}},
        "/secrets/providers/TENRUSL_STRIPE_WEBHOOK_SECRET",
    ),
    ({"retry": {"startingDeadlineSeconds": 5}}, "/retry/startingDeadlineSeconds"),
    ({"retry": {"schedule": "every minute"}}, "/retry/schedule"),
    ({"retry": {"timeZone": "Asia Jakarta"}}, "/retry/timeZone"),
    ({"retry": {"concurrencyPolicy": "Allow"}}, "concurrencyPolicy"),
    ({"retryPolicy": {"spec": {"paused": True}}}, "/retryPolicy/spec"),
    ({"postgresql": {"enabled": False}}, "/externalDatabase/existingSecret"),
    ({"postgresql": {"persistence": {"size": "8 GB"}}}, "/postgresql/persistence/size"),
    ({"metrics": {"serviceMonitor": {"interval": "30 seconds"}}}, "/metrics/serviceMonitor/interval"),
    ({"metrics": {"serviceMonitor": {"enabled": "yes"}}}, "/metrics/serviceMonitor/enabled"),
    ({"networkPolicy": {"enabeld": True}}, "enabeld"),
    ({"networkPolicy": {"metricsFrom": {"namespaceSelector": {}}}}, "/networkPolicy/metricsFrom"),
    ({"operator": {"metricsPort": 80}}, "/operator/metricsPort"),
    ({"operator": {"metricsPort": "8080"}}, "/operator/metricsPort"),
    ({"retryPolicy": {"mountInReceiver": "yes"}}, "/retryPolicy/mountInReceiver"),
    ({"receiver": {"workers": 0}}, "/receiver/workers"),
    ({"receiver": {"workers": "2"}}, "/receiver/workers"),
    (
        {"metrics": {"prometheusRule": {"retryPolicyMaxPauseSeconds": 60}}},
        "/metrics/prometheusRule/retryPolicyMaxPauseSeconds",
    ),
    (
        {"metrics": {"prometheusRule": {"retryPolicyMaxPauseSeconds": "4h"}}},
        "/metrics/prometheusRule/retryPolicyMaxPauseSeconds",
    ),
    (
        {"metrics": {"prometheusRule": {"runbookUrl": "https://example.com/RUNBOOK.md#top"}}},
        "/metrics/prometheusRule/runbookUrl",
    ),
    (
        {"metrics": {"prometheusRule": {"runbookUrl": "docs/RUNBOOK.md"}}},
        "/metrics/prometheusRule/runbookUrl",
    ),
]


@pytest.mark.parametrize(("values", "where"), BAD_VALUES, ids=[w for _, w in BAD_VALUES])
def test_the_schema_rejects_bad_values(helm: str, tmp_path: Any, values: dict[str, Any], where: str) -> None:
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    done = run_helm(helm, "template", RELEASE, str(CHART), "-f", str(path), check=False)
    assert done.returncode != 0, f"accepted {values}"
    assert "values don't meet the specifications of the schema" in done.stderr
    assert where in done.stderr, done.stderr


def test_lint_strict_fails_on_a_typo(helm: str) -> None:
    done = run_helm(helm, "lint", "--strict", str(CHART), "--set", "reciever.replicaCount=2", check=False)
    assert done.returncode != 0 and "reciever" in done.stdout + done.stderr


def test_the_schema_forbids_unknown_keys_at_the_top_levels() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    assert schema["additionalProperties"] is False
    for key, sub in schema["properties"].items():
        passthrough = sub.get("description", "").startswith("Kubernetes ")
        if sub.get("type") == "object" and "properties" in sub and not passthrough:
            assert sub.get("additionalProperties") is False, key
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert set(values) <= set(schema["properties"])


def test_every_value_has_a_comment() -> None:
    assert values_table.undocumented_values((CHART / "values.yaml").read_text()) == []


def test_the_readme_values_table_matches_values_yaml() -> None:
    readme = (CHART / "README.md").read_text()
    expected = values_table.readme_with_table(readme, (CHART / "values.yaml").read_text())
    assert readme == expected, "run: python -P tests/chart/values_table.py"
