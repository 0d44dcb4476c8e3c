"""Liveness (``/up``), readiness (``/ready``) and ``/metrics``.

``/up`` never touches the database: a database outage must not make Kubernetes restart every
receiver pod at once. ``/ready`` checks that the database answers, is migrated to this code's
schema and still serves this code's version, and turns false as soon as shutdown begins so
endpoints deregister first. Each way of being not ready has its own ``code``:

- ``shutting_down``; ``database_unavailable`` (unreachable, or no pooled connection in time);
- ``database_auth_failed``: the server refused the login, with its message (never the password);
- ``not_migrated``: the schema is older than this code (the migrate init container has not run);
- ``code_too_old``: a newer release migrated the schema and no longer serves this version.
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiohttp import web

from receiver.errors import error_response
from receiver.keys import METRICS, SETTINGS, STATE, STORE
from tenrusl import __version__
from tenrusl.compat import refusal, too_old
from tenrusl.db import connect
from tenrusl.errors import DatabaseAuthFailed, DatabaseUnavailable
from tenrusl.migrate import latest_version

log = logging.getLogger("tenrusl.health")

READY_TIMEOUT_S = 2.0
SNAPSHOT_TIMEOUT_S = 2.0
SNAPSHOT_MAX_AGE_S = 5.0
# When the pool has no connection, one direct attempt says why (refused login, or unreachable);
# its answer is reused this long, so probes during an outage do not each open a connection.
DIAGNOSIS_MAX_AGE_S = 10.0


async def up(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def ready(request: web.Request) -> web.Response:
    if request.app[STATE].get("shutting_down"):
        return _not_ready("shutting_down", "The receiver is shutting down.")
    metrics = request.app[METRICS]
    store = request.app[STORE]
    try:
        version = await asyncio.wait_for(store.schema_version(), READY_TIMEOUT_S)
    except (DatabaseUnavailable, TimeoutError):
        metrics.db_up.set(0)
        refused = await _login_refused(request.app)
        if refused:
            return _not_ready("database_auth_failed", f"The database refused the login: {refused}")
        return _not_ready("database_unavailable", "The database is unreachable.")
    except Exception as exc:  # e.g. schema_migrations missing: the database is up, not migrated
        metrics.db_up.set(1)
        log.warning("readiness check failed", extra={"action": "ready", "error": exc.__class__.__name__})
        return _not_ready("not_migrated", "The database schema is missing; run `tenrusl migrate`.")
    metrics.db_up.set(1)
    expected = latest_version()
    if version is None or version < expected:
        return _not_ready("not_migrated", f"The database schema is at {version}, the code needs {expected}.")
    try:
        compat = await asyncio.wait_for(store.compatibility(), READY_TIMEOUT_S)
    except (DatabaseUnavailable, TimeoutError):
        return _not_ready("database_unavailable", "The database is unreachable.")
    if too_old(__version__, compat):
        sentence = refusal(__version__, compat)
        return _not_ready("code_too_old", sentence[0].upper() + sentence[1:] + ".")
    return web.json_response(
        {"status": "ready", "schema_version": version, "code_version": __version__,
         "oldest_code_version": compat.oldest_code_version}
    )  # fmt: skip


async def _login_refused(app: web.Application) -> str | None:
    """The server's message when it refuses our login, from one direct connection attempt.

    Cached for DIAGNOSIS_MAX_AGE_S; logged (at warning, message only) when it changes.
    """
    state = app[STATE]
    cached = state.get("login_diagnosis")
    now = time.monotonic()
    if cached and now - cached[0] < DIAGNOSIS_MAX_AGE_S:
        return cached[1]
    refused: str | None = None
    try:
        conn = await asyncio.wait_for(connect(app[SETTINGS]), READY_TIMEOUT_S)
    except DatabaseAuthFailed as exc:
        refused = str(exc).removeprefix("database authentication failed: ")
    except (DatabaseUnavailable, TimeoutError):
        refused = None
    else:
        await conn.close()
    if refused and (not cached or cached[1] != refused):
        log.warning(
            "the database refused the login", extra={"action": "ready", "reason": "database_auth_failed",
                                                     "server_message": refused}
        )  # fmt: skip
    state["login_diagnosis"] = (now, refused)
    return refused


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
