"""Liveness (``/up``), readiness (``/ready``) and ``/metrics``.

``/up`` never touches the database: a database outage must not make Kubernetes restart every
receiver pod at once. ``/ready`` checks that the database answers and is migrated to this code's
schema, and turns false as soon as shutdown begins so endpoints deregister first.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from receiver.errors import error_response
from receiver.keys import METRICS, STATE, STORE
from tenrusl.errors import DatabaseUnavailable
from tenrusl.migrate import latest_version

log = logging.getLogger("tenrusl.health")

READY_TIMEOUT_S = 2.0
SNAPSHOT_TIMEOUT_S = 2.0
SNAPSHOT_MAX_AGE_S = 5.0


async def up(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def ready(request: web.Request) -> web.Response:
    if request.app[STATE].get("shutting_down"):
        return _not_ready("shutting_down", "The receiver is shutting down.")
    metrics = request.app[METRICS]
    try:
        version = await asyncio.wait_for(request.app[STORE].schema_version(), READY_TIMEOUT_S)
    except (DatabaseUnavailable, TimeoutError):
        metrics.db_up.set(0)
        return _not_ready("database_unavailable", "The database is unreachable.")
    except Exception as exc:  # e.g. schema_migrations missing: the database is up, not migrated
        metrics.db_up.set(1)
        log.warning("readiness check failed", extra={"action": "ready", "error": exc.__class__.__name__})
        return _not_ready("not_migrated", "The database schema is missing; run `tenrusl migrate`.")
    metrics.db_up.set(1)
    expected = latest_version()
    if version is None or version < expected:
        return _not_ready("not_migrated", f"The database schema is at {version}, the code needs {expected}.")
    return web.json_response({"status": "ready", "schema_version": version})


def _not_ready(code: str, message: str) -> web.Response:
    return error_response(503, code, message)


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text. The database gauges come from a snapshot shared by all scrapes: one query
    per SNAPSHOT_MAX_AGE_S at most; a scrape waits SNAPSHOT_TIMEOUT_S for it, then is served the
    last values (and the request-path metrics) anyway."""
    m = request.app[METRICS]
    await m.refresh(
        request.app[STORE].metrics_snapshot, max_age_s=SNAPSHOT_MAX_AGE_S, timeout_s=SNAPSHOT_TIMEOUT_S
    )
    return web.Response(
        body=m.render(),
        content_type="text/plain",
        charset="utf-8",
        headers={"X-Content-Type-Options": "nosniff"},
    )
