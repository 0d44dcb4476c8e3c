"""values.yaml, its schema, its documentation, and the monitoring files the chart ships."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from typing import Any

import pytest
import yaml

from receiver.metrics import Metrics
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


def _live_metric_names() -> set[str]:
    """Every sample name the receiver exports, with a database snapshot present."""
    metrics = Metrics()
    metrics.set_snapshot({
        "events_by_status": {"failed": 1}, "backlog": 1, "backlog_oldest_seconds": 1.0,
        "runs_totals": {}, "runs_by_outcome": {"completed": 1}, "last_run": {},
        "last_run_ts": 1.0, "last_success_ts": 1.0,
    })  # fmt: skip
    metrics.http_requests.labels(route="/up", method="GET", status="200").inc()
    metrics.webhooks.labels(provider="mock", outcome="accepted").inc()
    text = metrics.render().decode()
    return {
        line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")
    }


def _metric_names(expr: str) -> set[str]:
    return set(re.findall(r"\btenrusl_[a-z0-9_]+", expr))


def test_alert_rules_use_metrics_the_receiver_exports_and_carry_their_annotations() -> None:
    rules = yaml.safe_load((CHART / "files" / "alerts.yaml").read_text())
    alerts = {r["alert"]: r for g in rules["groups"] for r in g["rules"] if "alert" in r}
    live = _live_metric_names()
    for name, rule in alerts.items():
        assert _metric_names(rule["expr"]) and _metric_names(rule["expr"]) <= live, name
        assert rule["for"] and rule["labels"]["severity"] in ("warning", "critical"), name
        assert {"summary", "description", "runbook_url"} <= set(rule["annotations"]), name
    assert (
        "> 1000" in alerts["TenruslRetryBacklogHigh"]["expr"]
        and alerts["TenruslRetryBacklogHigh"]["for"] == "10m"
    )
    assert (
        "> 0.01" in alerts["TenruslReceiver5xxRatioHigh"]["expr"]
        and alerts["TenruslReceiver5xxRatioHigh"]["for"] == "5m"
    )


def test_promtool_accepts_the_alert_rules() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian package prometheus)")
    done = subprocess.run([promtool, "check", "rules", str(CHART / "files" / "alerts.yaml")],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 2 rules found" in done.stdout


def test_the_dashboard_is_grafana_json_on_exported_metrics() -> None:
    dashboard = json.loads((CHART / "files" / "dashboard.json").read_text())
    assert isinstance(dashboard["schemaVersion"], int) and dashboard["uid"] and dashboard["title"]
    live = _live_metric_names()
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)) >= 4
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            assert _metric_names(target["expr"]) and _metric_names(target["expr"]) <= live, panel["title"]
