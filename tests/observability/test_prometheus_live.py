"""A real Prometheus (Debian's 2.42) scrapes a live receiver and fires the backlog and 5xx alerts.

The test starts Prometheus on a free loopback port, with its own data directory and a generated
configuration: scrape and evaluation every second, one target (the receiver), and the chart's
alert file with one change, written to the test's directory: every `for:` is shortened to 2 s
(a test cannot wait 10 minutes). The expressions are the shipped ones. Then it drives a backlog
(1,200 due events inserted into the receiver's database) and a 5xx burst (the database cut off
behind a TCP proxy, so webhooks are answered 503) and reads the firing alerts from Prometheus's
HTTP API (`/api/v1/alerts`). Bounded: each wait gives up after 90 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from tenrusl.db import Connection
from tenrusl.embedded import free_port
from tests.observability.promql import ALERTS
from tests.receiver.helpers import mock_delivery
from tests.retry_job.conftest import seed_many
from tests.tcp_proxy import TcpProxy

PROMETHEUS = shutil.which("prometheus")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        PROMETHEUS is None,
        reason="prometheus not installed (Debian package `prometheus`; .ci/run installs it)",
    ),
]
TEST_FOR = "2s"
WAIT_S = 90.0


def fast_rules(text: str) -> str:
    """The alert file with every `for:` set to TEST_FOR and each group evaluated every second."""
    doc = yaml.safe_load(text)
    for group in doc["groups"]:
        group["interval"] = "1s"
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = TEST_FOR
    return yaml.safe_dump(doc, sort_keys=False)


def test_fast_rules_change_only_for_and_intervals() -> None:
    original = yaml.safe_load(ALERTS.read_text())
    fast = yaml.safe_load(fast_rules(ALERTS.read_text()))
    for group, fast_group in zip(original["groups"], fast["groups"], strict=True):
        assert fast_group["interval"] == "1s"
        for rule, fast_rule in zip(group["rules"], fast_group["rules"], strict=True):
            assert {k: v for k, v in fast_rule.items() if k != "for"} == {
                k: v for k, v in rule.items() if k != "for"
            }
            assert ("for" in rule) == ("for" in fast_rule)


class Prometheus:
    def __init__(self, workdir: Path, target: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        (workdir / "rules.yaml").write_text(fast_rules(ALERTS.read_text()))
        config = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(workdir / "rules.yaml")],
            "scrape_configs": [
                {
                    "job_name": "tenrusl",
                    "static_configs": [{"targets": [target], "labels": {"namespace": "e2e"}}],
                }
            ],
        }
        (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.log_path = workdir / "prometheus.log"
        self.log = self.log_path.open("w")
        assert PROMETHEUS is not None
        self.proc = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={workdir / 'prometheus.yml'}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=30)
        self.log.close()


async def _until(check: Any, what: str, prometheus: Prometheus) -> Any:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        assert prometheus.proc.poll() is None, f"prometheus exited: {prometheus.log_path.read_text()[-2000:]}"
        with contextlib.suppress(aiohttp.ClientError):
            found = await check()
            if found:
                return found
        await asyncio.sleep(0.5)
    log = "\n".join(prometheus.log_path.read_text().splitlines()[-20:])
    raise AssertionError(f"gave up after {WAIT_S:.0f} s waiting for {what}; prometheus.log ends:\n{log}")


async def test_backlog_and_5xx_alerts_fire_in_a_real_prometheus(
    make_client: Any, make_settings: Any, db_url: str, db: Connection, tmp_path: Path
) -> None:
    proxy = TcpProxy(db_url)
    await proxy.start()
    client = await make_client(make_settings(TENRUSL_DATABASE_URL=proxy.url))
    prometheus = Prometheus(tmp_path, f"127.0.0.1:{client.admin.server.port}")  # the admin listener
    seen: dict[str, dict[str, Any]] = {}
    burst: asyncio.Task[None] | None = None
    try:
        async with aiohttp.ClientSession() as http:

            async def get(path: str) -> Any:
                async with http.get(prometheus.url + path) as resp:
                    return await resp.json() if resp.status == 200 else None

            async def target_up() -> bool:
                body = await get("/api/v1/targets")
                return bool(body) and any(t["health"] == "up" for t in body["data"]["activeTargets"])

            async def firing(name: str) -> dict[str, Any] | None:
                body = await get("/api/v1/alerts")
                for alert in (body or {}).get("data", {}).get("alerts", []):
                    if alert["state"] == "firing":
                        seen.setdefault(alert["labels"]["alertname"], alert)
                return seen.get(name)

            await _until(target_up, "the receiver target to be up", prometheus)
            # Traffic that succeeds, so the 5xx ratio has a denominator before the outage.
            body, headers = mock_delivery({"id": "evt_before", "status": "pending"})
            assert (await client.post("/api/v1/webhooks/mock", data=body, headers=headers)).status == 202

            # A backlog: 1,200 events due now (the alert's threshold is 1,000).
            await seed_many(db, 1200, with_payments=False)
            backlog = await _until(lambda: firing("TenruslRetryBacklogHigh"), "the backlog alert", prometheus)
            assert float(backlog["value"]) >= 1200
            assert "TenruslWebhook5xxRatioHigh" not in seen

            # A 5xx burst: the database goes away; webhooks are answered 503 until it is back.
            await proxy.stop()

            async def deliveries() -> None:
                n = 0
                while True:
                    n += 1
                    body, headers = mock_delivery({"id": f"evt_outage_{n}", "status": "pending"})
                    batch = [
                        client.post("/api/v1/webhooks/mock", data=body, headers=headers) for _ in range(5)
                    ]
                    for resp in await asyncio.gather(*batch):
                        assert resp.status == 503
                    await asyncio.sleep(0.2)

            burst = asyncio.create_task(deliveries())
            errors = await _until(lambda: firing("TenruslWebhook5xxRatioHigh"), "the 5xx alert", prometheus)
            assert not burst.done(), burst
    finally:
        if burst is not None:
            burst.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await burst
        prometheus.stop()
        await proxy.stop()

    for alert, severity in ((backlog, "warning"), (errors, "critical")):
        assert alert["labels"]["severity"] == severity
        assert alert["labels"]["job"] == "tenrusl" and alert["labels"]["namespace"] == "e2e"
        assert alert["annotations"]["runbook_url"].endswith("#" + alert["labels"]["alertname"].lower())
    assert float(errors["value"]) > 0.01
    assert "answered 5xx" in errors["annotations"]["description"]
