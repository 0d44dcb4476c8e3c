"""``tenrusl dev``: embedded PostgreSQL (unless a URL is given), migrations, the receiver, and the
retry runner ticking in-process like the CronJob. Ctrl-C stops everything cleanly.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import secrets
import shlex
import signal
import sys
import time
from pathlib import Path

from aiohttp import web

from receiver.app import create_admin_app, create_app
from receiver.keys import STORE
from receiver.providers import provider_class
from receiver.server import ReceiverRunner
from receiver.simulate.sandbox import SandboxKeys, dev_env, sandbox_app, write_env_file
from retry_job.ticker import RetryTicker
from tenrusl.cli import with_flags
from tenrusl.embedded import EmbeddedServer, free_port, start_postgres
from tenrusl.ids import new_id
from tenrusl.logs import configure_logging
from tenrusl.migrate import migrate
from tenrusl.settings import Settings

log = logging.getLogger("tenrusl.dev")

DEV_DIR = Path(".tenrusl") / "dev"
# Webhook rate limits for dev only: high enough that every command the banner prints (and
# `tenrusl simulate` at its default concurrency) passes untouched. Production keeps the
# defaults in tenrusl/settings.py (docs/configuration.md, "Rate limits").
DEV_RATE_PER_SECOND = 1000
DEV_RATE_PER_MINUTE = 60_000
RATE_VARIABLES = (
    ("rate_per_second", DEV_RATE_PER_SECOND, ("TENRUSL_RATE_WEBHOOKS_PER_SECOND",)),
    (
        "rate_per_minute",
        DEV_RATE_PER_MINUTE,
        ("TENRUSL_RATE_WEBHOOKS_PER_MINUTE", "TENRUSL_WEBHOOK_RATE_LIMIT_PER_MINUTE"),
    ),
)


def dev_rate_limits(settings: Settings) -> Settings:
    """The dev limits, except where the environment sets a limit itself (then that one holds)."""
    changes = {field: value for field, value, names in RATE_VARIABLES if settings.variable(*names) is None}
    return settings.replace(**changes)


def demo_commands(settings: Settings, base_url: str, provider_ref: str) -> str:
    """Ready-to-paste commands: create a payment, and a signed mock webhook for the demo payment."""
    body = json.dumps(
        {
            "id": f"evt_demo_{int(time.time())}",
            "type": "payment.succeeded",
            "status": "succeeded",
            "provider_ref": provider_ref,
        },
        separators=(",", ":"),
    )
    mock = provider_class("mock")
    delivery = mock.sign(
        body.encode(), mock.signing_credentials(settings), now=time.time(), path="/api/v1/webhooks/mock"
    )
    headers = " ".join(f"-H {shlex.quote(f'{k}: {v}')}" for k, v in delivery.headers.items())
    return "\n".join(
        [
            "Create a payment (201; the same key again replays it):",
            f"  curl -sS -X POST {base_url}/api/v1/payments -H 'Content-Type: application/json' "
            f'-H \'Idempotency-Key: demo-1\' -d \'{{"provider":"mock","amount":150000}}\'',
            "",
            f"Send a signed mock webhook that marks the demo payment {provider_ref} succeeded",
            "(202; send it twice to see duplicate: true):",
            f"  curl -sS -X POST {base_url}/api/v1/webhooks/mock {headers} --data-binary {shlex.quote(body)}",
            "",
            "Then look at the payment:",
            f"  curl -sS {base_url}/api/v1/payments/mock/{provider_ref}/status",
        ]
    )


async def create_demo_payment(app: web.Application) -> str:
    payment = await app[STORE].insert_payment(
        id=new_id(),
        provider="mock",
        provider_ref=f"sim_mock_{new_id()}",
        amount=150000,
        currency="IDR",
        description="tenrusl dev demo payment",
        metadata={"demo": True},
        idempotency_key=None,
        request_hash=None,
    )
    return payment.provider_ref


async def start_sandbox(settings: Settings) -> tuple[Settings, web.AppRunner, Path]:
    """Fake PayPal and Amazon APIs plus demo secrets, so every provider works against dev.

    The receiver's settings gain the sandbox's URLs and keys; the same values are written to
    an env file for `tenrusl simulate` in another shell (it signs with the private keys).
    """
    keys = await asyncio.to_thread(SandboxKeys.generate)
    runner = web.AppRunner(sandbox_app(keys), access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    extra = dev_env(f"http://127.0.0.1:{port}", keys, settings.environ)
    env_file = DEV_DIR / "sandbox.env"
    env_file.parent.mkdir(parents=True, exist_ok=True)
    write_env_file(env_file, extra)
    rebuilt = Settings.from_env({**settings.environ, **extra})
    return (
        rebuilt.replace(
            host=settings.host,
            port=settings.port,
            admin_host=settings.admin_host,
            admin_port=settings.admin_port,
        ),
        runner,
        env_file,
    )


def command_name() -> str:
    """How the user started us (`.venv/bin/tenrusl` from scripts/dev), so printed commands paste."""
    invoked = sys.argv[0]
    return shlex.quote(invoked) if Path(invoked).name == "tenrusl" else "tenrusl"


def simulate_hint(env_file: Path | None, base_url: str) -> str:
    if env_file is None:
        return ""
    return (
        "Every provider works against this server (PayPal and Amazon through a local sandbox):\n"
        f"  set -a; . {env_file}; set +a\n"
        f"  {command_name()} simulate stripe --url {base_url} --count 50 --with-payments\n\n"
    )


async def run_dev(settings: Settings, retry_interval_s: float, run_retry: bool, sandbox: bool = True) -> None:
    embedded: EmbeddedServer | None = None
    sandbox_runner: web.AppRunner | None = None
    env_file: Path | None = None
    if sandbox:
        settings, sandbox_runner, env_file = await start_sandbox(settings)
    settings = dev_rate_limits(settings)
    if not settings.database_url:
        print(f"starting embedded PostgreSQL in {DEV_DIR / 'pgdata'} ...", flush=True)
        embedded = await asyncio.to_thread(start_postgres, DEV_DIR.resolve(), "tenrusl")
        settings = settings.replace(database_url=embedded.url)
    if not settings.admin_key:
        settings = settings.replace(admin_key="dev-" + secrets.token_hex(8))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    runners: list[web.AppRunner] = []
    ticker: RetryTicker | None = None
    try:
        applied = await migrate(settings)
        print(f"migrations: {', '.join(applied) if applied else 'up to date'}", flush=True)
        app = create_app(settings)
        listeners = [(app, settings.host, settings.port)]
        if settings.admin_port:
            listeners.append((create_admin_app(app), settings.admin_host, settings.admin_port))
        for listener, host, port in listeners:  # the main app first: it opens the pool
            runner: web.AppRunner = ReceiverRunner(listener, access_log=None, shutdown_timeout=5)
            await runner.setup()
            runners.append(runner)
            await web.TCPSite(runner, host, port).start()
        base_url = f"http://{settings.host}:{settings.port}"
        admin_url = f"http://{settings.admin_host}:{settings.admin_port}" if settings.admin_port else None
        redis_note = "TENRUSL_REDIS_URL" if settings.redis_url else "not configured (in-process fallbacks)"
        if run_retry:  # the same runner code as the CronJob, on a tick
            ticker = RetryTicker(settings, app[STORE], interval_s=retry_interval_s)
            ticker.start()
        print(
            f"\nTenRusl is running at {base_url}  (Ctrl-C to stop)\n"
            f"  database:  {'embedded PostgreSQL' if embedded else 'TENRUSL_DATABASE_URL'}\n"
            f"  redis:     {redis_note}\n"
            f"  retries:   {f'every {retry_interval_s:g} s in-process' if ticker else 'off'}\n"
            f"  limits:    {settings.rate_per_second} webhooks/s and {settings.rate_per_minute}/min per "
            "provider (dev only; TENRUSL_RATE_WEBHOOKS_PER_SECOND and _PER_MINUTE set others)\n"
            f"  admin key: {settings.admin_key}\n"
            f"  health:    {base_url}/up   ready: {base_url}/ready\n"
            + (
                f"  admin:     {admin_url}/metrics   {admin_url}/api/v1/admin/webhook-events "
                "(X-Admin-Key: the admin key)\n\n"
                if admin_url
                else "  admin:     off (TENRUSL_ADMIN_PORT=0): no /metrics, no admin API\n\n"
            )
            + simulate_hint(env_file, base_url)
            + demo_commands(settings, base_url, await create_demo_payment(app))
            + "\n",
            flush=True,
        )
        await stop.wait()
        print("stopping ...", flush=True)
    finally:
        if ticker is not None:
            await ticker.stop()
        for runner in reversed(runners):
            await runner.cleanup()
        if sandbox_runner is not None:
            await sandbox_runner.cleanup()
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(sig)


def _run(args: argparse.Namespace, settings: Settings) -> int:
    configure_logging(settings.log_level)
    settings = with_flags(
        settings,
        args,
        {"host": "host", "port": "port", "admin_host": "admin_host", "admin_port": "admin_port"},
    )
    asyncio.run(run_dev(settings, args.retry_interval, not args.no_retry, sandbox=not args.no_sandbox))
    return 0


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "dev", help="run everything locally: embedded PostgreSQL, migrations, receiver, retry ticks"
    )
    parser.add_argument("--host", help="listen address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="listen port of the webhooks and the API (default 8080)")
    parser.add_argument(
        "--admin-host", help="listen address of /metrics and the admin API (default --host's)"
    )
    parser.add_argument(
        "--admin-port",
        type=int,
        help="listen port of /metrics and the admin API (default 9090; 0 turns it off)",
    )
    parser.add_argument(
        "--retry-interval",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="how often the in-process retry runner ticks (default 60, like the CronJob)",
    )
    parser.add_argument("--no-retry", action="store_true", help="do not run the retry runner")
    parser.add_argument(
        "--no-sandbox",
        action="store_true",
        help="do not start the local PayPal/Amazon sandbox nor set demo secrets for every provider",
    )
    parser.set_defaults(handler=_run)
