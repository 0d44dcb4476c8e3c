"""No dead code: every named SQL block has a caller, and nothing defines a function no one calls."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

from tenrusl.sql import load_queries

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ("tenrusl", "receiver", "retry_job", "devserver", "operator")
# Methods of aiohttp classes we subclass, which aiohttp itself calls.
AIOHTTP_OVERRIDES = {"handle_error", "_make_runner"}


def source_files() -> list[Path]:
    return sorted(p for folder in SOURCE for p in (ROOT / folder).rglob("*.py"))


def string_constants(files: list[Path]) -> set[str]:
    found: set[str] = set()
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                found.add(node.value)
    return found


def test_every_named_query_has_a_caller() -> None:
    """A block in tenrusl/sql/queries/*.sql that no code names by its string is dead SQL."""
    named = set(load_queries())
    called = string_constants([p for p in source_files() if p != ROOT / "tenrusl" / "sql" / "__init__.py"])
    assert sorted(named - called) == []


def test_no_function_class_or_import_is_unused() -> None:
    """vulture over the code, the tests and the benchmarks; entry points and decorated handlers
    (kopf, pgqueuer, schemathesis hooks and checks) are called by their frameworks, pytest hooks by pytest, and the aiohttp
    methods we override (receiver/server.py, tests/conftest.py) by aiohttp."""
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]
    entry_points = {target.split(":")[1] for target in scripts["tenrusl.commands"].values()}
    result = subprocess.run(
        [
            sys.executable,
            "-P",
            "-m",
            "vulture",
            *SOURCE,
            "tests",
            "bench",
            "--min-confidence",
            "60",
            "--ignore-decorators",
            "@kopf.*,@pgq.entrypoint,@schemathesis.*",
            "--ignore-names",
            ",".join(
                sorted(
                    entry_points
                    | {"pytest_generate_tests", "pytest_configure", "pytest_collection_modifyitems"}
                    | AIOHTTP_OVERRIDES
                )
            ),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode in (0, 3), result.stderr  # 3: vulture found something
    # Unused variables and attributes are mostly dataclass fields and framework settings.
    findings = [
        line
        for line in result.stdout.splitlines()
        if "unused variable" not in line and "unused attribute" not in line
    ]
    assert findings == [], "\n".join(findings)
