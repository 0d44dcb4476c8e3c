"""docs/configuration.md lists exactly the variables the code reads: no more, no fewer."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tenrusl.constants import PROVIDERS
from tenrusl.policy import KNOBS
from tenrusl.providers import provider_spec
from tenrusl.settings import RATE_PER_MINUTE, RATE_PER_SECOND

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "configuration.md"
SOURCE = ("tenrusl", "receiver", "retry_job", "devserver", "operator")
NAME = re.compile(r"TENRUSL_[A-Z0-9_]+")
LEEWAY = "TENRUSL_<PROVIDER>_LEEWAY_SECONDS"


def documented() -> dict[str, str]:
    """Every variable in the first column of a table row, with the row it is in."""
    rows: dict[str, str] = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.split("|")[1:-1]]
        if len(cells) < 3 or not cells[0] or set(cells[0]) <= {"-"}:
            continue
        first = cells[1] if cells[0] in {"any", *PROVIDERS} else cells[0]
        for name in re.findall(r"`([A-Z][A-Z0-9_<>]+)`", first):
            rows[name] = line
    return rows


def read_by_the_code() -> set[str]:
    """Every TENRUSL_* string constant in the code, and every provider variable it declares."""
    names: set[str] = set()
    for folder in SOURCE:
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if (
                    isinstance(node, ast.Constant)
                    and isinstance(node.value, str)
                    and NAME.fullmatch(node.value)
                ):
                    names.add(node.value)
    for name in PROVIDERS:
        spec = provider_spec(name)
        names.add(spec.leeway.names[0].replace(f"_{name.upper()}_", "_<PROVIDER>_"))
        for setting in spec.variables:
            names.update(setting.names)
    return names


def test_the_doc_lists_exactly_the_variables_the_code_reads() -> None:
    doc = documented()
    code = read_by_the_code()
    tenrusl_doc = {n for n in doc if n.startswith("TENRUSL_")}
    tenrusl_code = {n for n in code if n.startswith("TENRUSL_")}
    assert sorted(tenrusl_code - tenrusl_doc) == [], "read by the code, missing from docs/configuration.md"
    assert sorted(tenrusl_doc - tenrusl_code) == [], "in docs/configuration.md, read by no code"
    assert LEEWAY in doc


def test_every_legacy_provider_name_is_documented_with_its_variable() -> None:
    doc = documented()
    for name in PROVIDERS:
        for setting in provider_spec(name).variables:
            row = doc[setting.names[0]]
            assert row.split("|")[1].strip() == name, setting.names[0]
            for legacy in setting.names[1:]:
                assert f"`{legacy}`" in row, (setting.names[0], legacy)


def test_the_retry_rows_state_the_policy_defaults() -> None:
    doc = documented()
    for knob in KNOBS:
        row = doc[knob.env]
        assert f"| `{knob.default}` |" in row, knob.env
        for alias in knob.aliases:
            assert f"`{alias}`" in row


def test_the_rate_limit_rows_state_the_defaults() -> None:
    doc = documented()
    assert f"| `{RATE_PER_SECOND}` |" in doc["TENRUSL_RATE_WEBHOOKS_PER_SECOND"]
    assert f"| `{RATE_PER_MINUTE}` |" in doc["TENRUSL_RATE_WEBHOOKS_PER_MINUTE"]
