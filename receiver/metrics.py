"""Prometheus metrics: request-path instruments plus gauges read from the database on scrape.

Each app owns its registry (no module globals), so tests can build many apps. The database
gauges (backlog, events by state, retry runs) are refreshed by the ``/metrics`` handler with a
short timeout and cached briefly, so a slow database never blocks a scrape for long.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
DB_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0)


class DatabaseSnapshot(Collector):
    """Exposes the last database snapshot taken by ``Metrics.refresh``."""

    def __init__(self) -> None:
        self.data: Mapping[str, Any] = {}

    def collect(self) -> Iterable[Metric]:
        d = self.data
        if not d:
            return
        events = GaugeMetricFamily(
            "tenrusl_webhook_events", "Stored webhook events by state.", labels=["status"]
        )
        for status, count in sorted(d.get("events_by_status", {}).items()):
            events.add_metric([status], count)
        yield events
        yield GaugeMetricFamily("tenrusl_retry_backlog", "Events due for a retry now.", value=d["backlog"])
        yield GaugeMetricFamily(
            "tenrusl_retry_backlog_oldest_seconds",
            "Age of the oldest due event's retry time (0 when nothing is due).",
            value=d["backlog_oldest_seconds"],
        )
        totals = CounterMetricFamily(
            "tenrusl_retry_events", "Events handled by retry runs, by result.", labels=["result"]
        )
        for result in ("claimed", "ok", "failed", "dead"):
            totals.add_metric([result], d["runs_totals"].get(result, 0))
        yield totals
        runs = CounterMetricFamily("tenrusl_retry_runs", "Retry runs by outcome.", labels=["outcome"])
        for outcome, count in sorted(d["runs_by_outcome"].items()):
            runs.add_metric([outcome], count)
        yield runs
        last = GaugeMetricFamily(
            "tenrusl_retry_last_run_events", "Events handled by the most recent retry run.", labels=["result"]
        )
        for result in ("claimed", "ok", "failed", "dead"):
            last.add_metric([result], d["last_run"].get(result, 0))
        yield last
        if d.get("last_run_ts") is not None:
            yield GaugeMetricFamily(
                "tenrusl_retry_last_run_timestamp_seconds",
                "When the last retry run finished.",
                value=d["last_run_ts"],
            )
        if d.get("last_success_ts") is not None:
            yield GaugeMetricFamily(
                "tenrusl_retry_last_success_timestamp_seconds",
                "When the last retry run that completed its work finished.",
                value=d["last_success_ts"],
            )


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.http_requests = Counter(
            "tenrusl_http_requests", "HTTP requests served.", ["route", "method", "status"], registry=r
        )
        self.http_duration = Histogram(
            "tenrusl_http_request_duration_seconds",
            "HTTP request latency.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.webhooks = Counter(
            "tenrusl_webhooks", "Webhook deliveries by outcome.", ["provider", "outcome"], registry=r
        )
        self.webhook_processing = Histogram(
            "tenrusl_webhook_processing_seconds",
            "Time from a verified webhook to its durable, applied event.",
            ["provider"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.db_query = Histogram(
            "tenrusl_db_query_duration_seconds",
            "Database statement latency.",
            ["query"],
            buckets=DB_BUCKETS,
            registry=r,
        )
        self.db_up = Gauge("tenrusl_db_up", "1 when the last database check succeeded.", registry=r)
        self.snapshot = DatabaseSnapshot()
        r.register(self.snapshot)
        self._snapshot_at = 0.0

    def observe_query(self, name: str, seconds: float) -> None:
        self.db_query.labels(name).observe(seconds)

    def snapshot_is_fresh(self, max_age_s: float) -> bool:
        return time.monotonic() - self._snapshot_at < max_age_s

    def set_snapshot(self, data: Mapping[str, Any]) -> None:
        self.snapshot.data = data
        self._snapshot_at = time.monotonic()

    def render(self) -> bytes:
        return generate_latest(self.registry)
