"""JSON shapes of stored rows, as the API returns them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tenrusl.store import Payment


def iso(ts: datetime | None) -> str | None:
    """ISO-8601 UTC with microseconds and a Z, as the original (2025-12-01T09:00:00.000000Z)."""
    return ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if ts else None


def payment_resource(p: Payment) -> dict[str, Any]:
    return {
        "id": p.id,
        "provider": p.provider,
        "provider_ref": p.provider_ref,
        "amount": p.amount,
        "currency": p.currency,
        "status": p.status,
        "description": p.description,
        "meta": p.metadata if p.metadata else {},
        "created_at": iso(p.created_at),
        "updated_at": iso(p.updated_at),
    }


def event_summary(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "provider": row["provider"],
        "event_id": row["event_id"],
        "event_type": row["event_type"],
        "status": row["status"],
        "payment_status": row["payment_status"],
        "attempts": row["attempts"],
        "deliveries": row["deliveries"],
        "received_at": iso(row["received_at"]),
        "processed_at": iso(row["processed_at"]),
        "next_retry_at": iso(row["next_retry_at"]),
        "last_error": row["last_error"],
        "payload_issues": row["payload_issues"],
    }
