"""Every SQL statement TenRusl runs, loaded once from the named blocks in ``queries/*.sql``.

Format of a query file: a block starts with a header line ``-- name: <query_name>`` followed by
comment lines that describe it, then the statement, with psycopg ``%(param)s`` parameters. Lines
that hold only a comment are not part of the statement's text. Names are unique across all files;
``tenrusl.store.Store`` is the only user of this mapping.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from typing import LiteralString

_HEADER = re.compile(r"^-- name: (?P<name>[a-z_][a-z0-9_]*)\s*$", re.MULTILINE)
# Whole-line comments: they explain the statement in the file and are left out of the text sent.
# psycopg caches the conversion of a statement's parameters only for texts up to 4 kB, and the
# retry runner's claim and settle run at every batch (docs/PERFORMANCE.md).
_COMMENT_LINE = re.compile(r"^[ \t]*--.*\n?", re.MULTILINE)


def _parse(text: str, origin: str) -> dict[str, str]:
    found: dict[str, str] = {}
    headers = list(_HEADER.finditer(text))
    for here, nxt in zip(headers, [*headers[1:], None], strict=True):
        body = _COMMENT_LINE.sub("", text[here.end() : nxt.start() if nxt else len(text)]).strip()
        if not body:
            raise ValueError(f"{origin}: query {here['name']!r} is empty")
        found[here["name"]] = body
    return found


def load_queries() -> dict[str, LiteralString]:
    queries: dict[str, LiteralString] = {}
    folder = resources.files(__package__).joinpath("queries")
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".sql"):
            continue
        for name, body in _parse(entry.read_text(encoding="utf-8"), entry.name).items():
            if name in queries:
                raise ValueError(f"{entry.name}: query {name!r} is defined twice")
            queries[name] = body  # from our own files: as literal as a string constant
    return queries


@cache
def migrations() -> tuple[tuple[str, str], ...]:
    """``(version, sql)`` pairs in order; the version is the file name without ``.sql``.

    Read once per process: readiness asks for the newest version on every probe.
    """
    folder = resources.files(__package__).joinpath("migrations")
    files = sorted((e for e in folder.iterdir() if e.name.endswith(".sql")), key=lambda e: e.name)
    return tuple((e.name.removesuffix(".sql"), e.read_text(encoding="utf-8")) for e in files)


queries = load_queries()
