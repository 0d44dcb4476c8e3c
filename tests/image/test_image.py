"""The real image, built with podman: non-root, read-only root, and each role's SIGTERM behaviour."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json

import psycopg
import pytest

from tenrusl.db import Connection
from tenrusl.embedded import free_port
from tests.conftest import MOCK_SECRET, fetch_row
from tests.image.conftest import Containers, app_env, eventually, http_status, podman
from tests.retry_job.conftest import seed_many
from tests.tcp_proxy import TcpProxy

pytestmark = pytest.mark.slow
# The chart's receiver.terminationGracePeriodSeconds and retry.terminationGracePeriodSeconds.
GRACE_S = 30


async def test_the_image_runs_as_a_numeric_non_root_user_with_a_read_only_root(
    image: str, containers: Containers
) -> None:
    config = json.loads((await podman("image", "inspect", "--format", "{{json .Config}}", image)).stdout)
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["tenrusl"] and config["Cmd"] == ["serve"]
    assert {"org.opencontainers.image.title", "org.opencontainers.image.version",
            "org.opencontainers.image.source"} <= set(config["Labels"])  # fmt: skip
    assert any(e.startswith("PATH=/opt/tenrusl/bin:") for e in config["Env"])
    probe = (
        "import os, shutil\n"
        "print('uid', os.getuid(), os.getgid())\n"
        "open('/tmp/ok', 'w').write('x')\n"
        "for path in ('/opt/tenrusl/x', '/etc/x', '/x'):\n"
        "    try:\n        open(path, 'w')\n        print('writable', path)\n"
        "    except OSError:\n        pass\n"
        "print('compilers', [c for c in ('gcc', 'cc', 'clang', 'make') if shutil.which(c)])\n"
    )
    code, out = await containers.run("--version", env={})
    assert code == 0 and out.startswith("tenrusl ")
    container = await containers.start("-c", probe, opts=("--entrypoint", "python3"))
    assert await container.wait(60) == 0
    out = await container.logs()
    assert "uid 10001 10001" in out
    assert "writable" not in out, out
    assert "compilers []" in out


# Run in an image: which of these modules its Python finds, and which installer files are left
# anywhere under /usr and /opt (the base's own Python included, not only the virtualenv).
PACKAGING_PROBE = """
import importlib.util, os, re
print("modules", sorted(m for m in ("pip", "setuptools", "kubernetes", "kopf") if importlib.util.find_spec(m)))
installer = re.compile(r"^(pip|pip3(\\.\\d+)?|setuptools|_distutils_hack|distutils-precedence\\.pth)$|^(pip|setuptools)-[0-9].*")
left = [os.path.join(d, n) for top in ("/usr", "/opt") for d, dirs, files in os.walk(top) for n in dirs + files
        if installer.match(n)]
print("installers", sorted(left))
"""


async def packaging(containers: Containers) -> tuple[list[str], list[str]]:
    container = await containers.start("-c", PACKAGING_PROBE, opts=("--entrypoint", "python3"))
    assert await container.wait(120) == 0, await container.logs()
    lines = dict(line.split(" ", 1) for line in (await container.logs()).splitlines() if " " in line)
    return json.loads(lines["modules"].replace("'", '"')), json.loads(lines["installers"].replace("'", '"'))


async def test_the_receiver_image_has_no_installer_and_no_kubernetes_client(containers: Containers) -> None:
    modules, installers = await packaging(containers)
    assert modules == [] and installers == [], (modules, installers)


async def test_the_operator_image_has_the_kubernetes_client_and_no_installer(
    operator_containers: Containers,
) -> None:
    modules, installers = await packaging(operator_containers)
    assert modules == ["kopf", "kubernetes"] and installers == [], (modules, installers)
    code, out = await operator_containers.run("--version", env={})
    assert code == 0 and out.startswith("tenrusl ")


async def test_the_receiver_image_says_the_operator_is_not_in_it(containers: Containers) -> None:
    code, out = await containers.run("operator", "-n", "payments", env={})
    assert code == 2 and "tenrusl operator needs the Kubernetes client" in out and "Traceback" not in out


def _signed_webhook(port: int, body: bytes) -> bytes:
    signature = hmac.new(MOCK_SECRET.encode(), body, hashlib.sha256).hexdigest()
    head = (
        f"POST /api/v1/webhooks/mock HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nX-Mock-Signature: {signature}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


async def test_serve_answers_probes_and_on_sigterm_finishes_the_request_in_flight_then_exits_0(
    containers: Containers, proxied_db_url: str, db: Connection, db_url: str
) -> None:
    port = free_port()
    env = app_env(proxied_db_url, port, TENRUSL_DB_STATEMENT_TIMEOUT_MS="60000")
    receiver = await containers.start("serve", "--shutdown-timeout=20", env=env)
    base = f"http://127.0.0.1:{port}"
    await eventually(lambda: _is(http_status(f"{base}/ready"), 200), 60, "/ready 200")
    assert await http_status(f"{base}/up") == 200

    # A request in flight: the table is locked, so the handler waits inside its INSERT.
    blocker = await psycopg.AsyncConnection.connect(db_url)
    await blocker.execute("BEGIN")
    await blocker.execute("LOCK TABLE webhook_events IN EXCLUSIVE MODE")
    body = json.dumps({"id": "evt_in_flight", "type": "payment.succeeded", "status": "succeeded",
                       "provider_ref": "order-in-flight"}).encode()  # fmt: skip
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(_signed_webhook(port, body))
    await writer.drain()

    async def insert_waiting() -> bool:
        row = await fetch_row(
            db,
            "SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()",
        )
        return row["n"] >= 1

    await eventually(insert_waiting, 30, "the webhook's INSERT to wait for the lock")
    await receiver.signal("TERM")
    # It stops accepting: new connections are refused while the request in flight is still open.
    await eventually(lambda: _is(http_status(f"{base}/up"), None), 10, "the listener to close")
    assert (await receiver.state())["Running"], "it waits for the request in flight"
    await blocker.execute("COMMIT")
    await blocker.close()
    answer = await asyncio.wait_for(reader.read(), 30)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 202"), answer[:300]
    assert b'"persisted": true' in answer
    assert await receiver.wait(GRACE_S) == 0
    row = await fetch_row(db, "SELECT status FROM webhook_events WHERE event_id = 'evt_in_flight'")
    assert row is not None, "the request finished during shutdown was stored"
    assert "Traceback" not in await receiver.logs()


async def _is(status: asyncio.Future | object, expected: int | None) -> bool:
    return await status == expected  # type: ignore[misc]


async def test_retry_once_exits_0_and_records_a_run(
    containers: Containers, proxied_db_url: str, db: Connection
) -> None:
    await seed_many(db, 3)
    code, out = await containers.run("retry", "once", env=app_env(proxied_db_url))
    assert code == 0, out
    assert "CLAIMED=3 OK=3 FAIL=0 DEAD=0" in out
    run = await (await db.execute("SELECT outcome, claimed, trigger FROM retry_runs")).fetchall()
    assert run == [{"outcome": "completed", "claimed": 3, "trigger": "cron"}]


async def test_retry_run_stops_claiming_on_sigterm_and_exits_0(
    containers: Containers, proxied_db_url: str, db: Connection
) -> None:
    events = 40
    await seed_many(db, events)
    # 0.3 s per event and batches of 5 (the per-run limit stays 2000, so only SIGTERM ends the run
    # early): SIGTERM lands mid-run, long before all 40 are done.
    env = app_env(proxied_db_url, TENRUSL_RETRY_DEBUG_EVENT_DELAY_MS="300", TENRUSL_SCHEDULER_BATCH_SIZE="5")
    runner = await containers.start("retry", "once", env=env)

    async def some_processed() -> bool:
        row = await fetch_row(db, "SELECT count(*) AS n FROM webhook_events WHERE status = 'processed'")
        return row["n"] >= 2

    await eventually(some_processed, 60, "the runner to process its first events")
    await runner.signal("TERM")
    assert await runner.wait(GRACE_S) == 0
    out = await runner.logs()
    run = await fetch_row(db, "SELECT outcome, claimed, ok FROM retry_runs")
    assert run["outcome"] == "completed" and run["ok"] == run["claimed"], (run, out)
    assert run["claimed"] < events, "it stopped claiming after SIGTERM"
    left = await fetch_row(db, "SELECT count(*) AS n FROM webhook_events WHERE status = 'failed'")
    assert left["n"] == events - run["claimed"], "the unclaimed events stay due for the next run"


async def test_first_install_ordering_two_migrations_and_a_receiver_started_before_the_database(
    containers: Containers, empty_db_url: str
) -> None:
    """What a first install with the bundled PostgreSQL does: every pod's migrate init container
    and the receivers start while the database is still coming up."""
    proxy = TcpProxy(empty_db_url)
    proxy.port = free_port()  # not listening yet: the database "is still starting"
    port = free_port()
    env = app_env(proxy.url, port)
    migrations = [await containers.start("migrate", "--wait", "120", env=env) for _ in range(2)]
    receiver = await containers.start("serve", env=env)
    base = f"http://127.0.0.1:{port}"
    await eventually(lambda: _is(http_status(f"{base}/up"), 200), 60, "the receiver to listen")
    assert await http_status(f"{base}/ready") == 503, "no database yet: not ready"
    for migrate in migrations:
        assert (await migrate.state())["Running"], "migrate waits for the database"

    await proxy.start()
    try:
        outputs = []
        for migrate in migrations:
            assert await migrate.wait(120) == 0
            outputs.append(await migrate.logs())
        applied = [o for o in outputs if "migrations applied: 0001_initial" in o]
        idle = [o for o in outputs if "migrations applied: none (up to date)" in o]
        assert len(applied) == 1 and len(idle) == 1, outputs  # the advisory lock: one applies, one waits
        await eventually(lambda: _is(http_status(f"{base}/ready"), 200), 60, "/ready 200 after migrating")
        await receiver.signal("TERM")
        assert await receiver.wait(GRACE_S) == 0
    finally:
        await proxy.stop()


async def test_migrate_gives_up_after_its_wait_and_sigterm_stops_it(containers: Containers) -> None:
    nowhere = f"postgresql://postgres@127.0.0.1:{free_port()}/tenrusl"
    code, out = await containers.run("migrate", "--wait", "1", env=app_env(nowhere))
    assert code == 1 and "cannot connect to the database" in out
    waiting = await containers.start("migrate", "--wait", "300", env=app_env(nowhere))
    await asyncio.sleep(1.5)
    await waiting.signal("TERM")
    assert await waiting.wait(10) == 143, "PID 1 ends on SIGTERM instead of waiting out the grace period"
