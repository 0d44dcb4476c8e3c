"""This code's version, read from the package metadata: pyproject.toml is its only home.

The chart's ``version``/``appVersion`` and the image label follow it (a test checks the chart;
``scripts/ensure-tools`` passes it to the image build), and the database compares it with the
oldest version it still serves (:mod:`tenrusl.compat`).
"""

from __future__ import annotations

import tomllib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

DISTRIBUTION = "tenrusl"
PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def code_version() -> str:
    """The installed distribution's version; in a source tree that was never installed, pyproject's."""
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        with open(PYPROJECT, "rb") as fh:
            return str(tomllib.load(fh)["project"]["version"])


def release(text: str) -> tuple[int, ...]:
    """The release segment of a version (``"0.2.0rc1"`` -> ``(0, 2, 0)``), for ordering.

    Pre-release and local parts are ignored: ``0.2.0rc1`` serves what ``0.2.0`` serves.
    """
    parts: list[int] = []
    for piece in text.strip().lstrip("vV").split("."):
        digits = ""
        for char in piece:
            if not char.isdigit():
                break
            digits += char
        if not digits:
            break
        parts.append(int(digits))
        if len(digits) < len(piece):
            break
    if not parts:
        raise ValueError(f"{text!r} is not a version")
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts)
