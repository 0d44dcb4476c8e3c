"""The operator's ``/metrics``: the effective retry policy of every ``WebhookRetryPolicy`` it governs.

Only the operator can say that retries are paused: a paused policy suspends the CronJob, so no run
records anything in the database for the receiver to export. Each reconcile hands the policy it
applied to :class:`PolicyCollector`; a scrape computes the cap at that moment (it climbs during a
gradual resume), so the value is never older than the scrape. Labels are bounded by the policies
that exist: ``policy_namespace`` and ``policy`` (a ServiceMonitor sets ``namespace`` to the
operator pod's own, so the policy's namespace has its own label).
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Iterable
from datetime import datetime

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from tenrusl.policy import RetryPolicy, effective_cap

log = logging.getLogger("tenrusl.operator.metrics")

LABELS = ("policy_namespace", "policy")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class PolicyCollector(Collector):
    """The last applied policy per ``(namespace, name)``, exported as gauges at scrape time."""

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self.clock = clock
        self.policies: dict[tuple[str, str], RetryPolicy] = {}

    def applied(self, namespace: str, name: str, policy: RetryPolicy) -> None:
        self.policies[namespace, name] = policy

    def forget(self, namespace: str, name: str) -> None:
        self.policies.pop((namespace, name), None)

    def collect(self) -> Iterable[Metric]:
        now = self.clock()
        paused = GaugeMetricFamily(
            "tenrusl_retry_policy_paused", "1 while the WebhookRetryPolicy is paused.", labels=LABELS
        )
        since = GaugeMetricFamily(
            "tenrusl_retry_policy_paused_since_timestamp_seconds",
            "When the current pause began (Unix time); 0 while not paused.",
            labels=LABELS,
        )
        cap = GaugeMetricFamily(
            "tenrusl_retry_policy_cap",
            "Events the next retry run may handle: 0 while paused, below the limit during a gradual resume.",
            labels=LABELS,
        )
        limit = GaugeMetricFamily(
            "tenrusl_retry_policy_limit",
            "The policy's limit: events one retry run handles at most.",
            labels=LABELS,
        )
        for (namespace, name), policy in sorted(self.policies.items()):
            labels = [namespace, name]
            paused.add_metric(labels, 1.0 if policy.paused else 0.0)
            began = policy.paused_at.timestamp() if policy.paused and policy.paused_at else 0.0
            since.add_metric(labels, began)
            cap.add_metric(labels, float(effective_cap(policy, now)))
            limit.add_metric(labels, float(policy.limit))
        yield from (paused, since, cap, limit)


class MetricsServer:
    """``GET /metrics`` on its own port, beside kopf's liveness endpoint (which serves one path)."""

    def __init__(self, collector: PolicyCollector, host: str, port: int) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(collector)
        self.host, self.port = host, port
        self._runner: web.AppRunner | None = None

    async def start(self) -> int:
        """Listen; return the bound port (``port`` 0 picks a free one)."""
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        log.info(
            "serving metrics", extra={"action": "start", "url": f"http://{self.host}:{self.port}/metrics"}
        )
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _metrics(self, _: web.Request) -> web.Response:
        return web.Response(body=generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE})
