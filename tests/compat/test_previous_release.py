"""The previous release's code keeps working on the current schema (expand now, contract later).

The previous release's SQL is a committed snapshot taken from git history
(``scripts/snapshot-release-sql``, tests/compat/releases/<version>/): every named query block its
code sends, and the migrations that built its schema. Against a database migrated to whatever
migration is newest now (other branches add theirs; this test follows), each check below is what
a ``helm rollback`` by one release would meet:

- every query block of that release runs for real, with arguments of the types its code binds
  (each in a savepoint, all rolled back): its calls of ``tenrusl_ingest_event`` (16 arguments) and
  ``tenrusl_ingest_events`` store events, its claim and settle statements move them;
- every function, table, column (same type) and CHECK-accepted value its schema had is still
  there, and its database upgrades to the current schema.

``./scripts/test tests/compat`` runs them; docs/testing.md says when to take a new snapshot.
"""

from __future__ import annotations

import re
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from psycopg.types.json import Jsonb

from tenrusl.db import Connection
from tenrusl.migrate import apply_migrations
from tenrusl.sql import _parse
from tests.conftest import with_database
from tests.tools import ROOT

RELEASES = Path(__file__).parent / "releases"
PREVIOUS = "0.1.0"
SNAPSHOT = RELEASES / PREVIOUS
PLACEHOLDER = re.compile(r"%\((\w+)\)[sbt]")


def release_info() -> dict[str, str]:
    return yaml.safe_load((SNAPSHOT / "release.yaml").read_text())


def snapshot_queries() -> dict[str, str]:
    """Every named block of the previous release, in file order (as its code runs them)."""
    blocks: dict[str, str] = {}
    for path in sorted((SNAPSHOT / "queries").glob("*.sql")):
        blocks.update(_parse(path.read_text(), path.name))
    return blocks


def snapshot_migrations() -> list[tuple[str, str]]:
    return [(p.stem, p.read_text()) for p in sorted((SNAPSHOT / "migrations").glob("*.sql"))]


# -- the snapshot is the release's SQL ------------------------------------------------------------


def _git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_the_snapshot_is_the_previous_release_commits_sql() -> None:
    commit = release_info()["commit"]
    if _git("cat-file", "-e", f"{commit}^{{commit}}").returncode != 0:
        pytest.skip(f"commit {commit} is not in this clone (shallow?); the snapshot is checked where it is")
    for folder in ("queries", "migrations"):
        listed = _git("ls-tree", "--name-only", commit, f"tenrusl/sql/{folder}/").stdout.split()
        expected = {Path(p).name for p in listed if p.endswith(".sql")}
        assert {p.name for p in (SNAPSHOT / folder).glob("*.sql")} == expected, folder
        for name in expected:
            shown = _git("show", f"{commit}:tenrusl/sql/{folder}/{name}")
            assert shown.returncode == 0, shown.stderr
            assert (SNAPSHOT / folder / name).read_text() == shown.stdout, (
                f"{folder}/{name} differs from {commit}"
            )


def test_the_snapshot_holds_the_previous_releases_ingest_calls() -> None:
    blocks = snapshot_queries()
    assert len(blocks) >= 30
    assert "tenrusl_ingest_event(" in blocks["ingest_event"]
    assert len(PLACEHOLDER.findall(blocks["ingest_event"])) == 16, "tenrusl_ingest_event(16 arguments)"
    assert "tenrusl_ingest_events(" in blocks["ingest_events"]


# -- every block runs on the current schema --------------------------------------------------------

NOW_ID = "01JCOMPAT0000000000000000"
EVENT_IDS = [f"01JCOMPATEVT00000000000{i:03d}" for i in range(3)]
BODY = b'{"id":"evt_compat_0","type":"payment.succeeded","status":"succeeded","provider_ref":"order-compat"}'
PAYLOAD = {
    "id": "evt_compat_0",
    "type": "payment.succeeded",
    "status": "succeeded",
    "provider_ref": "order-compat",
}


def arguments(block: str) -> dict[str, Any]:
    """What the previous release's code binds, by parameter name (typed as its code typed them)."""
    many = len(EVENT_IDS)
    common: dict[str, Any] = {
        # tenrusl/store/events.py: one delivery, and a batch of them (binary arrays)
        "id": EVENT_IDS[0], "provider": "mock", "event_id": "evt_compat_0", "event_id_source": "payload",
        "event_type": "payment.succeeded", "payment_status": "succeeded", "payment_ref": "order-compat",
        "payload_raw": BODY, "payload": Jsonb(PAYLOAD), "headers": Jsonb({"content-type": "application/json"}),
        "source_ip": "10.0.0.7", "request_id": "req-compat", "signature_hash": "ab" * 32,
        "retry_delay_ms": 60000, "max_attempts": 22, "payload_issues": [],
        # payments
        "provider_ref": "order-compat", "amount": 125000, "currency": "IDR", "description": "compat",
        "metadata": Jsonb({"order": 1}), "idempotency_key": "idem-compat", "request_hash": "cd" * 32,
        "status": None, "q": None, "created_from": None, "created_to": None, "limit": 10, "offset": 0,
        "key": "idem-compat", "lock_seconds": 30, "ttl_seconds": 86400, "body": Jsonb({"data": {}}),
        # retry
        "rules": "rules-compat", "providers": None, "lease_seconds": 120, "force": True,
        "ids": EVENT_IDS, "payment_statuses": ["succeeded"] * many, "payment_refs": ["order-compat"] * many,
        "retry_delays_ms": [60000] * many, "error": "compat error", "actor": "compat-test",
        "since": None, "until": None, "received_from": None, "received_to": None, "needs_review": None,
        "trigger": "cron", "policy": Jsonb({"limit": 10, "leaseSeconds": 120}), "lock_backend": "redis",
        "grace_seconds": 60, "outcome": "completed", "claimed": 1, "ok": 1, "failed": 0, "dead": 0,
        # schema
        "version": "9999_compat_probe",
    }  # fmt: skip
    per_block: dict[str, dict[str, Any]] = {
        "ingest_events": {
            "id": EVENT_IDS[1:], "provider": ["mock"] * 2, "event_id": ["evt_compat_1", "evt_compat_2"],
            "event_id_source": ["payload"] * 2, "event_type": ["payment.succeeded"] * 2,
            "payment_status": ["succeeded", "failed"], "payment_ref": ["order-compat", None],
            "payload_raw": [BODY] * 2, "payload": [Jsonb(PAYLOAD)] * 2, "headers": [Jsonb({})] * 2,
            "source_ip": ["10.0.0.7", None], "request_id": ["r1", "r2"], "signature_hash": [None, "ef" * 32],
            "payload_issues": ["", ""], "retry_delay_ms": 0,
        },
        "insert_payment": {"id": "01JCOMPATPAYNEW000000000", "provider_ref": "order-compat-new"},
        "complete_idempotency_key": {"status": 201},
        "replay_events": {"status": "dead"},
        "count_replayable": {"status": "dead"},
        "claim_due_events": {"providers": ["mock"]},
        "migration_lock": {"key": 0x7E4E_5255_0000_0001},
        "migration_unlock": {"key": 0x7E4E_5255_0000_0001},
        "try_retry_run_lock": {"key": 0x7E4E_5255_0000_0002},
    }  # fmt: skip
    return {**common, **per_block.get(block, {})}


@pytest.fixture
async def conn(db_url: str) -> AsyncIterator[Connection]:
    connection = await psycopg.AsyncConnection.connect(db_url, row_factory=psycopg.rows.dict_row)
    yield connection
    await connection.close()


async def test_every_query_of_the_previous_release_runs_on_the_current_schema(conn: Connection) -> None:
    """Each block executes for real (a savepoint each, everything rolled back at the end)."""
    blocks = snapshot_queries()
    failures: dict[str, str] = {}
    rows: dict[str, int] = {}
    async with conn.transaction(force_rollback=True):
        await conn.execute(
            "INSERT INTO payments (id, provider, provider_ref, amount, currency, status) "
            "VALUES ('01JCOMPATPAY000000000000', 'mock', 'order-compat', 1, 'IDR', 'pending')"
        )
        for name, text in blocks.items():
            params = {
                key: value for key, value in arguments(name).items() if key in PLACEHOLDER.findall(text)
            }
            try:
                async with conn.transaction():
                    cur = await conn.execute(text, params)
                    rows[name] = len(await cur.fetchall()) if cur.description else cur.rowcount
            except psycopg.Error as exc:
                failures[name] = f"{type(exc).__name__}: {exc}"
    assert failures == {}, "the previous release's SQL breaks on the current schema"
    # The ingest calls really stored and applied: one single delivery, then a batch of two.
    assert rows["ingest_event"] == 1 and rows["ingest_events"] == 2
    assert rows["get_event"] == 1 and rows["claim_due_events"] >= 1


async def test_the_previous_releases_single_ingest_applies_the_payment(conn: Connection) -> None:
    text = snapshot_queries()["ingest_event"]
    params = {k: v for k, v in arguments("ingest_event").items() if k in PLACEHOLDER.findall(text)}
    async with conn.transaction(force_rollback=True):
        await conn.execute(
            "INSERT INTO payments (id, provider, provider_ref, amount, currency, status) "
            "VALUES ('01JCOMPATPAY000000000000', 'mock', 'order-compat', 1, 'IDR', 'pending')"
        )
        first = await (await conn.execute(text, params)).fetchall()
        again = await (await conn.execute(text, params)).fetchall()
        payment = await (
            await conn.execute("SELECT status FROM payments WHERE provider_ref = 'order-compat'")
        ).fetchone()
        event = await (
            await conn.execute("SELECT status, deliveries FROM webhook_events WHERE id = %s", (EVENT_IDS[0],))
        ).fetchone()
    assert len(first) == 1 and len(again) == 1
    assert payment == {"status": "succeeded"}
    assert event is not None and event["status"] == "processed" and event["deliveries"] == 2


# -- the previous release's schema objects are all still there -----------------------------------


@pytest.fixture
async def previous_db(pg_server_url: str) -> AsyncIterator[str]:
    """A database built by the previous release's own migrations (as its users have it)."""
    name = f"t_prev_{uuid.uuid4().hex[:12]}"
    async with await psycopg.AsyncConnection.connect(pg_server_url, autocommit=True) as admin:
        await admin.execute(f'CREATE DATABASE "{name}"')
    url = with_database(pg_server_url, name)
    try:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as c:
            await apply_migrations(c, migrations=snapshot_migrations())
        yield url
    finally:
        async with await psycopg.AsyncConnection.connect(pg_server_url, autocommit=True) as admin:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


SCHEMA_OBJECTS = {
    "functions": "SELECT p.oid::regprocedure::text AS item FROM pg_proc p "
                 "JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public'",
    "columns": "SELECT table_name || '.' || column_name || ' ' || data_type AS item "
               "FROM information_schema.columns WHERE table_schema = 'public'",
    "check_values": "SELECT conrelid::regclass::text || ': ' || v[1] AS item FROM pg_constraint, "
                    "regexp_matches(pg_get_constraintdef(oid), '''([a-z_]+)''::text', 'g') AS v "
                    "WHERE contype = 'c' AND connamespace = 'public'::regnamespace",
}  # fmt: skip


async def schema_objects(url: str) -> dict[str, set[str]]:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as c:
        return {
            kind: {row[0] for row in await (await c.execute(sql)).fetchall()}
            for kind, sql in SCHEMA_OBJECTS.items()
        }


async def test_nothing_the_previous_release_had_is_dropped_or_narrowed(previous_db: str, db_url: str) -> None:
    before, now = await schema_objects(previous_db), await schema_objects(db_url)
    assert any("tenrusl_ingest_event(" in f for f in before["functions"])
    for kind in SCHEMA_OBJECTS:
        assert sorted(before[kind] - now[kind]) == [], f"{kind} of {PREVIOUS} missing or changed now"


async def test_the_previous_releases_database_upgrades_to_the_current_schema(previous_db: str) -> None:
    async with await psycopg.AsyncConnection.connect(
        previous_db, autocommit=True, row_factory=psycopg.rows.dict_row
    ) as c:
        applied = await apply_migrations(c)
        assert "0013_code_compatibility" in applied
        row = await (await c.execute("SELECT oldest_code_version FROM tenrusl_compatibility")).fetchone()
    assert row == {"oldest_code_version": PREVIOUS}
