"""``tenrusl serve``: run the receiver."""

from __future__ import annotations

import argparse
import sys

from receiver.app import create_app
from receiver.server import run
from tenrusl.cli import with_flags
from tenrusl.logs import configure_logging
from tenrusl.settings import Settings


def serve(settings: Settings) -> None:
    """Serve until SIGTERM/SIGINT; malformed HTTP gets the JSON envelope too (receiver/server.py)."""
    configure_logging(settings.log_level)
    run(create_app(settings), settings.host, settings.port, shutdown_timeout=10)


def _run(args: argparse.Namespace, settings: Settings) -> int:
    serve(with_flags(settings, args, {"host": "host", "port": "port"}))
    return 0


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("serve", help="run the webhook receiver (needs TENRUSL_DATABASE_URL)")
    parser.add_argument("--host", help="listen address (env TENRUSL_HOST, default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="listen port (env TENRUSL_PORT, default 8080)")
    parser.set_defaults(handler=_run)


def main() -> int:
    from tenrusl.cli import main as cli_main

    return cli_main(["serve", *sys.argv[1:]])
