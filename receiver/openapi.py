"""Serves the OpenAPI 3.1 document (``receiver/openapi.yaml``; a test keeps it equal to the routes)."""

from __future__ import annotations

from functools import cache
from importlib import resources

from aiohttp import web


@cache
def document_text() -> str:
    return resources.files("receiver").joinpath("openapi.yaml").read_text(encoding="utf-8")


async def document(request: web.Request) -> web.Response:
    return web.Response(text=document_text(), content_type="application/yaml")
