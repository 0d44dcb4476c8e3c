"""``create_app(settings)``: the receiver, with nothing done at import time; and its admin listener.

Resources are cleanup contexts (pool, providers), started in order and closed in reverse.
:func:`create_admin_app` builds the second listener (``/metrics`` and the admin API, on
``TENRUSL_ADMIN_PORT``): a separate application with its own routes that shares the main one's
settings, metrics, state and store, so no route of one port exists on the other.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator

import redis.asyncio as aioredis
from aiohttp import web

from receiver.event_types import parse_allowlist
from receiver.keys import INGEST, METRICS, PROVIDERS, RATE_LIMITER, REDIS, SETTINGS, STATE, STORE
from receiver.metrics import Metrics
from receiver.middlewares import MIDDLEWARES, add_response_headers
from receiver.providers import load_providers
from receiver.ratelimit import REDIS_TIMEOUT_S, RateLimiter
from receiver.routes import setup_admin_routes, setup_routes
from tenrusl.compat import require_compatible
from tenrusl.db import open_pool
from tenrusl.errors import DatabaseUnavailable
from tenrusl.settings import Settings
from tenrusl.store import Store
from tenrusl.store.batch import GroupCommit

log = logging.getLogger("tenrusl.receiver")

STARTUP_CHECK_TIMEOUT_S = 5.0


async def pool_context(app: web.Application) -> AsyncIterator[None]:
    async with open_pool(app[SETTINGS]) as pool:
        metrics = app[METRICS]
        app[STORE] = store = Store(pool, observe=metrics.observe_query, on_error=metrics.count_db_error)
        await refuse_an_incompatible_schema(store)
        settings = app[SETTINGS]
        app[INGEST] = ingest = GroupCommit(
            store,
            max_batch=settings.ingest_batch_max,
            flushes=settings.ingest_batch_concurrency,
            retry_delay_ms=0,  # a stored event that could not be applied is due for a retry at once
            max_attempts=settings.max_retry_attempts,
        )
        yield
        await ingest.close()  # batches in flight commit before the pool closes


async def refuse_an_incompatible_schema(store: Store) -> None:
    """Do not start on a schema that no longer serves this version (CodeTooOld: `tenrusl` exits 1).

    A database that does not answer now is no reason to stop: the receiver starts, and /ready
    checks the same thing on every probe.
    """
    try:
        compat = await asyncio.wait_for(store.compatibility(), STARTUP_CHECK_TIMEOUT_S)
    except (DatabaseUnavailable, TimeoutError):
        return
    require_compatible(compat)


async def providers_context(app: web.Application) -> AsyncIterator[None]:
    yield
    for provider in app[PROVIDERS].values():
        await provider.close()


async def redis_context(app: web.Application) -> AsyncIterator[None]:
    """One shared Redis client; creating it does not connect, so a Redis outage never blocks start-up."""
    url = app[SETTINGS].redis_url
    assert url, "redis_context is installed only when TENRUSL_REDIS_URL is set"
    client = aioredis.from_url(url, socket_connect_timeout=REDIS_TIMEOUT_S, socket_timeout=1.0)
    app[REDIS] = client
    app[RATE_LIMITER].attach(client)
    yield
    app[RATE_LIMITER].attach(None)
    await client.aclose()


async def freeze_startup_objects(app: web.Application) -> None:
    """Move everything built at start-up out of the garbage collector's view.

    Modules, settings, providers and the pool are alive for the whole process; without this,
    every full collection walks them again (py-spy showed the collector at about a tenth of the
    CPU under bench/receiver_throughput.py load).
    """
    gc.collect()
    gc.freeze()


async def mark_shutting_down(app: web.Application) -> None:
    app[STATE]["shutting_down"] = True


def create_app(settings: Settings, *, shared_metrics: bool = False) -> web.Application:
    """The receiver app; ``shared_metrics``: one of several worker processes (receiver/supervisor.py)."""
    # The gate enforces the webhook cap itself; this only bounds other bodies (payments JSON).
    app = web.Application(middlewares=MIDDLEWARES, client_max_size=settings.webhook_max_payload_bytes + 1)
    app[SETTINGS] = settings
    app[METRICS] = Metrics(shared=shared_metrics)
    app[STATE] = {"shutting_down": False}
    app[PROVIDERS] = load_providers(settings)  # a bad provider setting fails here, at start-up
    app[RATE_LIMITER] = RateLimiter(settings, app[METRICS].registry)  # bad overrides fail at start-up
    parse_allowlist(settings.allowed_event_types)  # so does a malformed event-type allowlist
    app.cleanup_ctx.append(pool_context)
    if settings.redis_url:
        app.cleanup_ctx.append(redis_context)
    app.cleanup_ctx.append(providers_context)
    app.on_startup.append(freeze_startup_objects)
    app.on_shutdown.append(mark_shutting_down)
    app.on_response_prepare.append(add_response_headers)
    setup_routes(app)
    return app


def create_admin_app(main: web.Application) -> web.Application:
    """The admin listener of ``main``: started after it (it uses the store ``main`` opens)."""
    admin = web.Application(middlewares=MIDDLEWARES, client_max_size=main._client_max_size)
    admin[SETTINGS] = main[SETTINGS]
    admin[METRICS] = main[METRICS]
    admin[STATE] = main[STATE]

    async def share_the_store(app: web.Application) -> AsyncIterator[None]:
        app[STORE] = main[STORE]
        yield

    admin.cleanup_ctx.append(share_the_store)
    admin.on_response_prepare.append(add_response_headers)
    setup_admin_routes(admin)
    return admin
