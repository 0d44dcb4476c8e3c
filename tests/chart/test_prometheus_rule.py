"""The PrometheusRule: files/alerts.yaml as it is, with the pause threshold and the runbook base
substituted from values; promtool evaluates what the chart renders."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart.conftest import CHART, RELEASE, Render, one, run_helm
from tests.observability.promql import ALERTS, ALERTS_TEST

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (Debian package `prometheus`; .ci/run installs it)"
)
ENABLED = {"metrics.prometheusRule.enabled": True}
MAX_PAUSE = "tenrusl:retry_policy_max_pause_seconds"
RUNBOOK = "https://github.com/tenrusl/tenrusl/blob/main/docs/RUNBOOK.md"
MIRROR = "https://git.example.com/ops/tenrusl/-/blob/main/docs/RUNBOOK.md"


def rule_spec(render: Render, **sets: Any) -> dict[str, Any]:
    return one(render(sets={**ENABLED, **sets}), "PrometheusRule")["spec"]


def the_file() -> dict[str, Any]:
    return yaml.safe_load(ALERTS.read_text())


def rules(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [rule for group in spec["groups"] for rule in group["rules"]]


def with_max_pause(spec: dict[str, Any], expr: str) -> dict[str, Any]:
    """``spec`` with the threshold's expression replaced (a copy)."""
    copy = yaml.safe_load(yaml.safe_dump(spec))
    (rule,) = [r for r in rules(copy) if r.get("record") == MAX_PAUSE]
    rule["expr"] = expr
    return copy


def test_the_defaults_render_alerts_yaml_unchanged(render: Render) -> None:
    spec = rule_spec(render)
    assert spec == the_file()
    assert [r["expr"] for r in rules(spec) if r.get("record") == MAX_PAUSE] == ["vector(4 * 3600)"]
    values = yaml.safe_load((CHART / "values.yaml").read_text())["metrics"]["prometheusRule"]
    assert values["retryPolicyMaxPauseSeconds"] == 4 * 3600 and values["runbookUrl"] == RUNBOOK


@pytest.mark.parametrize(
    ("seconds", "expr"), [(7200, "vector(2 * 3600)"), (5400, "vector(5400)"), (86400, "vector(24 * 3600)")]
)
def test_a_changed_pause_threshold_changes_that_rule_and_nothing_else(
    render: Render, seconds: int, expr: str
) -> None:
    spec = rule_spec(render, **{"metrics.prometheusRule.retryPolicyMaxPauseSeconds": seconds})
    assert spec != the_file()
    assert spec == with_max_pause(the_file(), expr)


def test_the_runbook_base_moves_every_runbook_url_and_nothing_else(render: Render) -> None:
    spec = rule_spec(render, **{"metrics.prometheusRule.runbookUrl": MIRROR})
    alerts = [r for r in rules(spec) if "alert" in r]
    assert len(alerts) >= 8
    for rule in alerts:
        assert rule["annotations"]["runbook_url"] == f"{MIRROR}#{rule['alert'].lower()}"
    assert RUNBOOK not in yaml.safe_dump(spec)
    original = {r["alert"]: r["annotations"]["runbook_url"] for r in rules(the_file()) if "alert" in r}
    for rule in alerts:
        rule["annotations"]["runbook_url"] = original[rule["alert"]]
    assert spec == the_file()


def test_a_rules_file_without_the_replaced_text_fails_the_render(helm: str, tmp_path: Path) -> None:
    """An edit of files/alerts.yaml that drops the threshold's exact text must not silently drop the value."""
    chart = tmp_path / "tenrusl"
    shutil.copytree(CHART, chart)
    path = chart / "files" / "alerts.yaml"
    path.write_text(path.read_text().replace("vector(4 * 3600)", "vector(14400)"))
    done = run_helm(
        helm, "template", RELEASE, str(chart), "--set", "metrics.prometheusRule.enabled=true", check=False
    )
    assert done.returncode != 0
    assert 'no longer holds "vector(4 * 3600)"' in done.stderr


# -- promtool evaluates the rendered rules -------------------------------------------------------


def write_rules(spec: dict[str, Any], path: Path) -> Path:
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def promtool_test(rule_file: Path, tests: dict[str, Any], path: Path) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    path.write_text(yaml.safe_dump({**tests, "rule_files": [str(rule_file)]}, sort_keys=False))
    return subprocess.run([PROMTOOL, "test", "rules", str(path)], capture_output=True, text=True, timeout=120)


def paused_two_hours_nine_minutes(rule: dict[str, Any], runbook: str) -> dict[str, Any]:
    """A policy paused at t=60 s and never resumed: silent at 2 h, firing at 130 min under a 2 h
    threshold (over it from 121 min, then the rule's 5 minutes pending); a 4 h threshold is silent."""
    labels = {"namespace": "payments", "job": f"{RELEASE}-operator", "policy_namespace": "payments", "policy": "default"}  # fmt: skip
    matchers = ", ".join(f'{k}="{v}"' for k, v in labels.items())
    series = f"tenrusl_retry_policy_paused_since_timestamp_seconds{{{matchers}}}"
    description = (
        rule["annotations"]["description"]
        .replace("{{ $labels.policy_namespace }}", "payments")
        .replace("{{ $labels.policy }}", "default")
        .replace("{{ $value | humanizeDuration }}", "2h 9m 0s")  # 130 min - 60 s
    )
    return {
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [{"series": series, "values": "60+0x200"}],
                "alert_rule_test": [
                    {"alertname": rule["alert"], "eval_time": "2h", "exp_alerts": []},
                    {
                        "alertname": rule["alert"],
                        "eval_time": "130m",
                        "exp_alerts": [
                            {
                                "exp_labels": {**labels, "severity": "warning"},
                                "exp_annotations": {
                                    "summary": rule["annotations"]["summary"],
                                    "description": description,
                                    "runbook_url": f"{runbook}#{rule['alert'].lower()}",
                                },
                            }
                        ],
                    },
                ],
            }
        ],
    }


@needs_promtool
def test_the_rendered_default_rules_pass_every_promtool_unit_test(render: Render, tmp_path: Path) -> None:
    rendered = write_rules(rule_spec(render), tmp_path / "rendered.yaml")
    done = promtool_test(rendered, yaml.safe_load(ALERTS_TEST.read_text()), tmp_path / "tests.yaml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


@needs_promtool
def test_prometheus_fires_at_the_rendered_threshold_with_the_rendered_runbook_url(
    render: Render, tmp_path: Path
) -> None:
    (rule,) = [r for r in rules(the_file()) if r.get("alert") == "TenruslRetryPolicyPausedTooLong"]
    tests = paused_two_hours_nine_minutes(rule, MIRROR)
    two_hours = rule_spec(
        render,
        **{
            "metrics.prometheusRule.retryPolicyMaxPauseSeconds": 7200,
            "metrics.prometheusRule.runbookUrl": MIRROR,
        },
    )
    done = promtool_test(write_rules(two_hours, tmp_path / "2h.yaml"), tests, tmp_path / "t2h.yaml")
    assert done.returncode == 0, done.stdout + done.stderr
    # The same expectations against the default 4 h threshold: no alert at 130 minutes.
    done = promtool_test(write_rules(rule_spec(render), tmp_path / "4h.yaml"), tests, tmp_path / "t4h.yaml")
    assert done.returncode == 1 and "alertname: TenruslRetryPolicyPausedTooLong" in done.stdout + done.stderr
