"""``tenrusl serve``: run the receiver.

On SIGTERM aiohttp closes the listening socket, runs ``on_shutdown`` (``/ready`` answers 503 from
then on), lets the requests in flight finish for up to ``--shutdown-timeout`` seconds, then
closes the pool and exits 0. The chart's grace period covers its preStop pause plus this.
aiohttp reads no more bytes once shutdown begins, so a delivery still uploading its body then is
never answered (and never acknowledged: the provider retries); the preStop pause, during which
the Service stops routing here, makes that rare.
"""

from __future__ import annotations

import argparse
import sys

from receiver.app import create_app
from receiver.server import LOOPS, run
from tenrusl.cli import with_flags
from tenrusl.logs import configure_logging
from tenrusl.settings import Settings

DEFAULT_SHUTDOWN_TIMEOUT_S = 10.0


def serve(
    settings: Settings, shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT_S, loop: str = "auto"
) -> None:
    """Serve until SIGTERM/SIGINT; malformed HTTP gets the JSON envelope too (receiver/server.py)."""
    configure_logging(settings.log_level)
    run(create_app(settings), settings.host, settings.port, shutdown_timeout=shutdown_timeout, loop=loop)


def _run(args: argparse.Namespace, settings: Settings) -> int:
    serve(
        with_flags(settings, args, {"host": "host", "port": "port"}),
        shutdown_timeout=args.shutdown_timeout,
        loop=args.loop,
    )
    return 0


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("serve", help="run the webhook receiver (needs TENRUSL_DATABASE_URL)")
    parser.add_argument("--host", help="listen address (env TENRUSL_HOST, default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="listen port (env TENRUSL_PORT, default 8080)")
    parser.add_argument(
        "--shutdown-timeout",
        type=float,
        default=DEFAULT_SHUTDOWN_TIMEOUT_S,
        metavar="SECONDS",
        help="on SIGTERM, how long requests in flight may take to finish (default 10)",
    )
    parser.add_argument(
        "--loop",
        choices=LOOPS,
        default="auto",
        help="event loop: uvloop, asyncio's own, or auto (uvloop where installed; the default)",
    )
    parser.set_defaults(handler=_run)


def main() -> int:
    from tenrusl.cli import main as cli_main

    return cli_main(["serve", *sys.argv[1:]])
