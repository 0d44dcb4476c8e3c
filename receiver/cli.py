"""``tenrusl serve``: run the receiver, on two ports (docs/configuration.md, "Two ports").

On SIGTERM aiohttp closes the listening socket, runs ``on_shutdown`` (``/ready`` answers 503 from
then on), lets the requests in flight finish for up to ``--shutdown-timeout`` seconds, then
closes the pool and exits 0. The chart's grace period covers its preStop pause plus this.
aiohttp reads no more bytes once shutdown begins, so a delivery still uploading its body then is
never answered (and never acknowledged: the provider retries); the preStop pause, during which
the Service stops routing here, makes that rare.

``--workers N`` (``TENRUSL_WORKERS``) above 1 runs N such processes on the same port under a
supervisor (receiver/supervisor.py); each worker shuts down exactly as described above.
"""

from __future__ import annotations

import argparse
import socket
import sys

from receiver.app import create_admin_app, create_app
from receiver.server import LOOPS, run
from receiver.supervisor import supervise
from tenrusl.cli import with_flags
from tenrusl.logs import configure_logging
from tenrusl.settings import MAX_WORKERS, Settings, SettingsError

DEFAULT_SHUTDOWN_TIMEOUT_S = 10.0


def serve(
    settings: Settings,
    shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT_S,
    supervisor_fd: int | None = None,
    loop: str = "auto",
) -> None:
    """Serve until SIGTERM/SIGINT; malformed HTTP gets the JSON envelope too (receiver/server.py).

    ``supervisor_fd``: this process is a worker started by the supervisor, which passes its end
    of their socket pair; the metrics are then shared with the other workers.
    """
    configure_logging(settings.log_level)
    worker = supervisor_fd is not None
    app = create_app(settings, shared_metrics=worker)
    admin = create_admin_app(app) if settings.admin_port else None
    supervisor = socket.socket(fileno=supervisor_fd) if supervisor_fd is not None else None
    run(
        app, settings.host, settings.port, admin=admin, admin_host=settings.admin_host,
        admin_port=settings.admin_port, shutdown_timeout=shutdown_timeout, supervisor=supervisor, loop=loop,
    )  # fmt: skip


def _run(args: argparse.Namespace, settings: Settings) -> int:
    settings = with_flags(
        settings,
        args,
        {
            "host": "host",
            "port": "port",
            "admin_host": "admin_host",
            "admin_port": "admin_port",
            "workers": "workers",
        },
    )
    if settings.admin_port and settings.admin_port == settings.port:
        raise SettingsError(f"--admin-port {settings.admin_port} must differ from --port (0 turns it off)")
    if settings.workers > 1 and args.supervisor_fd is None:
        configure_logging(settings.log_level)
        return supervise(settings, args.shutdown_timeout, loop=args.loop)
    serve(settings, shutdown_timeout=args.shutdown_timeout, supervisor_fd=args.supervisor_fd, loop=args.loop)
    return 0


def _workers(value: str) -> int:
    number = int(value)
    if not 1 <= number <= MAX_WORKERS:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_WORKERS}")
    return number


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("serve", help="run the webhook receiver (needs TENRUSL_DATABASE_URL)")
    parser.add_argument("--host", help="listen address (env TENRUSL_HOST, default 127.0.0.1)")
    parser.add_argument(
        "--port",
        type=int,
        help="listen port of the webhooks and the payments API (env TENRUSL_PORT, default 8080)",
    )
    parser.add_argument(
        "--admin-host",
        help="listen address of /metrics and the admin API (env TENRUSL_ADMIN_HOST, default --host's)",
    )
    parser.add_argument(
        "--admin-port",
        type=int,
        help="listen port of /metrics and the admin API (env TENRUSL_ADMIN_PORT, default 9090; 0: off)",
    )
    parser.add_argument(
        "--workers",
        type=_workers,
        metavar="N",
        help="processes sharing the port, one per core (env TENRUSL_WORKERS, default 1)",
    )
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
    # Internal: set by the supervisor on the workers it starts (receiver/supervisor.py).
    parser.add_argument("--supervisor-fd", type=int, help=argparse.SUPPRESS)
    parser.set_defaults(handler=_run)


def main() -> int:
    from tenrusl.cli import main as cli_main

    return cli_main(["serve", *sys.argv[1:]])
