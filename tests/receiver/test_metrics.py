"""/metrics: bounded labels, signature failures and database errors, and one snapshot query per
period however many scrapes arrive at once."""

from __future__ import annotations

import ast
import asyncio
import re
from typing import Any

import psycopg

from receiver.keys import METRICS
from receiver.metrics import SIGNATURE_REASONS, signature_reason
from tenrusl.db import Connection
from tests.conftest import ROOT
from tests.receiver.helpers import mock_delivery
from tests.tcp_proxy import TcpProxy

SNAPSHOT_MARKER = "backlog_oldest_seconds"  # only the metrics snapshot statement contains it


def _sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample in Prometheus text, or None when absent."""
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        got_name, _, rest = head.partition("{")
        if got_name != name:
            continue
        got = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', rest))
        if got == labels:
            return float(value)
    return None


def _verifier_reasons() -> set[str]:
    """Every literal reason the verifiers pass to ``Verification.reject`` (found in their source)."""
    reasons: set[str] = set()

    def strings(node: ast.expr) -> None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            reasons.add(node.value)
        elif isinstance(node, ast.IfExp):
            strings(node.body)
            strings(node.orelse)

    for path in (ROOT / "receiver" / "providers").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                func = node.func
                if isinstance(func, ast.Attribute) and func.attr == "reject":
                    for arg in node.args:
                        strings(arg)
                for kw in node.keywords:  # reasons handed to a shared helper (missing_secret=...)
                    if kw.arg == "missing_secret":
                        strings(kw.value)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                for kwarg, default in zip(node.args.kwonlyargs, node.args.kw_defaults, strict=True):
                    if kwarg.arg == "missing_secret" and default is not None:
                        strings(default)
    return reasons


def test_signature_reasons_are_exactly_the_verifiers_reasons() -> None:
    found = _verifier_reasons()
    assert len(found) > 20  # the scan works
    assert found | {"verification_exception"} == SIGNATURE_REASONS
    assert signature_reason("invalid_signature") == "invalid_signature"
    assert signature_reason("something new") == "other"


async def test_signature_failures_are_counted_by_provider_and_reason(client: Any) -> None:
    body, headers = mock_delivery({"id": "evt_sig", "status": "paid"})
    bad = {**headers, "X-Mock-Signature": "0" * 64}
    for _ in range(2):
        assert (await client.post("/api/v1/webhooks/mock", data=body, headers=bad)).status == 401
    missing = {"Content-Type": "application/json"}
    assert (await client.post("/api/v1/webhooks/mock", data=body, headers=missing)).status == 401
    text = await (await client.admin.get("/metrics")).text()
    failures = {
        labels: value
        for line in text.splitlines()
        if line.startswith("tenrusl_webhook_signature_failures_total{")
        for labels, value in [line.rsplit(" ", 1)]
    }
    assert sum(float(v) for v in failures.values()) == 3
    assert (
        _sample(text, "tenrusl_webhook_signature_failures_total", provider="mock", reason="invalid_signature")
        == 2
    )
    assert all('provider="mock"' in labels for labels in failures)
    assert _sample(text, "tenrusl_webhooks_total", provider="mock", outcome="invalid_signature") == 3


async def test_labels_stay_bounded_for_unknown_paths_and_providers(client: Any) -> None:
    paths = ["/nowhere/abc123", "/api/v1/payments/pay_123", "/api/v1/webhooks/no-such-provider", "/.env"]
    for path in paths:
        await client.get(path)
        await client.post(path, data=b"{}", headers={"Content-Type": "application/json"})
    for method in ("BREW", "PROPFIND", "X-1"):  # any token is a method to aiohttp
        await client.request(method, "/up")
    text = await (await client.admin.get("/metrics")).text()
    assert set(re.findall(r'method="([^"]*)"', text)) <= {"GET", "POST", "other"}
    assert 'method="other"' in text
    routes = set(re.findall(r'route="([^"]*)"', text))
    assert "unmatched" in routes  # 404s and 405s of no route
    assert "/api/v1/payments/{id}" in routes and "/api/v1/webhooks/{provider}" in routes
    for route in routes:
        assert not any(raw in route for raw in ("abc123", "pay_123", "no-such-provider", ".env"))
    providers = set(re.findall(r'provider="([^"]*)"', text))
    assert "no-such-provider" not in providers  # an unknown provider is a 404 with no provider label


async def test_database_errors_are_counted_by_kind(make_client: Any, make_settings: Any, db_url: str) -> None:
    proxy = TcpProxy(db_url)
    await proxy.start()
    client = await make_client(
        make_settings(TENRUSL_DATABASE_URL=proxy.url, TENRUSL_DB_STATEMENT_TIMEOUT_MS="300")
    )
    text = await (await client.admin.get("/metrics")).text()
    for kind in ("unavailable", "timeout", "other"):
        assert _sample(text, "tenrusl_db_errors_total", kind=kind) == 0  # exported before any error

    # A statement that waits on a lock past statement_timeout: `timeout`.
    body, headers = mock_delivery({"id": "evt_slow", "status": "pending"})
    async with await psycopg.AsyncConnection.connect(db_url) as locker, locker.transaction():
        await locker.execute("LOCK TABLE webhook_events IN ACCESS EXCLUSIVE MODE")
        assert (await client.post("/api/v1/webhooks/mock", data=body, headers=headers)).status == 503
    # The database cut off: `unavailable`.
    await proxy.stop()
    assert (await client.post("/api/v1/webhooks/mock", data=body, headers=headers)).status == 503
    metrics = client.app[METRICS]
    assert metrics.registry.get_sample_value("tenrusl_db_errors_total", {"kind": "timeout"}) == 1
    assert metrics.registry.get_sample_value("tenrusl_db_errors_total", {"kind": "unavailable"}) >= 1
    assert metrics.registry.get_sample_value("tenrusl_db_errors_total", {"kind": "other"}) == 0


async def _snapshot_backends(db: Connection) -> int:
    row = await (
        await db.execute(
            "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND state = 'active' AND query LIKE %s",
            (f"%{SNAPSHOT_MARKER}%",),
        )
    ).fetchone()
    assert row is not None
    return int(row["n"])


async def test_fifty_concurrent_scrapes_run_one_snapshot_query(
    client: Any, db: Connection, db_url: str
) -> None:
    """The snapshot query is held on a table lock, so every scrape arrives while it is in flight.
    PostgreSQL's own view (pg_stat_activity) then shows one snapshot statement, not fifty (or
    one per pooled connection), and the Store's query hook counts one execution in all."""
    registry = client.app[METRICS].registry
    count = {"query": "metrics_snapshot"}
    assert registry.get_sample_value("tenrusl_db_query_duration_seconds_count", count) is None
    async with await psycopg.AsyncConnection.connect(db_url) as locker, locker.transaction():
        await locker.execute("LOCK TABLE retry_runs IN ACCESS EXCLUSIVE MODE")
        scrapes = [asyncio.create_task(client.admin.get("/metrics")) for _ in range(50)]
        for _ in range(400):
            if await _snapshot_backends(db):
                break
            await asyncio.sleep(0.025)
        responses = await asyncio.gather(*scrapes)  # each gives up waiting after 2 s
        assert [r.status for r in responses] == [200] * 50
        assert await _snapshot_backends(db) == 1  # still blocked, still alone
    for _ in range(400):  # the lock is gone: the one query finishes
        if registry.get_sample_value("tenrusl_db_query_duration_seconds_count", count):
            break
        await asyncio.sleep(0.025)
    assert registry.get_sample_value("tenrusl_db_query_duration_seconds_count", count) == 1
    assert registry.get_sample_value("tenrusl_retry_backlog") == 0  # and its values are served


async def test_scrapes_during_an_outage_try_the_database_once(
    make_client: Any, make_settings: Any, db_url: str
) -> None:
    proxy = TcpProxy(db_url)
    await proxy.start()
    client = await make_client(make_settings(TENRUSL_DATABASE_URL=proxy.url))
    await proxy.stop()
    responses = await asyncio.gather(*(client.admin.get("/metrics") for _ in range(50)))
    assert {r.status for r in responses} == {200}
    text = await responses[-1].text()
    assert _sample(text, "tenrusl_db_up") == 0
    registry = client.app[METRICS].registry
    assert registry.get_sample_value("tenrusl_db_errors_total", {"kind": "unavailable"}) == 1
