"""The alert rules: valid for Prometheus 2.42, conventional, and unit-tested both ways by promtool."""

from __future__ import annotations

import re
import shutil
import subprocess
from typing import Any

import pytest
import yaml

from tests.observability.promql import ALERTS, ALERTS_TEST, alerts, load_rules, metric_names

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (Debian package `prometheus`; .ci/run installs it)"
)
RUNBOOK_BASE = "https://github.com/tenrusl/tenrusl/blob/main/docs/RUNBOOK.md#"
SEVERITIES = {"critical", "warning", "info"}


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=120)


@needs_promtool
def test_promtool_check_rules() -> None:
    done = _promtool("check", "rules", str(ALERTS))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(load_rules())} rules found" in done.stdout


@needs_promtool
def test_promtool_unit_tests_pass() -> None:
    done = _promtool("test", "rules", str(ALERTS_TEST))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


@needs_promtool
@pytest.mark.parametrize(
    ("rule_text", "changed", "case", "alert"),
    [
        (
            "(tenrusl_retry_backlog) > 1000",
            "(tenrusl_retry_backlog) > 2000",
            "backlog",
            "TenruslRetryBacklogHigh",
        ),
        # the longest allowed pause, in its one place
        (
            "vector(4 * 3600)",
            "vector(5 * 3600)",
            "a retry policy left paused",
            "TenruslRetryPolicyPausedTooLong",
        ),
        # the stale alert without the operator's paused signal fires on paused namespaces too
        (
            "unless on (namespace)\n          tenrusl:retry_policy_paused:by_namespace\n",
            'unless on (namespace)\n          tenrusl:retry_policy_paused:by_namespace{namespace="nowhere"}\n',
            "no successful retry run",
            "TenruslRetryRunnerStale",
        ),
    ],
)
def test_a_wrong_expectation_fails_the_unit_tests(
    tmp_path: Any, rule_text: str, changed: str, case: str, alert: str
) -> None:
    """The unit tests can fail: the same file with one threshold or join changed does not pass."""
    rules = tmp_path / "alerts.yaml"
    text = ALERTS.read_text()
    assert text.count(rule_text) == 1, rule_text
    rules.write_text(text.replace(rule_text, changed))
    tests = tmp_path / "alerts_test.yaml"
    doc = yaml.safe_load(ALERTS_TEST.read_text())
    doc["rule_files"] = [str(rules)]
    doc["tests"] = [test for test in doc["tests"] if test["name"].startswith(case)]
    assert doc["tests"], case
    tests.write_text(yaml.safe_dump(doc))
    done = _promtool("test", "rules", str(tests))
    assert done.returncode == 1 and f"alertname: {alert}" in done.stdout + done.stderr


def test_every_alert_is_conventional() -> None:
    names = [rule["alert"] for rule in alerts()]
    assert len(names) == len(set(names)) >= 8
    for rule in alerts():
        name = rule["alert"]
        assert re.fullmatch(r"Tenrusl[A-Z][A-Za-z0-9]+", name), name
        assert rule["labels"]["severity"] in SEVERITIES, name
        assert re.fullmatch(r"\d+[smh]", rule["for"]), name
        annotations = rule["annotations"]
        assert set(annotations) == {"summary", "description", "runbook_url"}, name
        assert annotations["runbook_url"] == RUNBOOK_BASE + name.lower(), name


def test_recorded_series_are_defined_before_use() -> None:
    recorded = {rule["record"] for rule in load_rules() if "record" in rule}
    for rule in load_rules():
        for name in metric_names(rule["expr"]):
            assert ":" not in name or name in recorded, (rule.get("alert") or rule.get("record"), name)


def test_every_alert_has_a_firing_and_a_silent_unit_test() -> None:
    """Each alert is expected to fire in some test, and each such test also holds series that
    must not fire (other namespaces, or an evaluation before `for:` elapsed)."""
    doc = yaml.safe_load(ALERTS_TEST.read_text())
    fires: dict[str, int] = {}
    silent: dict[str, int] = {}
    for case in doc["tests"]:
        namespaces = set(
            re.findall(r'namespace="([^"]+)"', " ".join(s["series"] for s in case["input_series"]))
        )
        for check in case.get("alert_rule_test", []):
            name = check["alertname"]
            expected = check.get("exp_alerts") or []
            firing = {a["exp_labels"].get("namespace") for a in expected}
            if expected:
                fires[name] = fires.get(name, 0) + 1
            if not expected or namespaces - firing:
                silent[name] = silent.get(name, 0) + 1
    for rule in alerts():
        assert fires.get(rule["alert"]), f"{rule['alert']}: no test where it fires"
        assert silent.get(rule["alert"]), f"{rule['alert']}: no test where it stays silent"
