"""Packaging and architecture: every command loads, layers are respected, the operator imports."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_declared_command_loads():
    eps = entry_points(group="tenrusl.commands")
    assert {ep.name for ep in eps} >= {
        "migrate",
        "serve",
        "dev",
        "retry",
        "status",
        "simulate",
        "sign",
        "operator",
    }
    for ep in eps:
        assert callable(ep.load()), ep.name


def test_import_layers_hold():
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_cli_help_lists_commands():
    result = subprocess.run(
        [sys.executable, "-P", "-m", "tenrusl.cli", "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0
    for command in ("dev", "migrate", "serve"):
        assert command in result.stdout


def test_every_package_folder_is_installed():
    import tomllib

    declared = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = set()
    for init in ROOT.glob("*/**/__init__.py"):
        rel = init.parent.relative_to(ROOT)
        if rel.parts[0] in {"tests", "bench", ".venv", ".cache", "build"}:
            continue
        parts = list(rel.parts)
        parts[0] = "tenrusl_operator" if parts[0] == "operator" else parts[0]
        found.add(".".join(parts))
    assert found == declared
