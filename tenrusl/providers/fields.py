"""Reading fields out of parsed payloads (JSON objects or parsed forms) and delivery headers."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

# Delivery headers, looked up by name. The receiver passes aiohttp's ``request.headers``, whose
# lookups ignore case; other callers pass a ``multidict.CIMultiDict`` (or lower-case keys).
Headers = Mapping[str, str]


def dig(payload: Any, path: str) -> Any:
    """``dig(p, "data.object.id")``: the nested value, or None when any step is missing."""
    node = payload
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def first_string(payload: Mapping[str, Any], paths: Iterable[str]) -> str | None:
    """The first non-empty string among ``paths`` (numbers do not count, as in the original)."""
    for path in paths:
        value = dig(payload, path)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def header(headers: Headers, name: str) -> str:
    """A header's value, trimmed; ``""`` when absent."""
    return (headers.get(name) or "").strip()
