"""Serves the OpenAPI 3.1 documents, one per listener, from ``receiver/openapi.yaml``.

The file describes every route; a path marked ``x-tenrusl-listener: admin`` is served by the admin
listener only, the others by the main one (``/openapi.yaml`` by both, each listing its own paths).
``info.version`` is this code's version. A test keeps each document equal to its app's routes.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import yaml
from aiohttp import web

from tenrusl import __version__

LISTENER = "x-tenrusl-listener"
MAIN, ADMIN = "main", "admin"
SHARED_PATHS = ("/openapi.yaml",)


def source() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(
        resources.files("receiver").joinpath("openapi.yaml").read_text(encoding="utf-8")
    )
    return doc


@cache
def document_text(listener: str = MAIN) -> str:
    """The document a listener serves: its own paths, and this code's version."""
    doc = source()
    doc["info"]["version"] = __version__
    doc["paths"] = {
        path: {key: value for key, value in item.items() if key != LISTENER}
        for path, item in doc["paths"].items()
        if path in SHARED_PATHS or item.get(LISTENER, MAIN) == listener
    }
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=110)


async def main_document(request: web.Request) -> web.Response:
    return web.Response(text=document_text(MAIN), content_type="application/yaml")


async def admin_document(request: web.Request) -> web.Response:
    return web.Response(text=document_text(ADMIN), content_type="application/yaml")
