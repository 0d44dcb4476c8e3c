"""Prometheus metrics: request-path instruments plus gauges read from the database on scrape.

Each app owns its registry (no module globals), so tests can build many apps. The database
gauges (backlog, events by state, retry runs) come from one snapshot query, cached for a few
seconds: however many scrapes arrive at once, at most one snapshot query is in flight
(``Metrics.refresh``), so a scrape storm never becomes a query storm. Every label is bounded:
routes are templates, providers come from the catalogue, reasons and kinds from fixed sets.

With ``tenrusl serve --workers N`` (N > 1) every worker process writes its counters, histograms
and gauges to prometheus-client's shared files (``PROMETHEUS_MULTIPROC_DIR``, made fresh by the
supervisor, receiver/supervisor.py) and ``/metrics`` on any worker reads all of them: totals for
the whole server. Each gauge states how the workers' values combine (``multiprocess_mode``); with
one process the mode is ignored and nothing changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from tenrusl.constants import FINISHED_RUN_OUTCOMES, RUN_ABANDONED
from tenrusl.db import DB_ERROR_KINDS
from tenrusl.errors import DatabaseUnavailable

log = logging.getLogger("tenrusl.metrics")

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
DB_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0)
RUN_RESULTS = ("claimed", "ok", "failed", "dead")
# Outcomes a run can end with that say something about the runner (abandoned rows carry no work).
LAST_RUN_OUTCOMES = tuple(o for o in FINISHED_RUN_OUTCOMES if o != RUN_ABANDONED)

# Every reason a provider's verifier gives for a rejection (``Verification.reject``), plus the one
# the gate adds when a verifier raised. A test keeps this set equal to the verifiers' reasons; a
# reason not listed here is exported as "other", so the label can never grow without bound.
SIGNATURE_REASONS = frozenset(
    {
        "client_id_mismatch",
        "invalid_bearer_token",
        "invalid_form_body",
        "invalid_json",
        "invalid_md5sig",
        "invalid_p_signature_base64",
        "invalid_sha2sig",
        "invalid_signature",
        "invalid_signature_base64",
        "invalid_timestamp",
        "invalid_timestamp_format",
        "invalid_token",
        "ip_not_allowed",
        "malformed_signature_header",
        "merchant_mismatch",
        "missing_config",
        "missing_expected_token",
        "missing_fields",
        "missing_headers",
        "missing_hmac",
        "missing_kid_header",
        "missing_merchant_header",
        "missing_or_invalid_timestamp",
        "missing_or_invalid_ts",
        "missing_p_signature",
        "missing_private_key",
        "missing_public_key",
        "missing_secret",
        "missing_secret_key",
        "missing_secret_word",
        "missing_server_key",
        "missing_signature",
        "missing_signature_header",
        "missing_signature_headers",
        "missing_token_header",
        "oauth_failed",
        "pay_to_email_mismatch",
        "public_key_unavailable",
        "timestamp_out_of_tolerance",
        "verify_exception",
        "verify_http_failed",
        "verification_exception",
    }
)


def signature_reason(reason: str) -> str:
    """The label for a rejection reason: itself when known, else ``other``."""
    return reason if reason in SIGNATURE_REASONS else "other"


class DatabaseSnapshot(Collector):
    """Exposes the last database snapshot taken by ``Metrics.refresh``."""

    def __init__(self) -> None:
        self.data: Mapping[str, Any] = {}
        self.taken_at: float | None = None  # time.time() of the last successful snapshot

    def collect(self) -> Iterable[Metric]:
        d = self.data
        if not d or self.taken_at is None:
            return
        yield GaugeMetricFamily(
            "tenrusl_metrics_snapshot_age_seconds",
            "Age of the database snapshot behind the tenrusl_webhook_events and tenrusl_retry_* values.",
            value=max(0.0, time.time() - self.taken_at),
        )
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
            "tenrusl_retry_events",
            "Events handled by retry runs, by result (claimed: each is one delivery attempt).",
            labels=["result"],
        )
        for result in RUN_RESULTS:
            totals.add_metric([result], d["runs_totals"].get(result, 0))
        yield totals
        runs = CounterMetricFamily(
            "tenrusl_retry_runs", "Finished retry runs by outcome (abandoned: killed).", labels=["outcome"]
        )
        for outcome in FINISHED_RUN_OUTCOMES:
            runs.add_metric([outcome], d["runs_by_outcome"].get(outcome, 0))
        yield runs
        yield GaugeMetricFamily(
            "tenrusl_retry_runs_running",
            "Retry runs recorded as running (a killed run stays here until the next run takes the lock).",
            value=d.get("runs_running", 0),
        )
        last = GaugeMetricFamily(
            "tenrusl_retry_last_run_events", "Events handled by the most recent retry run.", labels=["result"]
        )
        for result in RUN_RESULTS:
            last.add_metric([result], (d.get("last_run") or {}).get(result, 0))
        yield last
        last_outcome = GaugeMetricFamily(
            "tenrusl_retry_last_run_outcome",
            "1 for the outcome of the most recent finished retry run (paused: the policy says paused).",
            labels=["outcome"],
        )
        for name in LAST_RUN_OUTCOMES:
            last_outcome.add_metric([name], 1 if d.get("last_run_outcome") == name else 0)
        yield last_outcome
        if d.get("last_run_ts") is not None:
            yield GaugeMetricFamily(
                "tenrusl_retry_last_run_timestamp_seconds",
                "When the last retry run finished.",
                value=d["last_run_ts"],
            )
        if d.get("last_success_ts") is not None:
            yield GaugeMetricFamily(
                "tenrusl_retry_last_success_timestamp_seconds",
                "When the last retry run that completed its work (or found the policy paused) finished.",
                value=d["last_success_ts"],
            )


SnapshotLoader = Callable[[], Awaitable[Mapping[str, Any]]]


class Metrics:
    """The receiver's instruments. ``shared``: this process is one of several workers (the
    supervisor set ``PROMETHEUS_MULTIPROC_DIR``), so rendering reads every worker's files."""

    def __init__(self, *, shared: bool = False) -> None:
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
        self.signature_failures = Counter(
            "tenrusl_webhook_signature_failures",
            "Webhook deliveries rejected by signature verification, by provider and reason.",
            ["provider", "reason"],
            registry=r,
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
        self.db_errors = Counter(
            "tenrusl_db_errors",
            "Database errors by kind (unavailable: no connection; timeout: statement cancelled; other).",
            ["kind"],
            registry=r,
        )
        for kind in DB_ERROR_KINDS:  # exported at 0, so rate() sees the first error
            self.db_errors.labels(kind)
        # Across workers: the value of the latest check made by any live worker.
        self.db_up = Gauge(
            "tenrusl_db_up",
            "1 when the last database check succeeded.",
            registry=r,
            multiprocess_mode="livemostrecent",
        )
        self.snapshot = DatabaseSnapshot()
        r.register(self.snapshot)
        # Labels are bounded (route templates, methods, statuses, query names), so are these.
        self._http_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._query_children: dict[str, Any] = {}
        self._webhook_children: dict[tuple[str, str], Any] = {}
        self._processing_children: dict[str, Any] = {}
        # What /metrics renders: this registry, or (workers) every worker's files plus the
        # snapshot, which is the database's and the same whichever worker answers.
        self.exposed = r
        if shared:
            self.exposed = CollectorRegistry(auto_describe=True)
            MultiProcessCollector(self.exposed)
            self.exposed.register(self.snapshot)
        self._attempted_at = -float("inf")  # monotonic time of the last refresh attempt
        self._inflight: asyncio.Task[None] | None = None

    def count_http(self, route: str, method: str, status: int, seconds: float) -> None:
        """One served request. The labelled children are made once per label set and kept:
        ``labels()`` checks and hashes its arguments under a lock on every call."""
        key = (route, method, status)
        child = self._http_children.get(key)
        if child is None:
            child = self._http_children[key] = (
                self.http_requests.labels(route, method, str(status)),
                self.http_duration.labels(route),
            )
        child[0].inc()
        child[1].observe(seconds)

    def count_webhook(self, provider: str, outcome: str) -> None:
        child = self._webhook_children.get((provider, outcome))
        if child is None:
            child = self._webhook_children[(provider, outcome)] = self.webhooks.labels(provider, outcome)
        child.inc()

    def observe_processing(self, provider: str, seconds: float) -> None:
        child = self._processing_children.get(provider)
        if child is None:
            child = self._processing_children[provider] = self.webhook_processing.labels(provider)
        child.observe(seconds)

    def observe_query(self, name: str, seconds: float) -> None:
        child = self._query_children.get(name)
        if child is None:
            child = self._query_children[name] = self.db_query.labels(name)
        child.observe(seconds)

    def count_db_error(self, kind: str) -> None:
        self.db_errors.labels(kind if kind in DB_ERROR_KINDS else "other").inc()

    def count_signature_failure(self, provider: str, reason: str) -> None:
        self.signature_failures.labels(provider, signature_reason(reason)).inc()

    def set_snapshot(self, data: Mapping[str, Any]) -> None:
        self.snapshot.data = data
        self.snapshot.taken_at = time.time()

    async def refresh(self, load: SnapshotLoader, *, max_age_s: float, timeout_s: float) -> None:
        """Bring the database snapshot up to date, at most once per ``max_age_s`` whatever the
        number of scrapes: concurrent callers wait for the one load in flight, and a failing
        database is also tried only once per period. A caller stops waiting after ``timeout_s``
        and is served the last values; the load goes on for the callers after it."""
        if self._inflight is None and time.monotonic() - self._attempted_at >= max_age_s:
            self._attempted_at = time.monotonic()
            self._inflight = asyncio.create_task(self._load(load), name="tenrusl-metrics-snapshot")
        task = self._inflight
        if task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(task), timeout_s)

    async def _load(self, load: SnapshotLoader) -> None:
        try:
            self.set_snapshot(await load())
            self.db_up.set(1)
        except DatabaseUnavailable:
            self.db_up.set(0)  # the gauges keep their last values; the age gauge shows how old
        except Exception:
            self.db_up.set(0)
            log.exception("metrics snapshot failed", extra={"action": "metrics"})
        finally:
            self._inflight = None

    def render(self) -> bytes:
        return generate_latest(self.exposed)
