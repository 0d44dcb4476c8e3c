"""The OpenAPI document is valid, served, and describes exactly the routes the app has."""

from __future__ import annotations

import re

import yaml
from openapi_spec_validator import validate

from receiver.app import create_app
from receiver.openapi import document_text


def spec() -> dict:
    return yaml.safe_load(document_text())


def test_document_is_valid_openapi_3_1():
    doc = spec()
    assert doc["openapi"].startswith("3.1")
    validate(doc)


def documented_routes() -> set[tuple[str, str]]:
    doc = spec()
    default_servers = [s["url"] for s in doc["servers"]]
    routes = set()
    for path, item in doc["paths"].items():
        servers = [s["url"] for s in item.get("servers", [])] or default_servers
        for method in ("get", "post", "put", "patch", "delete", "options"):
            if method in item:
                for server in servers:
                    routes.add((method.upper(), (server.rstrip("/") + path)))
    return routes


def app_routes(settings) -> set[tuple[str, str]]:
    app = create_app(settings)
    routes = set()
    for route in app.router.routes():
        if route.method == "HEAD":
            continue
        assert route.resource is not None
        path = route.resource.canonical
        path = re.sub(r"\{(\w+)(:[^}]*)?\}", r"{\1}", path)  # drop the regex part of {name:regex}
        routes.add((route.method, path))
    return routes


def test_every_route_is_documented_and_every_documented_route_exists(settings):
    assert app_routes(settings) == documented_routes()


async def test_document_is_served(client):
    resp = await client.get("/api/openapi.yaml")
    assert resp.status == 200 and yaml.safe_load(await resp.text())["openapi"] == "3.1.0"
