"""`tenrusl dev` as a user runs it: starts, prints working commands, retries, stops on Ctrl-C."""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from devserver.cli import DEV_RATE_PER_MINUTE, DEV_RATE_PER_SECOND, dev_rate_limits
from tenrusl.embedded import free_port
from tenrusl.settings import Settings
from tests.rawhttp import request, send_raw

TENRUSL = str(Path(sys.executable).with_name("tenrusl"))


async def start_dev(env: dict[str, str], cwd: Path, *args: str) -> tuple[asyncio.subprocess.Process, str]:
    proc = await asyncio.create_subprocess_exec(
        TENRUSL,
        "dev",
        *args,
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    banner = ""
    while "Then look at the payment" not in banner:
        line = await asyncio.wait_for(proc.stdout.readline(), 120)
        if not line:
            raise AssertionError(f"tenrusl dev exited early:\n{banner}")
        banner += line.decode()
    banner += (await asyncio.wait_for(proc.stdout.readline(), 10)).decode()
    return proc, banner


def printed_webhook(banner: str) -> tuple[str, dict[str, str], bytes]:
    line = next(x for x in banner.splitlines() if "/api/v1/webhooks/mock" in x and "curl" in x)
    words = shlex.split(line.strip())
    url = next(w for w in words if w.startswith("http"))
    headers = dict(words[i + 1].split(": ", 1) for i, w in enumerate(words) if w == "-H")
    body = words[words.index("--data-binary") + 1].encode()
    return url, headers, body


def sandbox_env(cwd: Path) -> dict[str, str]:
    """The environment `tenrusl dev` wrote for the simulator (`set -a; . .tenrusl/dev/sandbox.env`)."""
    env = dict(os.environ)
    for line in (cwd / ".tenrusl" / "dev" / "sandbox.env").read_text().splitlines():
        key, _, value = line.partition("=")
        env[key] = value.strip("'")
    return env


async def stop(proc: asyncio.subprocess.Process) -> int:
    proc.send_signal(signal.SIGINT)
    return await asyncio.wait_for(proc.wait(), 60)


async def test_dev_serves_the_printed_commands_and_retries(db_url, tmp_path):
    port, admin_port = free_port(), free_port()
    env = {**os.environ, "TENRUSL_DATABASE_URL": db_url, "TENRUSL_LOG_LEVEL": "WARNING"}
    proc, banner = await start_dev(
        env, tmp_path, "--port", str(port), "--admin-port", str(admin_port), "--retry-interval", "1"
    )
    try:
        assert f"http://127.0.0.1:{port}" in banner
        admin = f"http://127.0.0.1:{admin_port}"
        assert f"{admin}/metrics" in banner, "the banner names the admin listener"
        url, headers, body = printed_webhook(banner)
        async with aiohttp.ClientSession() as http:
            assert (await http.get(f"http://127.0.0.1:{port}/up")).status == 200
            # the second port: /metrics and the admin API there, and only there
            assert (await http.get(f"{admin}/metrics")).status == 200
            assert (await http.get(f"http://127.0.0.1:{port}/metrics")).status == 404
            # malformed HTTP gets the JSON envelope here too (receiver.server.ReceiverRunner)
            bad = await send_raw(port, request([b"GET /up HTTP/1.1", b"X-Odd: a\x01b"]))
            assert (
                bad is not None and bad.status == 400 and bad.json()["error"]["code"] == "malformed_request"
            )
            resp = await http.post(url, data=body, headers=headers)
            assert resp.status == 202
            result = (await resp.json())["data"]["result"]
            assert result["applied"] is True and result["status"] == "succeeded"
            status_url = re.search(r"curl -sS (http\S+/status)", banner).group(1)
            assert (await (await http.get(status_url)).json())["data"]["status"] == "succeeded"
            # an unmatched event is retried by the in-process runner (1 s ticks here)
            orphan = re.sub(
                rb'"provider_ref":"[^"]+"',
                b'"provider_ref":"sim_mock_missing"',
                body.replace(b"evt_demo_", b"evt_orphan_"),
            )
            signed = (
                await asyncio.to_thread(
                    subprocess.run,
                    [TENRUSL, "sign", "mock", "-"],
                    input=orphan,
                    env=sandbox_env(tmp_path),
                    capture_output=True,
                    check=True,
                )
            ).stdout.decode()
            orphan_headers = dict(line.split(": ", 1) for line in signed.splitlines() if ": " in line)
            assert (await http.post(url, data=orphan, headers=orphan_headers)).status == 202
            admin_key = re.search(r"admin key: (\S+)", banner).group(1)
            for _ in range(100):
                events = await (
                    await http.get(
                        f"{admin}/api/v1/admin/webhook-events?status=failed",
                        headers={"X-Admin-Key": admin_key},
                    )
                ).json()
                if any(e["attempts"] >= 2 for e in events["data"]):
                    break
                await asyncio.sleep(0.2)
            else:
                raise AssertionError(f"the retry ticker never retried the orphan event: {events}")
    finally:
        code = await stop(proc)
    assert code == 0


@pytest.mark.slow
async def test_dev_starts_an_embedded_postgres_when_no_url_is_given(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENRUSL_")}
    env["TENRUSL_LOG_LEVEL"] = "WARNING"
    proc, banner = await start_dev(
        env, tmp_path, "--port", str(free_port()), "--admin-port", str(free_port()), "--no-retry"
    )
    try:
        assert "embedded PostgreSQL" in banner
        url, headers, body = printed_webhook(banner)
        async with aiohttp.ClientSession() as http:
            assert (await http.post(url, data=body, headers=headers)).status == 202
    finally:
        assert await stop(proc) == 0
    assert (tmp_path / ".tenrusl" / "dev" / "pgdata").is_dir()


def without_rate_settings(environ: dict[str, str]) -> dict[str, str]:
    """The environment minus any webhook rate limit, so dev's own limits are the ones in force."""
    return {k: v for k, v in environ.items() if not k.startswith(("TENRUSL_RATE_", "TENRUSL_WEBHOOK_RATE_"))}


def test_dev_limits_hold_unless_the_environment_sets_a_limit() -> None:
    dev = dev_rate_limits(Settings.from_env({}))
    assert (dev.rate_per_second, dev.rate_per_minute) == (DEV_RATE_PER_SECOND, DEV_RATE_PER_MINUTE)
    production = Settings.from_env({})
    assert (production.rate_per_second, production.rate_per_minute) != (
        dev.rate_per_second,
        dev.rate_per_minute,
    )
    own = dev_rate_limits(
        Settings.from_env(
            {"TENRUSL_RATE_WEBHOOKS_PER_SECOND": "7", "TENRUSL_WEBHOOK_RATE_LIMIT_PER_MINUTE": "70"}
        )
    )
    assert (own.rate_per_second, own.rate_per_minute) == (7, 70)


async def test_every_provider_can_be_simulated_against_dev(db_url, tmp_path):
    port = free_port()
    env = {
        **without_rate_settings(dict(os.environ)),
        "TENRUSL_DATABASE_URL": db_url,
        "TENRUSL_LOG_LEVEL": "WARNING",
    }
    proc, banner = await start_dev(
        env, tmp_path, "--port", str(port), "--admin-port", str(free_port()), "--no-retry"
    )
    try:
        assert ". .tenrusl/dev/sandbox.env" in banner
        assert f"limits:    {DEV_RATE_PER_SECOND} webhooks/s and {DEV_RATE_PER_MINUTE}/min" in banner
        sim_env = without_rate_settings(sandbox_env(tmp_path))
        # The command the banner suggests, exactly as printed: no 429 may reach it.
        printed = next(x for x in banner.splitlines() if " simulate stripe " in x)
        result = await asyncio.to_thread(
            subprocess.run, shlex.split(printed), env=sim_env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, (result.stdout, result.stderr)
        assert re.search(r"accepted\s+50\n", result.stdout), result.stdout
        assert re.search(r"rate limited \(429\)\s+0\n", result.stdout), result.stdout
        assert "redelivered after 429/503: 0 deliveries delayed" in result.stdout
        assert "payments created 50, succeeded after the webhooks 50" in result.stdout
        for provider in ("paypal", "amazon_bwp", "dana", "stripe"):
            result = await asyncio.to_thread(
                subprocess.run,
                [
                    TENRUSL,
                    "simulate",
                    provider,
                    "--url",
                    f"http://127.0.0.1:{port}",
                    "--count",
                    "6",
                    "--tamper-rate",
                    "0.2",
                    "--concurrency",
                    "2",
                ],
                env=sim_env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert result.returncode == 0, (provider, result.stdout, result.stderr)
    finally:
        assert await stop(proc) == 0
