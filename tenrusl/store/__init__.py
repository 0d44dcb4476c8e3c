"""The one store: every SQL statement runs through a method of :class:`Store`.

It is assembled from one mixin per domain so that each file stays small; all of them share the
pool and the query mapping of :mod:`tenrusl.sql`.
"""

from __future__ import annotations

from tenrusl.store.events import EventQueries, NewEvent
from tenrusl.store.models import IdempotencyRecord, IngestResult, Payment, WebhookEvent
from tenrusl.store.payments import PaymentFilter, PaymentQueries
from tenrusl.store.retry import (
    ClaimedEvent,
    EventFilter,
    ReplayFilter,
    RetryQueries,
    Settled,
    SettleItem,
)
from tenrusl.store.schema import SchemaQueries


class Store(PaymentQueries, EventQueries, RetryQueries, SchemaQueries):
    """All named queries, as async methods over one connection pool."""


__all__ = [
    "ClaimedEvent",
    "EventFilter",
    "IdempotencyRecord",
    "IngestResult",
    "NewEvent",
    "Payment",
    "PaymentFilter",
    "ReplayFilter",
    "SettleItem",
    "Settled",
    "Store",
    "WebhookEvent",
]
