"""Packaging and architecture: every command loads, layers are respected, the operator imports."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

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


def _from_the_repository_root(*args: str) -> subprocess.CompletedProcess[str]:
    """Python started in the repository root the plain way: no safe-path mode, cwd first on sys.path."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONSAFEPATH"}
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("module", ["tenrusl", "receiver", "retry_job", "devserver", "tenrusl_operator"])
def test_python_m_works_from_the_repository_root(module: str) -> None:
    result = _from_the_repository_root("-m", module, "--help")
    assert result.returncode == 0, result.stderr
    assert "usage:" in result.stdout


def test_the_operator_folder_never_passes_for_the_standard_library_silently() -> None:
    """When nothing imported `operator` first (here: no site module), the folder would shadow the
    standard library and break `collections` with a puzzling error; it says what to do instead."""
    result = _from_the_repository_root("-S", "-c", "import collections")
    assert result.returncode != 0
    assert "operator/ folder was imported as the standard library's `operator`" in result.stderr
    assert "python -P" in result.stderr
    safe = _from_the_repository_root("-S", "-P", "-c", "import collections, operator; print(operator.eq)")
    assert safe.returncode == 0 and "built-in function eq" in safe.stdout
