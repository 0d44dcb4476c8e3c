"""PostgreSQL unreachable: 503 with Retry-After (never 500, never 2xx); /up stays 200; recovery."""

from __future__ import annotations

from tests.receiver.helpers import mock_delivery
from tests.tcp_proxy import TcpProxy


async def test_outage_then_recovery(make_client, make_settings, db_url, db):
    proxy = TcpProxy(db_url)
    await proxy.start()
    client = await make_client(make_settings(TENRUSL_DATABASE_URL=proxy.url, TENRUSL_RETRY_AFTER_SECONDS="7"))
    body, headers = mock_delivery({"id": "evt_outage", "status": "pending"})
    assert (await client.get("/ready")).status == 200

    await proxy.stop()
    resp = await client.post("/api/v1/webhooks/mock", data=body, headers=headers)
    assert resp.status == 503 and resp.headers["Retry-After"] == "7"
    assert (await resp.json())["error"]["code"] == "database_unavailable"
    resp = await client.post("/api/v1/payments", json={"provider": "mock", "amount": 1})
    assert resp.status == 503 and resp.headers["Retry-After"] == "7"
    assert (await client.get("/up")).status == 200
    ready = await client.get("/ready")
    assert ready.status == 503 and (await ready.json())["error"]["code"] == "database_unavailable"
    assert (await client.admin.get("/metrics")).status == 200
    count = await (await db.execute("SELECT count(*) AS n FROM webhook_events")).fetchone()
    assert count["n"] == 0  # nothing acknowledged, nothing stored

    await proxy.start()  # the database comes back on the same address
    statuses = []
    for _ in range(10):  # stale pooled connections are discarded; the pool reconnects by itself
        resp = await client.post("/api/v1/webhooks/mock", data=body, headers=headers)
        statuses.append(resp.status)
        if resp.status == 202:
            break
    assert statuses[-1] == 202 and set(statuses) <= {202, 503}
    assert (await client.get("/ready")).status == 200
    count = await (await db.execute("SELECT count(*) AS n FROM webhook_events")).fetchone()
    assert count["n"] == 1
    await proxy.stop()


async def test_ready_is_503_on_an_unmigrated_database(make_client, make_settings, pg_server_url):
    import uuid

    import psycopg

    from tests.conftest import with_database

    name = f"t_empty_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        client = await make_client(make_settings(TENRUSL_DATABASE_URL=with_database(pg_server_url, name)))
        resp = await client.get("/ready")
        assert resp.status == 503 and (await resp.json())["error"]["code"] == "not_migrated"
        await client.close()
    finally:
        with psycopg.connect(pg_server_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
