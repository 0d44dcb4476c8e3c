"""The Grafana dashboard: valid JSON of the schema version it declares, its data source a template
variable, a tidy grid, and every query valid PromQL for Prometheus 2.42.

No Grafana JSON schema ships with any package we install, so the structural rules of the dashboard
model that the file relies on are written down here, per schemaVersion (Grafana 10.4 and 11 write
39): the required top-level fields, panels and rows, grid positions, data-source references as
objects (schemaVersion 36 and later), template variables and annotations.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.observability.promql import (
    DASHBOARD,
    dashboard_exprs,
    dashboard_panels,
    load_dashboard,
    write_rule_file,
)

DATASOURCE_REF = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"type": {"type": "string"}, "uid": {"type": "string"}},
}
GRID_POS = {
    "type": "object",
    "additionalProperties": False,
    "required": ["h", "w", "x", "y"],
    "properties": {
        "h": {"type": "integer", "minimum": 1},
        "w": {"type": "integer", "minimum": 1, "maximum": 24},
        "x": {"type": "integer", "minimum": 0, "maximum": 23},
        "y": {"type": "integer", "minimum": 0},
        "static": {"type": "boolean"},
    },
}
TARGET = {
    "type": "object",
    "required": ["refId", "expr", "datasource"],
    "properties": {
        "refId": {"type": "string", "minLength": 1},
        "expr": {"type": "string", "minLength": 1},
        "legendFormat": {"type": "string"},
        "datasource": DATASOURCE_REF,
        "range": {"type": "boolean"},
        "instant": {"type": "boolean"},
    },
}
PANEL = {
    "type": "object",
    "required": ["type", "id", "title", "gridPos", "datasource", "targets", "fieldConfig", "options"],
    "properties": {
        "type": {"enum": ["timeseries", "stat", "gauge", "bargauge", "table", "text", "state-timeline"]},
        "id": {"type": "integer"},
        "title": {"type": "string", "minLength": 1},
        "description": {"type": "string"},
        "gridPos": GRID_POS,
        "datasource": DATASOURCE_REF,
        "targets": {"type": "array", "minItems": 1, "items": TARGET},
        "fieldConfig": {
            "type": "object",
            "additionalProperties": False,
            "required": ["defaults", "overrides"],
            "properties": {"defaults": {"type": "object"}, "overrides": {"type": "array"}},
        },
        "options": {"type": "object"},
    },
}
ROW = {
    "type": "object",
    "additionalProperties": False,
    "required": ["type", "id", "collapsed", "panels", "gridPos"],
    "properties": {
        "type": {"const": "row"},
        "id": {"type": "integer"},
        "title": {"type": "string"},
        "collapsed": {"type": "boolean"},
        "gridPos": GRID_POS,
        "panels": {"type": "array", "items": PANEL},
        "datasource": DATASOURCE_REF,
        "repeat": {"type": "string"},
    },
}
VARIABLE = {
    "type": "object",
    "required": ["type", "name"],
    "properties": {
        "type": {
            "enum": ["query", "adhoc", "constant", "datasource", "interval", "textbox", "custom", "system"]
        },
        "name": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
        "query": {"type": ["string", "object"]},
        "datasource": DATASOURCE_REF,
        "hide": {"enum": [0, 1, 2]},
        "refresh": {"enum": [0, 1, 2]},
        "sort": {"type": "integer", "minimum": 0, "maximum": 8},
        "includeAll": {"type": "boolean"},
        "multi": {"type": "boolean"},
    },
}
ANNOTATION = {
    "type": "object",
    "required": ["name", "datasource", "enable", "iconColor"],
    "properties": {
        "datasource": DATASOURCE_REF,
        "enable": {"type": "boolean"},
        "builtIn": {"type": "number"},
    },
}
SCHEMAS: dict[int, dict[str, Any]] = {
    39: {
        "type": "object",
        "required": ["schemaVersion", "title", "uid", "panels", "templating", "annotations", "time"],
        "properties": {
            "schemaVersion": {"const": 39},
            "uid": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,40}$"},
            "title": {"type": "string", "minLength": 1},
            "id": {"type": ["integer", "null"]},
            "version": {"type": "integer"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "timezone": {"type": "string"},
            "editable": {"type": "boolean"},
            "graphTooltip": {"enum": [0, 1, 2]},
            "refresh": {"anyOf": [{"type": "string"}, {"const": False}]},
            "time": {
                "type": "object",
                "required": ["from", "to"],
                "properties": {"from": {"type": "string"}, "to": {"type": "string"}},
            },
            "panels": {"type": "array", "minItems": 1, "items": {"anyOf": [ROW, PANEL]}},
            "templating": {
                "type": "object",
                "required": ["list"],
                "properties": {"list": {"type": "array", "items": VARIABLE}},
            },
            "annotations": {
                "type": "object",
                "required": ["list"],
                "properties": {"list": {"type": "array", "items": ANNOTATION}},
            },
            "links": {"type": "array"},
        },
    }
}
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return load_dashboard()  # json.loads: a syntax error fails here


def test_valid_for_the_schema_version_it_declares(dashboard: dict[str, Any]) -> None:
    version = dashboard.get("schemaVersion")
    assert version in SCHEMAS, f"schemaVersion {version!r} has no structural rules here; add them"
    errors = sorted(jsonschema.Draft7Validator(SCHEMAS[version]).iter_errors(dashboard), key=str)
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:10])


def test_the_structural_rules_can_fail(dashboard: dict[str, Any]) -> None:
    broken = {
        **dashboard,
        "panels": [{**dashboard["panels"][1], "gridPos": {"h": 8, "w": 30, "x": 0, "y": 0}}],
    }
    assert list(jsonschema.Draft7Validator(SCHEMAS[39]).iter_errors(broken))
    assert list(jsonschema.Draft7Validator(SCHEMAS[39]).iter_errors({**dashboard, "schemaVersion": "39"}))


def test_datasource_is_a_template_variable(dashboard: dict[str, Any]) -> None:
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for panel in dashboard_panels(dashboard):
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == DATASOURCE, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, panel["title"]
    for variable in variables.values():
        if variable["type"] == "query":
            assert variable["datasource"] == DATASOURCE


def test_ids_are_unique_and_panels_do_not_overlap(dashboard: dict[str, Any]) -> None:
    panels = dashboard_panels(dashboard)
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    cells: dict[tuple[int, int], str] = {}
    for panel in panels:
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, panel.get("title")
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in cells, f"{panel.get('title')} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel.get("title", "")
        ref_ids = [t["refId"] for t in panel.get("targets", [])]
        assert len(ref_ids) == len(set(ref_ids)), panel.get("title")


def test_the_issue_s_panels_are_there(dashboard: dict[str, Any]) -> None:
    text = DASHBOARD.read_text()
    for metric in (
        "tenrusl_webhooks_total",  # ingest rate
        'status=~\\"5..\\"',  # 5xx ratio
        "tenrusl_webhook_signature_failures_total",  # signature-failure ratio
        "tenrusl_retry_backlog",  # backlog
        "tenrusl_retry_backlog_oldest_seconds",  # oldest due
        'result=\\"claimed\\"',  # retry pressure
        "tenrusl_http_request_duration_seconds_bucket",  # p95 latencies
        "tenrusl_db_query_duration_seconds_bucket",  # database p95
        'status=\\"dead\\"',  # dead letters
        "tenrusl_retry_policy_paused",  # paused state
        "tenrusl_retry_policy_paused_since_timestamp_seconds",  # paused for how long
        "tenrusl_retry_policy_cap",  # the per-run cap
    ):
        assert metric in text, metric


@pytest.mark.skipif(
    shutil.which("promtool") is None, reason="promtool not installed (Debian package `prometheus`)"
)
def test_every_query_is_valid_promql(dashboard: dict[str, Any], tmp_path: Path) -> None:
    exprs = dashboard_exprs(dashboard)
    assert len(exprs) > 20
    rules = write_rule_file(exprs, tmp_path / "dashboard_rules.yaml")
    done = subprocess.run(
        ["promtool", "check", "rules", str(rules)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
