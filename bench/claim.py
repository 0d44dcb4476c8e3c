"""Retry drain and claim latency, side by side with pgqueuer and a plain SKIP LOCKED claim.

    .venv/bin/python -P bench/claim.py                      # everything, about 3 minutes
    .venv/bin/python -P bench/claim.py --skip-latency --repeat 5
    .venv/bin/python -P bench/claim.py --skip-drain --sizes 10000,1000000 --explain

Server: TENRUSL_BENCH_DATABASE_URL, else TENRUSL_DATABASE_URL, else an embedded PostgreSQL under
.cache/bench. It creates its own databases there and drops them at the end. It prints numbers and
ratios and asserts nothing but the drain's correctness. docs/PERFORMANCE.md explains the output.

1. Drain. For each repetition and each batch size (10, 100 and the runner's default), our drain
   and pgqueuer's run back to back, in alternating order, on the same server:
   * ours: ``--events`` due events (realistic Stripe ``payment_intent.succeeded`` payloads of
     about 720 bytes, their payment fields stored as the receiver stores them), ``--fail-pct``
     of them naming a payment that does not exist. One real ``Runner.run()`` on the pool
     `tenrusl retry once` opens (run row, run lock, claim, re-apply, reschedule with backoff,
     counters, a JSON log line per event into /dev/null), timed from start to return;
   * pgqueuer: ``--events`` no-op jobs enqueued in batches of 1,000, one consumer
     (``PgQueuer.run(batch_size=B, mode=drain)``, psycopg driver, under uvloop like its CLI),
     timed from ``run()`` to the last handler's completion (``run()`` itself returns about 4 s
     later with the psycopg driver; each line shows that lag, not counted).
   Both sides start from a VACUUM ANALYZE-d table and a CHECKPOINT. The table reports the median
   and min..max of each side, of the per-repetition ratios (ours / pgqueuer), and of the CPU each
   side spent per event: this process plus the drain's own PostgreSQL backends (read from /proc
   when the server runs on this machine), which, unlike the rates, does not depend on what else
   the machine is doing.
2. Claim latency. For each ``--sizes`` table (10k rows all due; larger tables hold 10k due rows
   spread among processed ones, the worst case for heap locality), after the bulk load a
   VACUUM ANALYZE (statistics and hint bits: without it the first claims pay for both, and the
   plan depends on when autovacuum wakes up) and a CHECKPOINT. Then our claim and a plain
   ``UPDATE ... FROM (SELECT id ... ORDER BY next_retry_at LIMIT 100 FOR UPDATE SKIP LOCKED)``
   claim, alternately on one connection, ``--latency-runs`` times each after warm-up, and our
   claim once more on a connection with the runner's session settings: rolled back (BEGIN,
   claim, ROLLBACK: the statement alone) and committed (autocommit, WAL flush included; the
   claimed rows are put back at the end of the due queue afterwards, untimed, as a settle
   would, so every claim finds 100 due rows). Time = execute + fetch + row decoding in Python.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg.rows import dict_row

from retry_job.runner import RUN_CONNECTIONS, RUNNER_SESSION, Runner, RunOptions
from tenrusl.db import open_pool
from tenrusl.logs import configure_logging
from tenrusl.migrate import apply_migrations
from tenrusl.policy import KNOB
from tenrusl.providers import rules_fingerprint
from tenrusl.settings import Settings
from tenrusl.sql import queries
from tenrusl.store import ClaimedEvent, Store

T = TypeVar("T")
ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BATCH = int(KNOB["batch_size"].default)
LEASE_S = 120

# -- servers and databases -----------------------------------------------------------------------


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def server_url() -> tuple[str, Any]:
    url = os.environ.get("TENRUSL_BENCH_DATABASE_URL") or os.environ.get("TENRUSL_DATABASE_URL")
    if url:
        return url, None
    from tenrusl.embedded import start_postgres

    server = start_postgres(ROOT / ".cache" / "bench" / "pg", database="postgres")
    return server.url, server


def fresh_database(server: str, name: str) -> str:
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    return with_database(server, name)


def drop_database(server: str, name: str) -> None:
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def describe_server(url: str) -> str:
    with psycopg.connect(url) as conn:
        version = conn.execute("SHOW server_version").fetchone()
        names = ("shared_buffers", "synchronous_commit", "autovacuum", "max_wal_size", "jit")
        values = [f"{n}={conn.execute(f'SHOW {n}').fetchone()[0]}" for n in names]  # type: ignore[index]
    return f"PostgreSQL {version[0] if version else '?'} ({', '.join(values)})"


def checkpoint(url: str, *tables: str) -> None:
    """VACUUM ANALYZE (statistics, hint bits, visibility map) and a CHECKPOINT before timing."""
    with psycopg.connect(url, autocommit=True) as conn:
        for table in tables or ("",):
            conn.execute(f"VACUUM ANALYZE {table}")
        conn.execute("CHECKPOINT")


# -- seed data -----------------------------------------------------------------------------------

# A Stripe payment_intent.succeeded notification as the receiver stores it (about 720 bytes of
# JSON); the payment it names is metadata.provider_ref = ref_<g>.
PAYLOAD = """jsonb_build_object(
    'id', 'evt_' || g, 'object', 'event', 'api_version', '2024-06-20', 'created', 1700000000 + g,
    'type', 'payment_intent.succeeded', 'livemode', false, 'pending_webhooks', 1,
    'request', jsonb_build_object('id', 'req_' || left(md5(g::text), 14),
                                  'idempotency_key', md5((g + 7)::text)),
    'data', jsonb_build_object('object', jsonb_build_object(
        'id', 'pi_' || left(md5(g::text), 24), 'object', 'payment_intent', 'amount', 125000,
        'amount_received', 125000, 'currency', 'idr', 'status', 'succeeded',
        'customer', 'cus_' || left(md5((g + 1)::text), 14), 'description', 'Order #' || g,
        'payment_method', 'pm_' || left(md5((g + 2)::text), 24),
        'payment_method_types', jsonb_build_array('card'), 'created', 1700000000 + g,
        'latest_charge', 'ch_' || left(md5((g + 3)::text), 24),
        'metadata', jsonb_build_object('provider_ref', 'ref_' || g, 'order_id', 'order_' || g))))"""

# A processed event's payload is never read: a short one keeps loading a million rows quick.
SMALL = "jsonb_build_object('id', 'evt_' || g, 'type', 'payment_intent.succeeded')"

# Rows 1..rows; every `every`-th row is a due `failed` event (attempts 1), the others processed.
# The payment columns hold what the receiver read at ingest, stamped with the rules that read them
# (`extracted_with`, as the receiver's connection does), or NULL to make the runner read every
# payload again (as after an upgrade that changed a provider rule: --stale-fields).
SEED_EVENTS = f"""
INSERT INTO webhook_events (id, provider, event_id, event_id_source, event_type, status,
                            payment_status, payment_provider_ref, extracted_with, attempts,
                            next_retry_at, received_at, last_attempt_at, processed_at, last_error,
                            payload_raw, payload)
SELECT 'ev_' || lpad(g::text, 9, '0'), 'stripe', 'evt_' || g, 'payload', 'payment_intent.succeeded',
       CASE WHEN due THEN 'failed' ELSE 'processed' END, 'succeeded', 'ref_' || g, %(rules)s, 1,
       CASE WHEN due THEN now() - interval '2 hours' + g * interval '1 ms' END,
       now() - interval '3 hours' + g * interval '1 ms', now() - interval '3 hours',
       CASE WHEN NOT due THEN now() END,
       CASE WHEN due THEN 'payment not found' END,
       convert_to(p::text, 'UTF8'), p
  FROM generate_series(1, %(rows)s::int) g,
       LATERAL (SELECT g %% %(every)s = 0 AS due) d,
       LATERAL (SELECT CASE WHEN due THEN {PAYLOAD} ELSE {SMALL} END AS p) x
"""
# A pending payment for each due event, except every `missing`-th (those events are rescheduled).
SEED_PAYMENTS = """
INSERT INTO payments (id, provider, provider_ref, amount, currency)
SELECT 'pay_' || g, 'stripe', 'ref_' || g, 125000, 'IDR'
  FROM generate_series(%(every)s::int, %(rows)s::int, %(every)s::int) g
 WHERE %(missing)s::int = 0 OR (g / %(every)s) %% %(missing)s <> 0
"""


def seed_events(url: str, rows: int, due: int, fail_pct: float = 0.0, stale: bool = False) -> float:
    """Empty the event tables and load ``rows`` events, ``due`` of them due; returns seconds."""
    every = max(1, rows // due)
    missing = round(100 / fail_pct) if fail_pct > 0 else 0
    rules = None if stale else rules_fingerprint()
    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE webhook_events, payments, retry_runs, idempotency_keys")
        conn.execute(SEED_EVENTS, {"rows": rows, "every": every, "rules": rules})
        conn.execute(SEED_PAYMENTS, {"rows": rows, "every": every, "missing": missing})
    return time.perf_counter() - started


# -- statistics ----------------------------------------------------------------------------------


@dataclass
class Series:
    values: list[float] = field(default_factory=list)

    def add(self, value: float) -> None:
        self.values.append(value)

    def median(self) -> float:
        return statistics.median(self.values) if self.values else float("nan")

    def show(self, fmt: str = ",.0f") -> str:
        if not self.values:
            return "-"
        m, lo, hi = self.median(), min(self.values), max(self.values)
        return f"{m:{fmt}} ({lo:{fmt}}..{hi:{fmt}})"


# -- CPU accounting --------------------------------------------------------------------------------


def process_cpu() -> float:
    """CPU seconds this process used so far (user + system)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def backend_cpu(pids: list[int]) -> float | None:
    """CPU seconds these PostgreSQL backends used since they started; None when the server is not
    on this machine (or its processes cannot be read)."""
    total = 0.0
    try:
        for pid in pids:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None
    return total


@dataclass
class Drain:
    seconds: float
    client_cpu: float  # seconds
    server_cpu: float | None  # seconds, the drain's own backends
    note: str


# -- 1. drain ------------------------------------------------------------------------------------


@contextlib.contextmanager
def production_logging() -> Iterator[None]:
    """The runner's JSON log lines (one per event, INFO) formatted and written, into /dev/null."""
    with open(os.devnull, "w") as sink:
        configure_logging("INFO", stream=sink)
        try:
            yield
        finally:
            configure_logging("WARNING", stream=sys.stderr)


async def our_drain(url: str, events: int, batch: int) -> Drain:
    """One real run of the retry runner over the seeded events."""
    # Rescheduled events wait at least a minute, so none comes due again within the drain. The
    # pool is the one `tenrusl retry once` opens (retry_job/cli.py): RUN_CONNECTIONS, RUNNER_SESSION.
    settings = Settings.from_env({"TENRUSL_DATABASE_URL": url, "TENRUSL_RETRY_MIN_DELAY_MS": "60000"})
    settings = settings.replace(db_pool_min=1, db_pool_max=RUN_CONNECTIONS)
    async with open_pool(settings, session=RUNNER_SESSION) as pool:
        await pool.wait()
        # Claims of `batch`; the per-run cap (policy `limit`) out of the way: this is a drain.
        flags = {"batch_size": batch, "limit": KNOB["limit"].maximum}
        runner = Runner(settings, Store(pool), RunOptions(trigger="bench", flags=flags, time_budget_s=3600))
        cpu = process_cpu()
        started = time.perf_counter()
        result = await runner.run()
        elapsed = time.perf_counter() - started
        cpu = process_cpu() - cpu
        async with pool.connection() as conn:  # the pool's backends (their CPU since they started)
            cur = await conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND application_name = 'tenrusl'"
            )
            server = backend_cpu([row["pid"] for row in await cur.fetchall()])
    if result.claimed != events or result.ok + result.failed != events or result.outcome != "completed":
        raise SystemExit(f"our drain did not drain: {result.summary} {result.outcome} {result.error}")
    return Drain(elapsed, cpu, server, result.summary)


async def pgqueuer_seed(url: str, jobs: int) -> None:
    from pgqueuer.db import PsycopgDriver
    from pgqueuer.queries import Queries

    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        q = Queries(PsycopgDriver(conn))
        if not await q.schema_is_installed():
            await q.install()
        await q.clear_queue()
        await q.clear_queue_log()
        await q.clear_statistics_log()
        for start in range(0, jobs, 1000):
            n = min(1000, jobs - start)
            await q.enqueue(["noop"] * n, [None] * n, [0] * n)


async def pgqueuer_drain(url: str, jobs: int, batch: int, options: str = "") -> Drain:
    """pgqueuer's own drain of no-op jobs, timed (and its CPU counted) to the last handler."""
    from pgqueuer import PgQueuer
    from pgqueuer.db import PsycopgDriver
    from pgqueuer.types import QueueExecutionMode

    consumer = await psycopg.AsyncConnection.connect(url, autocommit=True, options=options)
    backend = consumer.info.backend_pid
    pgq = PgQueuer(PsycopgDriver(consumer))
    done = 0
    finished: asyncio.Future[tuple[float, float, float | None]] = asyncio.get_running_loop().create_future()

    @pgq.entrypoint("noop")
    async def noop(job: object) -> None:
        nonlocal done
        done += 1
        if done == jobs and not finished.done():
            finished.set_result((time.perf_counter(), process_cpu(), backend_cpu([backend])))

    server = backend_cpu([backend])
    cpu = process_cpu()
    started = time.perf_counter()
    task = asyncio.create_task(
        pgq.run(batch_size=batch, mode=QueueExecutionMode.drain, dequeue_timeout=timedelta(seconds=1))
    )
    end, cpu_end, server_end = await asyncio.wait_for(finished, timeout=900)
    try:
        await asyncio.wait_for(task, timeout=30)
    except TimeoutError:
        task.cancel()
    exit_lag = time.perf_counter() - end
    await consumer.close()
    server_cpu = None if server is None or server_end is None else server_end - server
    return Drain(end - started, cpu_end - cpu, server_cpu, f"run() returned {exit_lag:.1f} s later")


def run_loop(main: Callable[..., Coroutine[Any, Any, T]], *args: Any, uvloop_if_there: bool = False) -> T:
    """``main(*args)`` in an event loop of its own (uvloop for pgqueuer, as its CLI does)."""
    if uvloop_if_there:
        try:
            import uvloop
        except ImportError:
            pass
        else:
            return uvloop.run(main(*args))
    return asyncio.run(main(*args))


# The sides of a drain comparison: ours, pgqueuer as it comes, and pgqueuer with the commit mode
# our runner uses (retry_job/runner.py, RUNNER_SESSION), so that neither side gains by it alone.
SIDE_NAMES = {"ours": "ours", "pgq": "pgqueuer", "pgq_async": "pgqueuer, async commit"}
ASYNC_COMMIT = "-c synchronous_commit=off"


def drain_comparison(server: str, args: argparse.Namespace) -> None:
    ours_url = fresh_database(server, "tenrusl_bench_drain")
    run_loop(_migrate, ours_url)
    pgq_url = None if args.skip_pgqueuer else fresh_database(server, "tenrusl_bench_pgq")
    sides = ["ours"] if pgq_url is None else list(SIDE_NAMES)
    batches: list[int] = args.batches
    rate = {side: {b: Series() for b in batches} for side in sides}
    cpu = {side: {b: Series() for b in batches} for side in sides}
    ratio = {side: {b: Series() for b in batches} for side in sides[1:]}
    print(
        f"\n== 1. Drain: {args.events:,} events (ours: {args.fail_pct:g} % rescheduled, the rest "
        f"processed) vs {args.events:,} pgqueuer no-op jobs; {args.repeat} repetitions, interleaved"
    )
    try:
        for rep in range(args.repeat):
            for i, batch in enumerate(batches):
                turn = (rep * len(batches) + i) % len(sides)
                line = [f"rep {rep + 1} batch {batch:>4}:"]
                for side in sides[turn:] + sides[:turn]:
                    if side == "ours":
                        seed_events(ours_url, args.events, args.events, args.fail_pct, args.stale_fields)
                        checkpoint(ours_url, "webhook_events", "payments")
                        with production_logging():
                            drain = run_loop(our_drain, ours_url, args.events, batch)
                    else:
                        assert pgq_url is not None
                        run_loop(pgqueuer_seed, pgq_url, args.events, uvloop_if_there=True)
                        checkpoint(pgq_url)
                        options = ASYNC_COMMIT if side == "pgq_async" else ""
                        drain = run_loop(
                            pgqueuer_drain, pgq_url, args.events, batch, options, uvloop_if_there=True
                        )
                    rate[side][batch].add(args.events / drain.seconds)
                    per_event = ""
                    if drain.server_cpu is not None:
                        cpu[side][batch].add((drain.client_cpu + drain.server_cpu) / args.events * 1e6)
                        per_event = (
                            f", CPU/event {drain.client_cpu / args.events * 1e6:.0f} + "
                            f"{drain.server_cpu / args.events * 1e6:.0f} us"
                        )
                    line.append(
                        f"{SIDE_NAMES[side]} {args.events / drain.seconds:,.0f}/s ({drain.note}{per_event})"
                    )
                for side in sides[1:]:
                    ratio[side][batch].add(rate["ours"][batch].values[-1] / rate[side][batch].values[-1])
                print("  " + " | ".join(line), flush=True)
    finally:
        drop_database(server, "tenrusl_bench_drain")
        if pgq_url is not None:
            drop_database(server, "tenrusl_bench_pgq")
    print("\nevents (jobs) per second, median (min..max) of the repetitions; ratios per repetition:")
    header = (
        ["batch"] + [f"{SIDE_NAMES[side]}" for side in sides] + [f"ours / {SIDE_NAMES[s]}" for s in sides[1:]]
    )
    print("| " + " | ".join(header) + " |")
    print("|" + "---:|" * len(header))
    for batch in batches:
        cells = [f"{batch} (our default)" if batch == DEFAULT_BATCH else str(batch)]
        cells += [rate[side][batch].show() for side in sides]
        cells += [ratio[side][batch].show(".2f") for side in sides[1:]]
        print("| " + " | ".join(cells) + " |")
    if any(cpu[side][batch].values for side in sides for batch in batches):
        print("\nCPU per event in us (this process plus the drain's own PostgreSQL backends; unlike the")
        print("rates it does not depend on what else the machine runs):")
        print("| batch | " + " | ".join(SIDE_NAMES[side] for side in sides) + " |")
        print("|" + "---:|" * (len(sides) + 1))
        for batch in batches:
            print(f"| {batch} | " + " | ".join(cpu[side][batch].show() for side in sides) + " |")


async def _migrate(url: str) -> None:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True, row_factory=dict_row) as conn:
        await apply_migrations(conn)


# -- 2. claim latency ----------------------------------------------------------------------------

# The floor: what any SKIP LOCKED claim of 100 due rows on this table costs (the statement
# measured for the machine's baseline, on webhook_events and its indexes).
PLAIN_CLAIM = """
UPDATE webhook_events SET status = 'processing', attempts = attempts + 1,
       next_retry_at = now() + make_interval(secs => %(lease_seconds)s)
  FROM (SELECT id FROM webhook_events
         WHERE status IN ('received', 'processing', 'failed') AND next_retry_at <= now()
         ORDER BY next_retry_at
         LIMIT %(limit)s
           FOR UPDATE SKIP LOCKED) d
 WHERE webhook_events.id = d.id
RETURNING webhook_events.id
"""
# Untimed, after a committed claim: the claimed rows go to the back of the due queue.
PUT_BACK = """
UPDATE webhook_events SET status = 'failed', next_retry_at = now() - interval '1 ms'
 WHERE id = ANY (%(ids)s)
"""


def claim_params(limit: int) -> dict[str, Any]:
    return {
        "limit": limit,
        "lease_seconds": LEASE_S,
        "max_attempts": int(KNOB["max_attempts"].default),
        "providers": None,
        "rules": rules_fingerprint(),
    }


def explain(conn: psycopg.Connection[Any], sql: str, params: dict[str, Any]) -> str:
    with conn.transaction(force_rollback=True):
        rows = conn.execute("EXPLAIN (ANALYZE, BUFFERS, WAL) " + sql, params).fetchall()
    return "\n".join("    " + r["QUERY PLAN"] for r in rows)


SIDES = ("ours", "plain", "runner")


def time_claims(url: str, runs: int, warmup: int, limit: int, committed: bool) -> dict[str, Series]:
    """Our claim and the plain one on one connection, planned for their values at each execution
    (PostgreSQL's default for both), and ours as the runner runs it: on a connection of its own
    with the runner's session (retry_job/runner.py, RUNNER_SESSION: generic plans, planned once, and
    asynchronous commit). In rotating order, ``warmup`` untimed first.
    """
    params = claim_params(limit)
    results = {side: Series() for side in SIDES}
    runner = " ".join(f"-c {name}={value}" for name, value in RUNNER_SESSION.items())
    with (
        psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn,
        psycopg.connect(url, autocommit=True, row_factory=dict_row, options=runner) as runner_conn,
    ):

        def ours(on: psycopg.Connection[Any]) -> list[str]:
            rows = on.execute(queries["claim_due_events"], params).fetchall()
            return [ClaimedEvent.from_row(r).id for r in rows]

        def plain(on: psycopg.Connection[Any]) -> list[str]:
            return [r["id"] for r in on.execute(PLAIN_CLAIM, params).fetchall()]

        sides = {"ours": (ours, conn), "plain": (plain, conn), "runner": (ours, runner_conn)}
        for i in range(warmup + runs):
            for name in SIDES[i % 3 :] + SIDES[: i % 3]:
                claim, on = sides[name]
                started = time.perf_counter()
                if committed:
                    ids = claim(on)
                else:
                    with on.transaction(force_rollback=True):
                        ids = claim(on)
                elapsed = (time.perf_counter() - started) * 1000
                if len(ids) != limit:
                    raise SystemExit(f"{name} claimed {len(ids)} rows, not {limit}")
                if committed:
                    conn.execute(PUT_BACK, {"ids": ids})
                if i >= warmup:
                    results[name].add(elapsed)
    return results


def latency_comparison(server: str, args: argparse.Namespace) -> None:
    url = fresh_database(server, "tenrusl_bench_claim")
    run_loop(_migrate, url)
    due = 10_000
    table: list[tuple[str, str, dict[str, Series]]] = []
    print(
        f"\n== 2. Claim latency: LIMIT 100, {args.latency_runs} runs of each after "
        f"{args.warmup} warm-up, ours and the plain claim alternately"
    )
    try:
        for size in args.sizes:
            seeded = seed_events(url, size, min(due, size), stale=args.stale_fields)
            started = time.perf_counter()
            checkpoint(url, "webhook_events", "payments")
            vacuumed = time.perf_counter() - started
            with psycopg.connect(url, row_factory=dict_row) as conn:
                row = conn.execute(
                    "SELECT pg_size_pretty(pg_table_size('webhook_events')) AS heap, "
                    "pg_size_pretty(pg_relation_size('webhook_events_due_idx')) AS due_idx"
                ).fetchone()
                assert row is not None
                print(
                    f"  {size:>9,} rows, {min(due, size):,} due: loaded in {seeded:.1f} s, "
                    f"VACUUM ANALYZE + CHECKPOINT {vacuumed:.1f} s; heap {row['heap']}, "
                    f"due index {row['due_idx']}"
                )
                if args.explain:  # the first claim after the CHECKPOINT pays the full-page images
                    for name, sql in (
                        ("ours, the first claim after the CHECKPOINT", queries["claim_due_events"]),
                        ("plain, the same rows again", PLAIN_CLAIM),
                        ("ours, the same rows again", queries["claim_due_events"]),
                    ):
                        print(f"  EXPLAIN (ANALYZE, BUFFERS, WAL), rolled back: {name}")
                        print(explain(conn, sql, claim_params(100)))
            for committed in (False, True):
                mode = "committed" if committed else "rolled back"
                results = time_claims(url, args.latency_runs, args.warmup, 100, committed)
                table.append((f"{size:,}", mode, results))
                print(
                    f"  {size:>9,} rows, {mode:>11}: ours {results['ours'].show('.2f')} ms, "
                    f"plain {results['plain'].show('.2f')} ms, "
                    f"ours in the runner's session {results['runner'].show('.2f')} ms",
                    flush=True,
                )
    finally:
        drop_database(server, "tenrusl_bench_claim")
    print(
        "\n| rows | mode | ours, ms | plain SKIP LOCKED claim, ms | ours / plain (medians) "
        "| ours, runner's session, ms |"
    )
    print("|---:|---|---:|---:|---:|---:|")
    for size, mode, results in table:
        ours, plain, runner = results["ours"], results["plain"], results["runner"]
        ratio = ours.median() / plain.median()
        print(
            f"| {size} | {mode} | {ours.show('.2f')} | {plain.show('.2f')} | {ratio:.2f} "
            f"| {runner.show('.2f')} |"
        )


# -- main ----------------------------------------------------------------------------------------


def int_list(text: str) -> list[int]:
    return [int(part.replace("_", "")) for part in text.split(",") if part]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=10_000, help="events and jobs per drain (10000)")
    parser.add_argument(
        "--batches",
        type=int_list,
        default=[10, 100, DEFAULT_BATCH],
        help=f"batch sizes (10,100,{DEFAULT_BATCH})",
    )
    parser.add_argument("--repeat", type=int, default=3, help="repetitions of each drain pair (3)")
    parser.add_argument("--fail-pct", type=float, default=10.0, help="our events that are rescheduled (10)")
    parser.add_argument(
        "--stale-fields",
        action="store_true",
        help="events whose stored payment fields came from other provider rules: every payload is read again",
    )
    parser.add_argument(
        "--sizes", type=int_list, default=[10_000, 1_000_000], help="claim tables (10000,1000000)"
    )
    parser.add_argument("--latency-runs", type=int, default=50, help="timed claims per side and mode (50)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed claims first (5)")
    parser.add_argument(
        "--explain", action="store_true", help="print EXPLAIN (ANALYZE, BUFFERS, WAL) of both claims"
    )
    parser.add_argument("--skip-drain", action="store_true")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--skip-pgqueuer", action="store_true")
    args = parser.parse_args()
    configure_logging("WARNING", stream=sys.stderr)
    server, embedded = server_url()
    try:
        import pgqueuer  # noqa: F401
    except ImportError:
        print("pgqueuer is not installed (pip install -e '.[bench]'): its side is skipped")
        args.skip_pgqueuer = True
    from importlib.metadata import version

    pgq = "" if args.skip_pgqueuer else f", pgqueuer {version('pgqueuer')}"
    print(
        f"{describe_server(server)}; python {platform.python_version()}, psycopg {psycopg.__version__}"
        f"{pgq}; {os.cpu_count()} cpus, load average {os.getloadavg()[0]:.1f} at start"
    )
    started = time.perf_counter()
    try:
        if not args.skip_drain:
            drain_comparison(server, args)
        if not args.skip_latency:
            latency_comparison(server, args)
    finally:
        if embedded is not None:
            embedded.stop()
    print(f"\ntotal {time.perf_counter() - started:.0f} s, load average {os.getloadavg()[0]:.1f} at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
