"""Claim benchmark: the retry runner's drain and claim latency, and pgqueuer on the same database.

    python -P bench/claim.py [--rows 10000] [--big-rows 1000000] [--skip-big] [--skip-pgqueuer]

Uses TENRUSL_DATABASE_URL's server when set (it creates and drops its own databases there),
otherwise an embedded PostgreSQL under .cache/bench. Prints numbers and ratios, asserts nothing.

1. Small table: ``--rows`` due events (each naming a pending payment). Claim latency (LIMIT 100;
   BEGIN/claim/ROLLBACK, median of 50), then the real runner (`Runner.run`: claim batches of 200,
   provider extraction per event, ``tenrusl_retry_apply_batch`` per batch) drains them: events/s.
2. Big table: ``--big-rows`` rows of which all but ``--rows`` are processed (outside the partial
   index); the same latency and drain.
3. pgqueuer (``pip install pgqueuer``): enqueue ``--rows`` no-op jobs in batches of 1,000, drain
   with one consumer at batch 10 (its default) and 100, in a database of the same server.
   Our drain is printed as a ratio of pgqueuer's. Note the work differs: ours updates the event
   and its payment per event; pgqueuer's handler is a no-op but it logs every job.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg.rows import dict_row

from retry_job.runner import Runner, RunOptions
from tenrusl.db import open_pool
from tenrusl.migrate import apply_migrations
from tenrusl.settings import Settings
from tenrusl.sql import queries
from tenrusl.store import Store

ROOT = Path(__file__).resolve().parent.parent


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def server_url() -> str:
    url = os.environ.get("TENRUSL_DATABASE_URL")
    if url:
        return url
    from tenrusl.embedded import start_postgres

    return start_postgres(ROOT / ".cache" / "bench" / "pg", database="postgres").url


async def fresh_database(server: str, name: str) -> str:
    async with await psycopg.AsyncConnection.connect(server, autocommit=True) as admin:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    return with_database(server, name)


async def drop_database(server: str, name: str) -> None:
    async with await psycopg.AsyncConnection.connect(server, autocommit=True) as admin:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


SEED = """
INSERT INTO webhook_events (id, provider, event_id, event_id_source, status, attempts, next_retry_at,
                            last_attempt_at, processed_at, payload_raw, payload)
SELECT 'ev_' || lpad(g::text, 9, '0'), 'mock', 'evt_' || g, 'payload',
       CASE WHEN g %% %(every)s = 0 THEN 'failed' ELSE 'processed' END, 1,
       CASE WHEN g %% %(every)s = 0 THEN now() - interval '2 hours' + g * interval '1 ms' END,
       now() - interval '3 hours', CASE WHEN g %% %(every)s = 0 THEN NULL ELSE now() END,
       convert_to(p::text, 'UTF8'), p
  FROM generate_series(1, %(rows)s::int) g,
       LATERAL (SELECT jsonb_build_object('id', 'evt_' || g, 'type', 'payment.succeeded',
                                          'status', 'succeeded', 'provider_ref', 'ref_' || g,
                                          'amount', 125000, 'currency', 'IDR') AS p) x
"""
PAYMENTS = """
INSERT INTO payments (id, provider, provider_ref, amount, currency)
SELECT 'pay_' || g, 'mock', 'ref_' || g, 125000, 'IDR'
  FROM generate_series(%(every)s::int, %(rows)s::int, %(every)s::int) g
"""


async def seed(url: str, rows: int, due: int) -> None:
    every = max(1, rows // due)
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(SEED, {"rows": rows, "every": every})
        await conn.execute(PAYMENTS, {"rows": rows, "every": every})
        await conn.execute("VACUUM ANALYZE webhook_events")
        await conn.execute("VACUUM ANALYZE payments")
        await conn.execute("CHECKPOINT")


async def claim_latency_ms(url: str, runs: int = 50) -> float:
    params = {"limit": 100, "lease_seconds": 120, "max_attempts": 22, "providers": None}
    samples = []
    async with await psycopg.AsyncConnection.connect(url, row_factory=dict_row) as conn:
        for i in range(runs + 3):
            started = time.perf_counter()
            async with conn.transaction(force_rollback=True):
                cur = await conn.execute(queries["claim_due_events"], params)
                await cur.fetchall()
            if i >= 3:  # warm-up
                samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


async def runner_drain(url: str, due: int) -> tuple[float, str]:
    settings = Settings.from_env(
        {"TENRUSL_DATABASE_URL": url, "TENRUSL_DB_POOL_MIN": "1", "TENRUSL_DB_POOL_MAX": "2",
         "TENRUSL_SCHEDULER_LIMIT": "100000"}  # a drain: the per-run cap (default 2000) out of the way
    )  # fmt: skip
    async with open_pool(settings) as pool:
        started = time.perf_counter()
        result = await Runner(settings, Store(pool), RunOptions(trigger="bench", time_budget_s=3600)).run()
        elapsed = time.perf_counter() - started
    assert result.claimed == due and result.ok == due, result.summary
    return due / elapsed, result.summary


async def case(server: str, label: str, rows: int, due: int) -> float:
    name = f"tenrusl_bench_{label}"
    url = await fresh_database(server, name)
    try:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True, row_factory=dict_row) as conn:
            await apply_migrations(conn)
        t0 = time.perf_counter()
        await seed(url, rows, due)
        seeded = time.perf_counter() - t0
        latency = await claim_latency_ms(url)
        rate, summary = await runner_drain(url, due)
        print(
            f"{label:>5}: table {rows:>9,} rows, {due:,} due (seeded in {seeded:.1f}s) | "
            f"claim LIMIT 100 median {latency:.2f} ms (rolled back) | "
            f"runner drain {rate:,.0f} events/s ({summary})"
        )
        return rate
    finally:
        await drop_database(server, name)


async def pgqueuer_drain(server: str, jobs: int, batch: int) -> float:
    from pgqueuer import PgQueuer
    from pgqueuer.db import PsycopgDriver
    from pgqueuer.queries import Queries
    from pgqueuer.types import QueueExecutionMode

    name = "tenrusl_bench_pgq"
    url = await fresh_database(server, name)
    try:
        conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
        q = Queries(PsycopgDriver(conn))
        await q.install()
        for start in range(0, jobs, 1000):
            n = min(1000, jobs - start)
            await q.enqueue(["noop"] * n, [None] * n, [0] * n)
        consumer = await psycopg.AsyncConnection.connect(url, autocommit=True)
        pgq = PgQueuer(PsycopgDriver(consumer))
        done = 0
        finished = asyncio.get_running_loop().create_future()

        @pgq.entrypoint("noop")
        async def noop(job: object) -> None:
            nonlocal done
            done += 1
            if done == jobs and not finished.done():
                finished.set_result(time.perf_counter())

        from datetime import timedelta

        started = time.perf_counter()
        task = asyncio.create_task(
            pgq.run(batch_size=batch, mode=QueueExecutionMode.drain, dequeue_timeout=timedelta(seconds=1))
        )
        end = await asyncio.wait_for(finished, timeout=600)
        # pgqueuer's drain exit lags the last job by seconds with psycopg (design notes); the
        # rate uses the time the last handler finished, as the baseline does.
        pgq.shutdown.set()
        try:
            await asyncio.wait_for(task, timeout=15)
        except (TimeoutError, asyncio.CancelledError):
            task.cancel()
        await consumer.close()
        await conn.close()
        return jobs / (end - started)
    finally:
        await drop_database(server, name)


async def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=10_000, help="due events (and pgqueuer jobs)")
    parser.add_argument("--big-rows", type=int, default=1_000_000, help="rows in the big table")
    parser.add_argument("--skip-big", action="store_true")
    parser.add_argument("--skip-pgqueuer", action="store_true")
    args = parser.parse_args()
    server = server_url()
    print(f"python {sys.version.split()[0]}, psycopg {psycopg.__version__}; {os.cpu_count()} cpus")
    small = await case(server, "small", args.rows, args.rows)
    big = None if args.skip_big else await case(server, "big", args.big_rows, args.rows)
    if big is not None:
        print(f"big/small drain ratio: {big / small:.2f}")
    if not args.skip_pgqueuer:
        try:
            import pgqueuer
        except ImportError:
            print("pgqueuer is not installed (pip install pgqueuer); skipped")
            return 0
        for batch in (10, 100):
            rate = await pgqueuer_drain(server, args.rows, batch)
            print(
                f"pgqueuer {pgqueuer.__version__ if hasattr(pgqueuer, '__version__') else ''} drain "
                f"{args.rows:,} no-op jobs, 1 consumer, batch {batch}: {rate:,.0f} jobs/s | "
                f"our runner drain (small) / pgqueuer = {small / rate:.2f}x"
            )
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
