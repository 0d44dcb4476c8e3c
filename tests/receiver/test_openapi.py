"""The OpenAPI documents are valid, served, and each describes exactly the routes of its listener."""

from __future__ import annotations

import re

import pytest
import yaml
from aiohttp import web
from openapi_spec_validator import validate

from receiver.app import create_admin_app, create_app
from receiver.openapi import ADMIN, MAIN, document_text
from tenrusl import __version__

LISTENERS = (MAIN, ADMIN)


def spec(listener: str = MAIN) -> dict:
    return yaml.safe_load(document_text(listener))


@pytest.mark.parametrize("listener", LISTENERS)
def test_document_is_valid_openapi_3_1(listener):
    doc = spec(listener)
    assert doc["openapi"].startswith("3.1")
    assert doc["info"]["version"] == __version__
    validate(doc)


def documented_routes(listener: str = MAIN) -> set[tuple[str, str]]:
    doc = spec(listener)
    default_servers = [s["url"] for s in doc["servers"]]
    routes = set()
    for path, item in doc["paths"].items():
        servers = [s["url"] for s in item.get("servers", [])] or default_servers
        for method in ("get", "post", "put", "patch", "delete", "options"):
            if method in item:
                for server in servers:
                    routes.add((method.upper(), (server.rstrip("/") + path)))
    return routes


def app_routes(app: web.Application) -> set[tuple[str, str]]:
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
    app = create_app(settings)
    assert app_routes(app) == documented_routes(MAIN)
    assert app_routes(create_admin_app(app)) == documented_routes(ADMIN)


def test_no_route_is_on_both_listeners_but_the_document_itself(settings):
    app = create_app(settings)
    shared = app_routes(app) & app_routes(create_admin_app(app))
    assert shared == {("GET", "/api/openapi.yaml")}
    assert not [p for _, p in app_routes(app) if "/admin/" in p or p == "/metrics"], (
        "no admin route on the main port"
    )
    assert {p for _, p in app_routes(create_admin_app(app))} >= {"/metrics", "/api/v1/admin/webhook-events"}


async def test_each_listener_serves_its_own_document(client):
    for listener, served in ((MAIN, client), (ADMIN, client.admin)):
        resp = await served.get("/api/openapi.yaml")
        assert resp.status == 200 and yaml.safe_load(await resp.text()) == spec(listener)
    assert (await client.get("/metrics")).status == 404
    assert (await client.get("/api/v1/admin/webhook-events")).status == 404
    assert (await client.admin.post("/api/v1/webhooks/mock", data=b"{}")).status == 404
