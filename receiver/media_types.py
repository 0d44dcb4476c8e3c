"""Media types the receiver accepts in request bodies."""

from __future__ import annotations


def is_json(content_type: str) -> bool:
    """``application/json`` or any ``*+json`` media type (lower-case, as aiohttp gives it)."""
    return content_type == "application/json" or content_type.endswith("+json")
