"""What the observability tests read from the rules and the dashboard: expressions and the metric
names they use, without a PromQL parser (Prometheus 2.42's promtool checks the syntax itself)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import ROOT

ALERTS = ROOT / "charts" / "tenrusl" / "files" / "alerts.yaml"
ALERTS_TEST = ROOT / "tests" / "observability" / "alerts_test.yaml"
DASHBOARD = ROOT / "charts" / "tenrusl" / "files" / "dashboard.json"
RUNBOOK = ROOT / "docs" / "RUNBOOK.md"

# Grafana's variables, replaced by values Prometheus accepts so promtool can check the queries.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$namespace": ".*", "$job": ".*"}

_KEYWORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "offset",
    "bool",
    "and",
    "or",
    "unless",
    "inf",
    "nan",
}
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGES = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENT = re.compile(r"(?<![\w:.])([A-Za-z_:][\w:]*)(?![\w:])(?!\s*\()")


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (functions, keywords, labels left out)."""
    text = _STRINGS.sub('""', expr)
    text = _MATCHERS.sub("", text)
    text = _RANGES.sub("", text)
    text = _GROUPING.sub("", text)
    text = re.sub(r"\boffset\s+\w+", "", text)
    return {m for m in _IDENT.findall(text) if m.lower() not in _KEYWORDS and not re.fullmatch(r"\d\w*", m)}


def load_rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(ALERTS.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def alerts() -> list[dict[str, Any]]:
    return [rule for rule in load_rules() if "alert" in rule]


def load_dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def dashboard_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, including those nested in rows."""
    found = []
    for panel in dashboard.get("panels", []):
        found.append(panel)
        found.extend(panel.get("panels", []))
    return found


def dashboard_exprs(dashboard: dict[str, Any]) -> list[str]:
    exprs = [t["expr"] for p in dashboard_panels(dashboard) for t in p.get("targets", []) if "expr" in t]
    for variable in dashboard["templating"]["list"]:
        query = variable.get("query")
        if variable.get("type") == "query" and isinstance(query, str):
            match = re.fullmatch(r"label_values\((.*),\s*\w+\)", query)
            if match:
                exprs.append(match.group(1))
    return exprs


def prometheus_ready(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    return expr


def write_rule_file(exprs: list[str], path: Path) -> Path:
    """Each expression as a recording rule, for `promtool check rules`."""
    rules = [{"record": f"dashboard:query_{i}", "expr": prometheus_ready(e)} for i, e in enumerate(exprs)]
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    return path
