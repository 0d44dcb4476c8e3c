"""The chart README's values table, made from values.yaml and its ``# --`` comments.

``python -P tests/chart/values_table.py`` rewrites the table in charts/tenrusl/README.md (between
the two marker comments); tests/chart/test_values.py fails when the README is out of date or a
value has no comment.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

CHART = Path(__file__).resolve().parents[2] / "charts" / "tenrusl"
BEGIN = "<!-- values-table:begin -->"
END = "<!-- values-table:end -->"
_KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z0-9_.-]+):(?P<rest>.*)$")


def documented_values(text: str) -> list[tuple[str, str]]:
    """(dotted key, description) for every key that has a ``# -- description`` comment above it."""
    rows: list[tuple[str, str]] = []
    path: list[tuple[int, str]] = []
    pending: str | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("# --"):
            pending = stripped[4:].strip()
            continue
        match = _KEY.match(line)
        if not match:
            if stripped and not stripped.startswith("#"):
                pending = None  # a list item or continuation: the comment was not for a key
            continue
        indent = len(match["indent"])
        while path and path[-1][0] >= indent:
            path.pop()
        path.append((indent, match["key"]))
        if pending is not None:
            rows.append((".".join(key for _, key in path), pending))
            pending = None
    return rows


def undocumented_values(text: str) -> list[str]:
    """Keys holding a value (not a group of keys) that have no ``# --`` comment."""
    values = yaml.safe_load(text)
    documented = {key for key, _ in documented_values(text)}
    missing: list[str] = []

    def walk(node: Any, prefix: str) -> None:
        for key, value in node.items():
            dotted = f"{prefix}{key}"
            if dotted in documented:
                continue
            if isinstance(value, dict) and value:
                walk(value, dotted + ".")
            else:
                missing.append(dotted)

    walk(values, "")
    return missing


def lookup(values: dict[str, Any], dotted: str) -> Any:
    node: Any = values
    for part in dotted.split("."):
        node = node[part]
    return node


def table(text: str) -> str:
    values = yaml.safe_load(text)
    lines = ["| Key | Default | Description |", "|---|---|---|"]
    for key, description in documented_values(text):
        default = json.dumps(lookup(values, key), separators=(", ", ": "))
        lines.append(f"| `{key}` | `{default}` | {description.replace('|', '&#124;')} |")
    return "\n".join(lines) + "\n"


def readme_with_table(readme: str, values_text: str) -> str:
    head, rest = readme.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{table(values_text)}{END}{tail}"


def main() -> int:
    readme = CHART / "README.md"
    readme.write_text(readme_with_table(readme.read_text(), (CHART / "values.yaml").read_text()))
    print(f"updated {readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
