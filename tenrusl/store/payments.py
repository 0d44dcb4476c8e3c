"""Payments and Idempotency-Key records."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.types.json import Json, Jsonb

from tenrusl.db import Connection
from tenrusl.store.base import StoreBase
from tenrusl.store.models import IdempotencyRecord, Payment


@dataclass(frozen=True)
class PaymentFilter:
    provider: str | None = None
    status: str | None = None
    q: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None


class PaymentQueries(StoreBase):
    async def insert_payment(
        self,
        *,
        id: str,
        provider: str,
        provider_ref: str,
        amount: int,
        currency: str,
        description: str | None,
        metadata: Any,
        idempotency_key: str | None,
        request_hash: str | None,
        conn: Connection | None = None,
    ) -> Payment:
        row = await self.fetch_one(
            "insert_payment",
            {
                "id": id,
                "provider": provider,
                "provider_ref": provider_ref,
                "amount": amount,
                "currency": currency,
                "description": description,
                "metadata": Jsonb(metadata),
                "idempotency_key": idempotency_key,
                "request_hash": request_hash,
            },
            conn,
        )
        assert row is not None
        return Payment.from_row(row)

    async def get_payment(self, payment_id: str) -> Payment | None:
        row = await self.fetch_one("get_payment", {"id": payment_id})
        return Payment.from_row(row) if row else None

    async def get_payment_by_ref(self, provider: str, provider_ref: str) -> Payment | None:
        row = await self.fetch_one("get_payment_by_ref", {"provider": provider, "provider_ref": provider_ref})
        return Payment.from_row(row) if row else None

    async def list_payment_events(self, payment: Payment) -> list[dict[str, Any]]:
        return await self.fetch_all(
            "list_payment_events", {"provider": payment.provider, "provider_ref": payment.provider_ref}
        )

    async def list_payments(self, flt: PaymentFilter, limit: int, offset: int) -> tuple[list[Payment], int]:
        """One page and the total of all matches (also for a page past the last one)."""
        rows = await self.fetch_all("list_payments", {**flt.__dict__, "limit": limit, "offset": offset})
        total = int(rows[0]["total"]) if rows else 0
        return [Payment.from_row(r) for r in rows if r["id"] is not None], total

    async def claim_idempotency_key(
        self, key: str, request_hash: str, lock_seconds: int, ttl_seconds: int
    ) -> bool:
        row = await self.fetch_one(
            "claim_idempotency_key",
            {
                "key": key,
                "request_hash": request_hash,
                "lock_seconds": lock_seconds,
                "ttl_seconds": ttl_seconds,
            },
        )
        return row is not None

    async def get_idempotency_key(self, key: str) -> IdempotencyRecord | None:
        row = await self.fetch_one("get_idempotency_key", {"key": key})
        return IdempotencyRecord.from_row(row) if row else None

    async def complete_idempotency_key(
        self, key: str, status: int, body: Any, conn: Connection | None = None
    ) -> None:
        await self.execute(
            "complete_idempotency_key", {"key": key, "status": status, "body": Json(body)}, conn
        )

    async def release_idempotency_key(self, key: str) -> None:
        await self.execute("release_idempotency_key", {"key": key})

    async def purge_idempotency_keys(self, limit: int) -> int:
        """Delete at most ``limit`` expired keys; returns how many went."""
        return await self.execute("purge_idempotency_keys", {"limit": limit})
