"""Receiver throughput: durable webhooks per second through the whole gate, as a ratio of what
this machine does right now with a minimal receiver (aiohttp, json.loads, one autocommit INSERT
per request, 1 process; docs/design-notes.md, "Round trips").

Both servers run in the same invocation, alternately, against the same PostgreSQL database and
the same Redis, with the same pool size (16), event loop and concurrency, driven by the same wrk
script, so machine drift cancels out of the ratio. Per run and server it prints requests/s,
latency percentiles and the peak resident memory of the server process (VmHWM); then the rows
stored against the deliveries acknowledged, the in-run ratio with PASS/FAIL (ratio >= 0.70 and
p99 at most twice the minimal receiver's), and:

* a signed figure: the same comparison with real Stripe deliveries (HMAC-SHA256 over the
  timestamp and body, signed by the provider's own ``sign``), precomputed with fresh timestamps
  before each run and replayed by wrk, so signature verification is in the measured path;
* with ``--low-load``, the latency at concurrency 1 with group commit (the default) and without
  it (``TENRUSL_INGEST_BATCH_MAX=1``): what coalescing costs when there is nothing to coalesce.

Run by hand (needs Debian's `wrk`), in the project's venv:

    TENRUSL_BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \
    TENRUSL_BENCH_REDIS_URL=redis://127.0.0.1:6379/3 \
        .venv/bin/python -P bench/receiver_throughput.py --duration 8 --runs 3 --low-load

``--prefill N`` first loads N stored events into the table (both servers insert into it), to
see how ingest scales with the table's size. ``--loop`` picks the event loop of both servers.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

from tenrusl.embedded import free_port

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


# Replays precomputed signed deliveries: one per line, "<Stripe-Signature>\t<body>"; thread k of
# n takes lines k, k+n, ... so that no two threads send the same event.
SIGNED_LUA = r"""
local lines, index = {}, 0
local threads, started = 1, 0
function setup(thread)
  thread:set("no", started)
  started = started + 1
end
function init(args)
  threads = tonumber(args[2])
  local i = 0
  for line in io.lines(args[1]) do
    if i % threads == no then
      local tab = line:find("\t", 1, true)
      lines[#lines + 1] = {line:sub(1, tab - 1), line:sub(tab + 1)}
    end
    i = i + 1
  end
end
function request()
  index = index % #lines + 1
  local entry = lines[index]
  local headers = {["Content-Type"] = "application/json", ["Stripe-Signature"] = entry[1]}
  return wrk.format("POST", "/api/v1/webhooks/stripe", headers, entry[2])
end
"""


MINIMAL = r"""
import asyncio, json, sys
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
loop = None
if sys.argv[3] != "asyncio":
    try:
        import uvloop
        loop = uvloop.new_event_loop()
    except ImportError:
        pass
web.run_app(app, host="127.0.0.1", port=int(sys.argv[2]), access_log=None, print=None, loop=loop)
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
    total = float(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return {
        "requests": total,
        "rps": rps,
        "p50": lat["50"],
        "p90": lat["90"],
        "p99": lat["99"],
        "non2xx": float(non2xx.group(1)) if non2xx else 0.0,
    }


def drive(
    base: str, script: str, duration: int, connections: int, args: list[str], threads: int = 2
) -> dict[str, float]:
    threads = min(threads, connections)
    out = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{duration}s",
            "--latency",
            "-s",
            script,
            base,
            "--",
            *args,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return parse_wrk(out)


def median(values: list[float]) -> float:
    return statistics.median(values)


def peak_rss_mb(pid: int) -> float:
    """The largest peak resident set (VmHWM, MB) of the process and its children: with
    ``--workers`` the workers are the supervisor's children."""
    peak = 0.0
    pids = [pid]
    while pids:
        current = pids.pop()
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]) / 1024)
            for task in Path(f"/proc/{current}/task").iterdir():
                pids += [int(child) for child in (task / "children").read_text().split()]
    return peak


def signed_deliveries(path: str, count: int, nonce: str) -> None:
    """``count`` Stripe deliveries with fresh timestamps, signed by the provider's own code."""
    from receiver.providers.samples import Context
    from receiver.providers.stripe import StripeProvider

    rng = random.Random(nonce)
    credentials = {"secret": STRIPE_SECRET}
    now = time.time()
    with open(path, "w") as out:
        for n in range(count):
            sample = StripeProvider.sample(Context(rng, f"pi_ref_{nonce}_{n}", 150000, "IDR", now))
            body = sample.body.replace(b'"id":"evt_', f'"id":"evt_{nonce}_{n}_'.encode(), 1)
            delivery = StripeProvider.sign(body, credentials, now=now, path="/api/v1/webhooks/stripe")
            out.write(f"{delivery.headers['Stripe-Signature']}\t{body.decode()}\n")


STRIPE_SECRET = "whsec_bench_secret"


class Server:
    """One receiver process for one measurement; its peak RSS is read before it stops."""

    def __init__(self, command: list[str], env: dict[str, str], base: str) -> None:
        self.process = subprocess.Popen(command, env=env)
        self.base = base

    def __enter__(self) -> Server:
        wait_ready(self.base)
        return self

    def __exit__(self, *exc: object) -> None:
        self.rss_mb = peak_rss_mb(self.process.pid)
        self.process.terminate()
        self.process.wait(10)


def measure(
    command: list[str],
    env: dict[str, str],
    base: str,
    script: str,
    warm_s: int,
    duration: int,
    connections: int,
    warm_args: list[str],
    run_args: list[str],
) -> tuple[dict[str, float], dict[str, float]]:
    """One server started fresh, warmed up, then measured: (warm-up, run with its peak RSS)."""
    with Server(command, env, base) as server:
        warm = drive(base, script, warm_s, connections, warm_args)
        r = drive(base, script, duration, connections, run_args)
    r["rss_mb"] = server.rss_mb
    return warm, r


def report(run: int, label: str, scheme: str, r: dict[str, float]) -> None:
    print(
        f"run {run + 1} {label:8} {scheme:7}: {r['rps']:8.0f} req/s  p50 {r['p50']:7.2f} ms  "
        f"p99 {r['p99']:7.2f} ms  non-2xx {int(r['non2xx'])}  peak RSS {r['rss_mb']:.0f} MB",
        flush=True,
    )


def stat(values: list[dict[str, float]], key: str) -> float:
    return median([v[key] for v in values])


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--port", type=int, default=18099)
    parser.add_argument("--loop", choices=("auto", "asyncio", "uvloop"), default="auto")
    parser.add_argument("--no-signed", action="store_true", help="skip the signed (Stripe) figure")
    parser.add_argument("--low-load", action="store_true", help="also measure at concurrency 1")
    parser.add_argument("--prefill", type=int, default=0, help="stored events to load first")
    parser.add_argument("--workers", type=int, default=1, help="tenrusl serve --workers N (minimal: 1)")
    args = parser.parse_args()
    server_url = os.environ.get("TENRUSL_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    redis_url = os.environ.get("TENRUSL_BENCH_REDIS_URL", "")
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
        "TENRUSL_ADMIN_PORT": str(free_port()),  # the second listener (/metrics), unused here
        "TENRUSL_LOG_LEVEL": "WARNING",
        "TENRUSL_MOCK_SECRET": "bench-secret",
        "TENRUSL_STRIPE_WEBHOOK_SECRET": STRIPE_SECRET,
        "TENRUSL_PROVIDERS_ALLOWLIST": "mock,stripe",
        "TENRUSL_RATE_WEBHOOKS_PER_SECOND": "1000000",
        "TENRUSL_RATE_WEBHOOKS_PER_MINUTE": "100000000",
        "TENRUSL_DB_POOL_MIN": "16",  # the minimal receiver's pool: 16 connections from the start
        "TENRUSL_DB_POOL_MAX": "16",
        "PYTHONSAFEPATH": "1",
    }
    env.pop("TENRUSL_REDIS_URL", None)
    if redis_url:
        env["TENRUSL_REDIS_URL"] = redis_url  # the limiter shares its counters there, as in production
    tenrusl = str(Path(sys.executable).with_name("tenrusl"))
    subprocess.run([tenrusl, "migrate"], env=env, check=True, capture_output=True)
    if args.prefill:
        started = time.monotonic()
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute(PREFILL, (args.prefill,))
            conn.execute("VACUUM ANALYZE webhook_events")
            conn.execute("CHECKPOINT")  # the load's WAL would otherwise trigger one in the first run
        print(f"prefilled {args.prefill} stored events in {time.monotonic() - started:.0f} s")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(LUA)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as signed_script:
        signed_script.write(SIGNED_LUA)
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as minimal:
        minimal.write(MINIMAL)
    bodies, warm_bodies = (os.path.join(tempfile.gettempdir(), f"{name}-{k}.txt") for k in ("run", "warm"))
    servers = {
        "tenrusl": [tenrusl, "serve", "--loop", args.loop, "--workers", str(args.workers)],
        "minimal": [sys.executable, "-P", minimal.name, db_url, str(args.port), args.loop],
    }
    base = f"http://127.0.0.1:{args.port}"
    results: dict[str, list[dict[str, float]]] = {"tenrusl": [], "minimal": []}
    signed: dict[str, list[dict[str, float]]] = {"tenrusl": [], "minimal": []}
    acknowledged = 0.0
    print(
        f"wrk -c{args.connections} -d{args.duration}s; pool 16 each; loop {args.loop}; "
        f"redis {'yes' if redis_url else 'no (in-process limiter)'}; {os.cpu_count()} cpus; "
        f"load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    try:
        for run in range(args.runs):
            for label, command in servers.items():
                warm, r = measure(
                    command,
                    env,
                    base,
                    script.name,
                    3,
                    args.duration,
                    args.connections,
                    [f"w{run}{label}"],
                    [f"r{run}{label}"],
                )
                if label == "tenrusl":
                    acknowledged += warm["requests"] - warm["non2xx"] + r["requests"] - r["non2xx"]
                results[label].append(r)
                report(run, label, "mock", r)
            if args.no_signed:
                continue
            for label, command in servers.items():
                nonce = f"s{run}{label}{uuid.uuid4().hex[:6]}"
                signed_deliveries(warm_bodies, 20000, nonce + "w")
                signed_deliveries(bodies, args.duration * 6000 + 10000, nonce)  # more than a run sends
                _, r = measure(
                    command,
                    env,
                    base,
                    signed_script.name,
                    2,
                    args.duration,
                    args.connections,
                    [warm_bodies, "2"],
                    [bodies, "2"],
                )
                signed[label].append(r)
                report(run, label, "stripe", r)
        low: dict[str, dict[str, float]] = {}
        if args.low_load:
            for label, batch in (("group commit", "64"), ("one statement each", "1")):
                with Server(servers["tenrusl"], {**env, "TENRUSL_INGEST_BATCH_MAX": batch}, base):
                    drive(base, script.name, 2, 1, [f"lw{batch}"], threads=1)
                    low[label] = drive(base, script.name, args.duration, 1, [f"l{batch}"], threads=1)
                r = low[label]
                print(
                    f"concurrency 1, tenrusl, {label:18}: {r['rps']:6.0f} req/s  p50 {r['p50']:6.2f} ms  "
                    f"p90 {r['p90']:6.2f} ms  p99 {r['p99']:6.2f} ms",
                    flush=True,
                )
    finally:
        with psycopg.connect(db_url) as conn:
            row = conn.execute(
                "SELECT count(*) FROM webhook_events WHERE id NOT LIKE 'm%' AND provider = 'mock' "
                "AND event_id NOT LIKE 'evt_l%' AND event_id NOT LIKE 'evt_prefill_%'"
            ).fetchone()
            stored = row[0] if row else 0
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        for leftover in (bodies, warm_bodies, script.name, signed_script.name, minimal.name):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(leftover)
    ours, floor = stat(results["tenrusl"], "rps"), stat(results["minimal"], "rps")
    ours_p99, floor_p99 = stat(results["tenrusl"], "p99"), stat(results["minimal"], "p99")
    ratio = ours / floor
    print(
        f"\nmedian of {args.runs}: tenrusl {ours:.0f} durable webhooks/s (p50 "
        f"{stat(results['tenrusl'], 'p50'):.1f} ms, p99 {ours_p99:.1f} ms); minimal receiver "
        f"{floor:.0f}/s (p50 {stat(results['minimal'], 'p50'):.1f} ms, p99 {floor_p99:.1f} ms)"
    )
    print(
        f"rows stored by tenrusl (mock): {stored}; deliveries it acknowledged with 2xx: {acknowledged:.0f} "
        f"({'every acknowledged delivery stored' if stored >= acknowledged else 'ROWS MISSING'}; "
        f"more rows than 2xx: answers in flight when wrk stopped)"
    )
    verdict = "PASS" if ratio >= 0.70 else "FAIL"
    p99_verdict = "PASS" if ours_p99 <= 2 * floor_p99 else "FAIL"
    print(f"tenrusl / minimal receiver, same machine, same run: {ratio:.2f}  {verdict} (>= 0.70)")
    print(f"p99 tenrusl / minimal: {ours_p99 / floor_p99:.2f}  {p99_verdict} (<= 2)")
    rss = [r["rss_mb"] for r in results["tenrusl"] + signed["tenrusl"]]
    rss_verdict = "PASS" if max(rss) < 150 else "FAIL"
    print(
        f"peak RSS per process: tenrusl {max(rss):.0f} MB  {rss_verdict} (< 150 MB); "
        f"minimal {max(r['rss_mb'] for r in results['minimal']):.0f} MB"
    )
    if signed["tenrusl"]:
        s_ours, s_floor = stat(signed["tenrusl"], "rps"), stat(signed["minimal"], "rps")
        print(
            f"signed (Stripe HMAC): tenrusl {s_ours:.0f}/s "
            f"(p99 {stat(signed['tenrusl'], 'p99'):.1f} ms), "
            f"minimal receiver on the same bodies {s_floor:.0f}/s "
            f"(p99 {stat(signed['minimal'], 'p99'):.1f} ms); ratio {s_ours / s_floor:.2f}"
        )
    print(
        f"for reference, published baseline: minimal {BASELINE_AUTOCOMMIT:.0f}/s here now {floor:.0f}/s "
        f"(machine factor {floor / BASELINE_AUTOCOMMIT:.2f}); "
        f"tenrusl / published {ours / BASELINE_AUTOCOMMIT:.2f}"
    )
    return 0 if verdict == p99_verdict == rss_verdict == "PASS" else 1


# Stored events as the receiver leaves them (processed, with a payload of the bench's size).
PREFILL = """
INSERT INTO webhook_events (id, provider, event_id, event_id_source, event_type, status, payment_status,
                            attempts, processed_at, payload_raw, payload, headers)
SELECT 'p' || g, 'mock', 'evt_prefill_' || g, 'payload', 'payment.succeeded', 'processed', 'succeeded',
       1, now(), convert_to(doc::text, 'UTF8'), doc, '{"content-type": "application/json"}'
  FROM generate_series(1, %s) g,
       LATERAL (SELECT jsonb_build_object('id', 'evt_prefill_' || g, 'type', 'payment.succeeded',
                       'data', jsonb_build_object('object', jsonb_build_object(
                           'id', 'pi_3Mtw', 'amount', 150000, 'currency', 'idr'))) AS doc) d
"""


if __name__ == "__main__":
    sys.exit(main())
