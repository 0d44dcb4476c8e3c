"""The named SQL blocks as they are sent: without their comment lines, within psycopg's cache."""

from __future__ import annotations

import importlib

from tenrusl.sql import _parse, load_queries

# psycopg keeps this limit in a private module; 4096 bytes is its value in 3.1 and 3.2, kept as the
# fallback so a psycopg that moves the name still runs the check.
MAX_CACHED_STATEMENT_LENGTH: int = getattr(
    importlib.import_module("psycopg._queries"), "MAX_CACHED_STATEMENT_LENGTH", 4096
)


def test_comment_lines_are_not_sent() -> None:
    text = "-- name: one\n-- what it does\nSELECT 1\n    -- why\n  FROM t -- kept\n-- name: two\nSELECT 2\n"
    assert _parse(text, "x.sql") == {"one": "SELECT 1\n  FROM t -- kept", "two": "SELECT 2"}


def test_every_statement_fits_psycopgs_conversion_cache() -> None:
    """psycopg converts a longer statement's parameters again at every execution (the retry
    runner's claim and settle run at every batch: docs/PERFORMANCE.md)."""
    too_long = {name: len(sql.encode()) for name, sql in load_queries().items()}
    assert {n: size for n, size in too_long.items() if size > MAX_CACHED_STATEMENT_LENGTH} == {}
