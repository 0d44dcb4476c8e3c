"""Receiver throughput: durable webhooks per second through the whole gate, as a ratio of what
this machine does right now with a minimal receiver (aiohttp, json.loads, one autocommit INSERT
per request, 1 process; docs/design-notes.md, "Round trips").

Both servers run in the same invocation, alternately, against the same PostgreSQL and driven by
the same wrk script (unique mock events, Bearer scheme since wrk's Lua has no HMAC), so machine
drift cancels out of the ratio. It prints requests/s, latency percentiles, the rows actually
stored, the in-run ratio, and for reference the ratio to the published baseline numbers.
Run by hand (needs Debian's `wrk`):

    TENRUSL_BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \
        .venv/bin/python bench/receiver_throughput.py --duration 15
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

# The project machine's published baseline (medians of 3; docs/design-notes.md): 1 process, pool 16.
BASELINE_NAIVE = 3644.0  # INSERT + COMMIT per request
BASELINE_AUTOCOMMIT = 5225.0  # single-statement autocommit INSERT

LUA = r"""
local counter = 0
local nonce = "n"
function init(args) nonce = args[1] or "n" end
function setup(thread) thread:set("tid", tostring(math.random(1, 1e9))) end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer bench-secret"
function request()
  counter = counter + 1
  local body = '{"id":"evt_' .. nonce .. '_' .. tid .. '_' .. counter .. '","object":"event",' ..
    '"type":"payment.succeeded","status":"succeeded","provider_ref":"sim_mock_missing",' ..
    '"data":{"object":{"id":"pi_3Mtw","amount":150000,"currency":"idr","metadata":{"order":"7"}}}}'
  return wrk.format(nil, "/api/v1/webhooks/mock", nil, body)
end
"""


MINIMAL = r"""
import json, sys
from aiohttp import web
from psycopg_pool import AsyncConnectionPool

INSERT = ("INSERT INTO webhook_events (id, provider, event_id, event_id_source, status, payload_raw, "
          "payload) VALUES (%s, %s, %s, 'payload', 'failed', %s, %s::jsonb)")

async def pool_ctx(app):
    kwargs = {"autocommit": True}
    async with AsyncConnectionPool(sys.argv[1], min_size=16, max_size=16, kwargs=kwargs) as pool:
        app["pool"] = pool
        yield

async def receive(request):
    body = await request.read()
    event = json.loads(body)
    async with request.app["pool"].connection() as conn:
        provider = request.match_info["provider"]
        await conn.execute(INSERT, ("m" + event["id"], provider, event["id"], body, body.decode()))
    return web.json_response({"status": "accepted", "id": event["id"]}, status=202)

async def ready(request):
    return web.json_response({"status": "ready"})

app = web.Application()
app.cleanup_ctx.append(pool_ctx)
app.router.add_post("/api/v1/webhooks/{provider}", receive)
app.router.add_get("/ready", ready)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[2]), access_log=None, print=None)
"""


def with_database(url: str, name: str) -> str:
    p = urlsplit(url)
    return urlunsplit((p.scheme, p.netloc, "/" + name, p.query, p.fragment))


def wait_ready(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/ready", timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("receiver did not become ready")


def parse_wrk(out: str) -> dict[str, float]:
    def ms(value: str) -> float:
        number, unit = re.match(r"([\d.]+)(\w+)", value).groups()  # type: ignore[union-attr]
        return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    lat = {p: ms(re.search(rf"\s{p}%\s+(\S+)", out).group(1)) for p in ("50", "90", "99")}  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {
        "rps": rps,
        "p50": lat["50"],
        "p90": lat["90"],
        "p99": lat["99"],
        "non2xx": float(non2xx.group(1)) if non2xx else 0.0,
    }


def drive(base: str, script: str, duration: int, connections: int, nonce: str) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", "-s", script, base, "--", nonce],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return parse_wrk(out)


def median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--port", type=int, default=18099)
    parser.add_argument("--workers", type=int, default=1, help="tenrusl serve --workers N (minimal: 1)")
    args = parser.parse_args()
    server_url = os.environ.get("TENRUSL_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    name = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    db_url = with_database(server_url, name)
    env = {
        **os.environ,
        "TENRUSL_DATABASE_URL": db_url,
        "TENRUSL_PORT": str(args.port),
        "TENRUSL_LOG_LEVEL": "WARNING",
        "TENRUSL_MOCK_SECRET": "bench-secret",
        "TENRUSL_PROVIDERS_ALLOWLIST": "mock",
        "TENRUSL_RATE_WEBHOOKS_PER_SECOND": "1000000",
        "TENRUSL_RATE_WEBHOOKS_PER_MINUTE": "100000000",
        "PYTHONSAFEPATH": "1",
    }
    tenrusl = str(Path(sys.executable).with_name("tenrusl"))
    subprocess.run([tenrusl, "migrate"], env=env, check=True, capture_output=True)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(LUA)
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as minimal:
        minimal.write(MINIMAL)
    servers = {
        "tenrusl": [tenrusl, "serve", "--workers", str(args.workers)],
        "minimal": [sys.executable, "-P", minimal.name, db_url, str(args.port)],
    }
    base = f"http://127.0.0.1:{args.port}"
    results: dict[str, list[dict[str, float]]] = {"tenrusl": [], "minimal": []}
    try:
        for run in range(args.runs):
            for label, command in servers.items():
                server = subprocess.Popen(command, env=env)
                try:
                    wait_ready(base)
                    drive(base, script.name, 3, args.connections, f"w{run}{label}")  # warm-up
                    r = drive(base, script.name, args.duration, args.connections, f"r{run}{label}")
                finally:
                    server.terminate()
                    server.wait(10)
                results[label].append(r)
                print(
                    f"run {run + 1} {label:8}: {r['rps']:8.0f} req/s  p50 {r['p50']:7.2f} ms  "
                    f"p99 {r['p99']:7.2f} ms  non-2xx {int(r['non2xx'])}",
                    flush=True,
                )
    finally:
        with psycopg.connect(db_url) as conn:
            row = conn.execute("SELECT count(*) FROM webhook_events WHERE id NOT LIKE 'm%'").fetchone()
            stored = row[0] if row else 0
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    ours = median([r["rps"] for r in results["tenrusl"]])
    floor = median([r["rps"] for r in results["minimal"]])
    print(
        f"\nmedian of {args.runs}: tenrusl {ours:.0f} durable webhooks/s "
        f"(p99 {median([r['p99'] for r in results['tenrusl']]):.1f} ms, {stored} events stored); "
        f"minimal receiver {floor:.0f}/s (p99 {median([r['p99'] for r in results['minimal']]):.1f} ms)"
    )
    print(f"tenrusl / minimal receiver, same machine, same run: {ours / floor:.2f}")
    print(
        f"for reference, published baseline: minimal {BASELINE_AUTOCOMMIT:.0f}/s here now {floor:.0f}/s "
        f"(machine factor {floor / BASELINE_AUTOCOMMIT:.2f}); "
        f"tenrusl / published {ours / BASELINE_AUTOCOMMIT:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
