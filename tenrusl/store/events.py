"""Webhook events: ingest (store + apply in one round trip), read; the metrics snapshot."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from psycopg.types.json import Jsonb

from tenrusl.store.base import StoreBase, check_text_params
from tenrusl.store.models import IngestResult, WebhookEvent


@dataclass(frozen=True)
class NewEvent:
    """A verified delivery, ready to store."""

    id: str
    provider: str
    event_id: str
    event_id_source: str
    event_type: str | None
    payment_status: str
    payment_ref: str | None
    payload_raw: bytes
    payload: Any
    headers: dict[str, str]
    source_ip: str | None
    request_id: str | None
    signature_hash: str | None
    payload_issues: tuple[str, ...] = ()  # repairs made so the payload could be stored


class EventQueries(StoreBase):
    async def ingest_event(self, event: NewEvent, retry_delay_ms: int, max_attempts: int) -> IngestResult:
        params = {
            **event.__dict__,
            "payload": Jsonb(event.payload),
            "headers": Jsonb(event.headers),
            "payload_issues": list(event.payload_issues),
            "retry_delay_ms": retry_delay_ms,
            "max_attempts": max_attempts,
        }
        row = await self.fetch_one("ingest_event", params)
        assert row is not None
        return IngestResult.from_row(row)

    def check_event(self, event: NewEvent) -> None:
        """Refuse (UnstorableText) a delivery PostgreSQL would refuse, before it joins a batch,
        so that one bad delivery never fails the others of its batch."""
        check_text_params("ingest_event", event.__dict__)

    async def ingest_events(
        self, events: Sequence[NewEvent], retry_delay_ms: int, max_attempts: int
    ) -> list[IngestResult]:
        """Store and apply several deliveries in one statement and one commit; results in order.

        The caller checked each event (``check_event``) and put at most one delivery per
        (provider, event id) in the batch (tenrusl/store/batch.py).
        """
        params = {
            "id": [e.id for e in events],
            "provider": [e.provider for e in events],
            "event_id": [e.event_id for e in events],
            "event_id_source": [e.event_id_source for e in events],
            "event_type": [e.event_type for e in events],
            "payment_status": [e.payment_status for e in events],
            "payment_ref": [e.payment_ref for e in events],
            "payload_raw": [e.payload_raw for e in events],
            "payload": [Jsonb(e.payload) for e in events],
            "headers": [Jsonb(e.headers) for e in events],
            "source_ip": [e.source_ip for e in events],
            "request_id": [e.request_id for e in events],
            "signature_hash": [e.signature_hash for e in events],
            "payload_issues": [",".join(e.payload_issues) for e in events],
            "retry_delay_ms": retry_delay_ms,
            "max_attempts": max_attempts,
        }
        rows = await self.fetch_all("ingest_events", params, checked=True)
        results: list[IngestResult | None] = [None] * len(events)
        for row in rows:
            results[row.pop("n") - 1] = IngestResult.from_row(row)
        missing = [i for i, r in enumerate(results) if r is None]
        assert not missing, f"tenrusl_ingest_events answered no row for deliveries {missing}"
        return results  # type: ignore[return-value]

    async def get_event(self, event_id: str) -> WebhookEvent | None:
        row = await self.fetch_one("get_event", {"id": event_id})
        return WebhookEvent.from_row(row) if row else None

    async def metrics_snapshot(self) -> dict[str, Any]:
        row = await self.fetch_one("metrics_snapshot")
        assert row is not None
        return {
            "events_by_status": row["events_by_status"] or {},
            "backlog": int(row["backlog"]),
            "backlog_oldest_seconds": float(row["backlog_oldest_seconds"] or 0),
            "runs_totals": row["runs_totals"] or {},
            "runs_by_outcome": row["runs_by_outcome"] or {},
            "runs_running": int(row["runs_running"]),
            "last_run": row["last_run"] or {},
            "last_run_outcome": row["last_run_outcome"],
            "last_run_ts": float(row["last_run_ts"]) if row["last_run_ts"] is not None else None,
            "last_success_ts": float(row["last_success_ts"]) if row["last_success_ts"] is not None else None,
        }
