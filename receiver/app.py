"""``create_app(settings)``: the receiver, with nothing done at import time.

Resources are cleanup contexts (pool, providers), started in order and closed in reverse.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web

from receiver.keys import METRICS, PROVIDERS, SETTINGS, STATE, STORE
from receiver.metrics import Metrics
from receiver.middlewares import MIDDLEWARES, add_response_headers
from receiver.providers import load_providers
from receiver.routes import setup_routes
from tenrusl.db import open_pool
from tenrusl.settings import Settings
from tenrusl.store import Store

log = logging.getLogger("tenrusl.receiver")


async def pool_context(app: web.Application) -> AsyncIterator[None]:
    async with open_pool(app[SETTINGS]) as pool:
        app[STORE] = Store(pool, observe=app[METRICS].observe_query)
        yield


async def providers_context(app: web.Application) -> AsyncIterator[None]:
    yield
    for provider in app[PROVIDERS].values():
        await provider.close()


async def mark_shutting_down(app: web.Application) -> None:
    app[STATE]["shutting_down"] = True


def create_app(settings: Settings) -> web.Application:
    # The gate enforces the webhook cap itself; this only bounds other bodies (payments JSON).
    app = web.Application(middlewares=MIDDLEWARES, client_max_size=settings.webhook_max_payload_bytes + 1)
    app[SETTINGS] = settings
    app[METRICS] = Metrics()
    app[STATE] = {"shutting_down": False}
    app[PROVIDERS] = load_providers(settings)  # a bad provider setting fails here, at start-up
    app.cleanup_ctx.append(pool_context)
    app.cleanup_ctx.append(providers_context)
    app.on_shutdown.append(mark_shutting_down)
    app.on_response_prepare.append(add_response_headers)
    setup_routes(app)
    return app
