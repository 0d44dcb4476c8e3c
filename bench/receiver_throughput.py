"""Receiver throughput: durable webhooks per second through the whole gate, against the machine's
ceiling in reference/perf-baseline.md (HTTP + INSERT per request, 1 process).

Starts `tenrusl serve` (1 process) on a fresh database, drives it with wrk (Debian package `wrk`)
using unique mock events (Bearer scheme, since wrk's Lua has no HMAC), and prints requests/s,
latency percentiles, the rows actually stored, and the ratio to the baseline. Run by hand:

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

# reference/perf-baseline.md section 4 (medians of 3): 1 process, pool 16.
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


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--port", type=int, default=18099)
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
    }
    tenrusl = str(Path(sys.executable).with_name("tenrusl"))
    subprocess.run([tenrusl, "migrate"], env=env, check=True, capture_output=True)
    server = subprocess.Popen([tenrusl, "serve"], env=env)
    results = []
    try:
        base = f"http://127.0.0.1:{args.port}"
        wait_ready(base)
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
            script.write(LUA)
        for run in range(args.runs + 1):  # run 0 warms up
            out = subprocess.run(
                [
                    "wrk",
                    "-t2",
                    f"-c{args.connections}",
                    f"-d{3 if run == 0 else args.duration}s",
                    "--latency",
                    "-s",
                    script.name,
                    base,
                    "--",
                    f"r{run}",
                ],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            if run:
                results.append(parse_wrk(out))
                r = results[-1]
                print(
                    f"run {run}: {r['rps']:8.0f} req/s  p50 {r['p50']:6.2f} ms  p90 {r['p90']:6.2f} ms  "
                    f"p99 {r['p99']:6.2f} ms  non-2xx {int(r['non2xx'])}"
                )
    finally:
        server.terminate()
        server.wait(10)
    with psycopg.connect(db_url) as conn:
        stored = conn.execute("SELECT count(*) FROM webhook_events").fetchone()[0]
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    rps = sorted(r["rps"] for r in results)[len(results) // 2]
    p99 = sorted(r["p99"] for r in results)[len(results) // 2]
    print(f"\nmedian of {len(results)}: {rps:.0f} durable webhooks/s, p99 {p99:.2f} ms, rows stored {stored}")
    print(f"ratio to baseline HTTP+INSERT/COMMIT (3,644/s): {rps / BASELINE_NAIVE:.2f}")
    print(f"ratio to baseline HTTP+autocommit INSERT (5,225/s): {rps / BASELINE_AUTOCOMMIT:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
