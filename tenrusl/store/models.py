"""Rows as frozen dataclasses, built from dict rows with ``from_row``."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, Self

# Each row class's field names, computed once: a retry drain builds two objects per event.
_FIELD_NAMES: dict[type, frozenset[str]] = {}


class _FromRow:
    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Self:
        names = _FIELD_NAMES.get(cls)
        if names is None:
            names = _FIELD_NAMES[cls] = frozenset(f.name for f in fields(cls))  # type: ignore[arg-type]
        return cls(**{k: v for k, v in row.items() if k in names})


@dataclass(frozen=True)
class Payment(_FromRow):
    id: str
    provider: str
    provider_ref: str
    amount: int
    currency: str
    description: str | None
    metadata: dict[str, Any] | list[Any]
    status: str
    idempotency_key: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class IdempotencyRecord(_FromRow):
    key: str
    request_hash: str
    state: str
    response_status: int | None
    response_body: Any


@dataclass(frozen=True)
class IngestResult(_FromRow):
    """What tenrusl_ingest_event (or, per delivery, tenrusl_ingest_events) reports about a delivery."""

    id: str
    duplicate: bool
    status: str
    attempts: int
    payment_status: str | None
    payment_provider_ref: str | None
    current_payment_status: str | None
    next_retry_at: datetime | None
    last_error: str | None


@dataclass(frozen=True)
class WebhookEvent(_FromRow):
    id: str
    provider: str
    event_id: str
    event_id_source: str
    event_type: str | None
    status: str
    payment_status: str | None
    payment_provider_ref: str | None
    attempts: int
    deliveries: int
    next_retry_at: datetime | None
    last_attempt_at: datetime | None
    last_delivery_at: datetime
    processed_at: datetime | None
    last_error: str | None
    payload_raw: bytes
    payload: Any
    headers: dict[str, Any]
    source_ip: str | None
    request_id: str | None
    signature_hash: str | None
    received_at: datetime
    updated_at: datetime
    payload_issues: list[str]
