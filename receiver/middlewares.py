"""The receiver's one middleware: request id, JSON error envelope, access log and HTTP metrics.

They were three nested middlewares; one costs a third of the coroutine frames per request
(docs/PERFORMANCE.md, "Receiver ingest") and does the same in the same order: the request id is
set first and reset last, errors become envelopes, and the access log and metrics see the
status that is sent.

Security headers and the ``X-Request-ID`` echo are added in ``on_response_prepare`` so that they
reach every response, including ones aiohttp builds itself.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from receiver.errors import ApiError, error_response
from receiver.keys import METRICS, SETTINGS
from tenrusl.constants import MAX_REQUEST_ID
from tenrusl.errors import DatabaseUnavailable, UnstorableText
from tenrusl.ids import new_id
from tenrusl.logs import request_id_var

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

log = logging.getLogger("tenrusl.receiver")
access_log = logging.getLogger("tenrusl.access")

REQUEST_ID = web.RequestKey("request_id", str)
_UNSAFE = re.compile(r"[^A-Za-z0-9\-_.:]")
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$", re.IGNORECASE)

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
    "Cache-Control": "no-store",
}

# The code of every 400 for a request that is not well-formed HTTP (see receiver/server.py).
MALFORMED_REQUEST = "malformed_request"
# Recorded (never sent) when the handler was cancelled because the client closed the connection,
# as nginx does, so that disconnects do not count as 5xx in the metrics and alerts.
CLIENT_CLOSED = 499

_STATUS_CODES = {
    400: ("bad_request", "The request is malformed."),
    401: ("unauthorized", "Unauthorized."),
    403: ("forbidden", "Forbidden."),
    404: ("not_found", "Endpoint not found."),
    405: ("method_not_allowed", "Method not allowed."),
    413: ("payload_too_large", "The request body is too large."),
    415: ("unsupported_media_type", "Unsupported content type."),
    429: ("rate_limited", "Too many requests."),
}


def resolve_request_id(request: web.Request) -> str:
    """X-Request-ID, else X-Correlation-ID, else the traceparent trace id, else a new ULID."""
    for name in ("X-Request-ID", "X-Correlation-ID"):
        value = _UNSAFE.sub("", request.headers.get(name, "").strip()[:MAX_REQUEST_ID])
        if value:
            return value
    match = _TRACEPARENT.match(request.headers.get("traceparent", "").strip())
    if match:
        return match.group(1).lower()
    return new_id()


def route_label(request: web.Request) -> str:
    """The route template (bounded cardinality), never the raw path."""
    info = request.match_info
    resource = info.route.resource if info.http_exception is None else None
    return resource.canonical if resource is not None else "unmatched"


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def method_label(method: str) -> str:
    """The HTTP method, or ``other``: clients may send any token as a method."""
    return method if method in _METHODS else "other"


@web.middleware
async def receiver_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    rid = resolve_request_id(request)
    request[REQUEST_ID] = rid
    token = request_id_var.set(rid)
    started = time.perf_counter()
    status = 500
    try:
        try:
            response = await handler(request)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            response = error_answer(request, exc)
        status = response.status
        return response
    except asyncio.CancelledError:
        status = CLIENT_CLOSED  # the client went away mid-request: not a server error
        raise
    finally:
        elapsed = time.perf_counter() - started
        route = route_label(request)
        request.app[METRICS].count_http(route, method_label(request.method), status, elapsed)
        if access_log.isEnabledFor(logging.INFO):
            access_log.info(
                "request",
                extra={
                    "action": "http",
                    "method": request.method,
                    "route": route,
                    "path": request.path,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 3),
                    "remote": request.remote,
                },
            )
        request_id_var.reset(token)


def error_answer(request: web.Request, exc: Exception) -> web.StreamResponse:
    """The JSON envelope for a handler's exception; re-raises one that is not an error (3xx)."""
    try:
        raise exc
    except ApiError as exc:
        return error_response(exc.status, exc.code, exc.message, exc.headers, exc.fields)
    except DatabaseUnavailable:
        retry_after = str(request.app[SETTINGS].retry_after_s)
        log.warning("database unavailable", extra={"action": "db_unavailable", "path": request.path})
        return error_response(
            503,
            "database_unavailable",
            "The service is temporarily unavailable; retry later.",
            {"Retry-After": retry_after},
        )
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code, message = _STATUS_CODES.get(exc.status, ("http_error", exc.reason))
        headers = {k: v for k, v in exc.headers.items() if k in ("Allow", "Retry-After")}
        return error_response(exc.status, code, message, headers)
    except (web.RequestPayloadError, HttpProcessingError, ConnectionResetError) as exc:
        # The body could not be read: bad chunked or compressed framing, or the client went away.
        log.info("request body unreadable", extra={"action": "bad_body", "error": exc.__class__.__name__})
        response = error_response(400, MALFORMED_REQUEST, "The request body could not be read.")
        response.force_close()  # the rest of the body cannot be skipped: end the connection
        return response
    except UnstorableText as exc:
        # An input that reached the store unchecked: a gap to close where it enters, not a 500.
        log.warning(
            "unstorable text reached the store",
            extra={"action": "unstorable_text", "query": exc.query, "param": exc.param, "path": request.path},
        )
        return error_response(
            400, "unstorable_text", "The request holds a NUL character or an unpaired surrogate."
        )
    except Exception:
        log.exception("unhandled error", extra={"action": "unhandled", "path": request.path})
        return error_response(500, "internal_error", "Internal server error.")


async def add_response_headers(request: web.Request, response: web.StreamResponse) -> None:
    rid = request.get(REQUEST_ID)
    if rid:
        response.headers["X-Request-ID"] = rid
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    response.headers.pop("Server", None)


MIDDLEWARES = (receiver_middleware,)
