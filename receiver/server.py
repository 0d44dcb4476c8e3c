"""Serving the receiver: aiohttp's own error answers in our JSON envelope, and ``tenrusl serve``.

aiohttp answers some requests itself, before any middleware runs: a request that is not
well-formed HTTP (a duplicated Content-Type or Content-Length, Content-Length beside
Transfer-Encoding, a header over 8 KB, a control character in a header, a bad request line) is a
``text/plain`` 400 from its protocol handler. The error hook for those is
``RequestHandler.handle_error``, and aiohttp always builds its own ``RequestHandler`` class, so
:class:`ReceiverRunner` (an ``AppRunner``) makes its server build
:class:`JsonErrorRequestHandler` instead. ``tenrusl serve``, ``tenrusl dev`` and the test server
all run through it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import socket
from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest
from aiohttp.web_server import Server

from receiver.errors import error_body
from receiver.middlewares import MALFORMED_REQUEST, SECURITY_HEADERS
from tenrusl.ids import new_id

log = logging.getLogger("tenrusl.receiver")

_REASON_MAX = 120


def parse_error_reason(exc: BaseException | None) -> str:
    """aiohttp's reason for a parse error, without the request bytes it quotes after a colon."""
    text = str(getattr(exc, "message", "") or "").strip()
    reason = text.splitlines()[0].split(":")[0].strip() if text else ""
    return reason[:_REASON_MAX]


class _ErrorResponse(web.Response):
    """No ``Server`` header, as on every other answer (receiver.middlewares drops it there, in a
    signal aiohttp does not send for requests it could not parse)."""

    async def _prepare_headers(self) -> None:
        await super()._prepare_headers()
        self.headers.pop("Server", None)


class JsonErrorRequestHandler(RequestHandler):
    """aiohttp's protocol handler, answering its own errors with the JSON error envelope."""

    __slots__ = ()

    def log_exception(self, *args: Any, **kw: Any) -> None:
        """After a 400 for a body that broke mid-read (bad gzip or chunk framing), aiohttp tries to
        drain the rest and meets the same error again: a client's mistake, not a server fault, so
        it is not logged as an unhandled exception with a traceback."""
        exc = kw.get("exc_info")
        if isinstance(exc, web.RequestPayloadError | HttpProcessingError):
            log.info(
                "unreadable request body discarded", extra={"action": "bad_body", "error": type(exc).__name__}
            )
            return
        super().log_exception(*args, **kw)

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:  # as aiohttp: a response is already on its way
            raise ConnectionError("Response is sent already, cannot send another response")
        if status < 500:
            reason = parse_error_reason(exc)
            log.info(
                "malformed HTTP request",
                extra={
                    "action": "http_parse_error",
                    "status": status,
                    "error": exc.__class__.__name__ if exc else None,
                    "reason": reason,
                    "remote": request.remote,
                },
            )
            text = f"The request is not well-formed HTTP: {reason}." if reason else "Malformed request."
            code = MALFORMED_REQUEST
        elif status == 504:
            code, text = "gateway_timeout", "The request timed out."
        else:  # an error outside every middleware (they answer all handler errors themselves)
            log.error("error outside the middlewares", exc_info=exc, extra={"action": "unhandled"})
            code, text = "internal_error", "Internal server error."
        headers = {**SECURITY_HEADERS, "X-Request-ID": new_id()}
        response = _ErrorResponse(
            text=json.dumps(error_body(code, text)),
            status=status,
            headers=headers,
            content_type="application/json",
        )
        response.force_close()
        return response


class JsonErrorServer(Server):
    """aiohttp's low-level server, building :class:`JsonErrorRequestHandler` per connection."""

    def __call__(self) -> RequestHandler:
        return JsonErrorRequestHandler(self, loop=self._loop, **self._kwargs)


class ReceiverRunner(web.AppRunner):
    """``web.AppRunner`` whose connections answer malformed HTTP with the JSON envelope."""

    async def _make_server(self) -> Server:
        server = await super()._make_server()
        return JsonErrorServer(
            server.request_handler,
            request_factory=server.request_factory,
            handler_cancellation=server.handler_cancellation,
            loop=server._loop,
            **server._kwargs,
        )


async def serve_forever(
    app: web.Application,
    host: str,
    port: int,
    *,
    admin: web.Application | None = None,
    admin_host: str = "127.0.0.1",
    admin_port: int = 0,
    shutdown_timeout: float = 10,
    supervisor: socket.socket | None = None,
) -> None:
    """Serve ``app`` (and its admin listener) until SIGINT or SIGTERM, then shut down gracefully.

    The main app starts first (it opens the pool the admin app shares) and stops last; the admin
    listener, when given, binds ``admin_host:admin_port``.

    ``supervisor``: this process is one worker of ``tenrusl serve --workers N``
    (receiver/supervisor.py). It binds both ports with ``SO_REUSEPORT`` beside its siblings, sends
    one byte on this socket once it listens, and shuts down gracefully as on SIGTERM if the
    supervisor goes away (the socket reads end-of-file), so a killed supervisor never leaves
    workers behind.
    """
    reuse_port = True if supervisor is not None else None
    runners: list[web.AppRunner] = [ReceiverRunner(app, access_log=None, shutdown_timeout=shutdown_timeout)]
    if admin is not None:
        runners.append(ReceiverRunner(admin, access_log=None, shutdown_timeout=shutdown_timeout))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    started: list[web.AppRunner] = []
    try:
        for runner, (bind_host, bind_port) in zip(
            runners, [(host, port), (admin_host, admin_port)], strict=False
        ):
            await runner.setup()
            started.append(runner)
            await web.TCPSite(runner, bind_host, bind_port, reuse_port=reuse_port).start()
        log.info(
            "receiver listening", extra={"action": "listen", "url": f"http://{host}:{port}",
                                         "admin_url": f"http://{admin_host}:{admin_port}" if admin else None}
        )  # fmt: skip
        if supervisor is not None:
            supervisor.setblocking(False)
            await loop.sock_sendall(supervisor, READY)
            loop.add_reader(supervisor, _stop_when_closed, supervisor, stop)
        await stop.wait()
    finally:
        if supervisor is not None:
            loop.remove_reader(supervisor)
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(sig)
        for runner in reversed(started):
            await runner.cleanup()


LOOPS = ("auto", "asyncio", "uvloop")


def loop_factory(loop: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The event loop ``tenrusl serve --loop`` asks for: ``auto`` is uvloop where it is installed
    (about a tenth less CPU per request: docs/PERFORMANCE.md), else asyncio's own."""
    if loop == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if loop == "uvloop":
            raise SystemExit("--loop uvloop: uvloop is not installed") from None
        return None
    return uvloop.new_event_loop


READY = b"R"  # a worker's "listening" message to its supervisor


def _stop_when_closed(supervisor: socket.socket, stop: asyncio.Event) -> None:
    try:
        data = supervisor.recv(64)
    except BlockingIOError:
        return
    except OSError:
        data = b""
    if not data:
        log.warning("supervisor gone; shutting down", extra={"action": "shutdown"})
        stop.set()


def run(app: web.Application, host: str, port: int, *, loop: str = "auto", **kwargs: Any) -> None:
    with asyncio.Runner(loop_factory=loop_factory(loop)) as runner:
        runner.run(serve_forever(app, host, port, **kwargs))
