"""The retry runner's queries: claim, settle, replay, run records, and admin event views."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from psycopg.types.json import Jsonb

from tenrusl.providers import rules_fingerprint
from tenrusl.store.base import StoreBase
from tenrusl.store.models import _FromRow


@dataclass(frozen=True)
class ClaimedEvent(_FromRow):
    """A row the claim took. ``status`` is ``processing``, or ``dead`` when it was exhausted."""

    id: str
    provider: str
    event_id: str
    status: str
    attempts: int
    last_error: str | None
    prev_status: str  # status before the claim
    due_at: datetime | None  # next_retry_at before the claim
    prev_attempt_at: datetime | None  # last_attempt_at before the claim
    # The payment fields stored with the event, and whether this process's provider rules read
    # them (tenrusl.providers.rules_fingerprint). Only when they did not is ``payload`` loaded.
    payment_status: str | None = None
    payment_ref: str | None = None
    fields_current: bool = False
    payload: Any = None

    @property
    def prev_delay_ms(self) -> int | None:
        """The wait the event just served (for decorrelated jitter), when it can be told.

        After an expired lease the gap is the lease, not a backoff delay, so it is not used.
        """
        if self.prev_status == "processing" or self.due_at is None or self.prev_attempt_at is None:
            return None
        ms = int((self.due_at - self.prev_attempt_at).total_seconds() * 1000)
        return ms if ms > 0 else None


class SettleItem(NamedTuple):
    """One claimed event to settle: what its payload says, read by this process's rules."""

    id: str
    provider: str
    payment_status: str
    payment_ref: str | None
    retry_delay_ms: int


@dataclass(frozen=True)
class Settled(_FromRow):
    """An event's state after the runner settled it."""

    status: str
    attempts: int
    next_retry_at: datetime | None
    last_error: str | None
    payment_status: str | None = None


@dataclass(frozen=True)
class EventFilter:
    status: str | None = None
    provider: str | None = None
    q: str | None = None
    received_from: datetime | None = None
    received_to: datetime | None = None
    needs_review: bool | None = None


@dataclass(frozen=True)
class ReplayFilter:
    status: str = "dead"
    provider: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def _providers(providers: Sequence[str]) -> list[str] | None:
    return list(providers) if providers else None


class RetryQueries(StoreBase):
    async def claim_due_events(
        self, *, limit: int, lease_seconds: int, max_attempts: int, providers: Sequence[str] = ()
    ) -> list[ClaimedEvent]:
        rows = await self.fetch_all(
            "claim_due_events",
            {
                "limit": limit,
                "lease_seconds": lease_seconds,
                "max_attempts": max_attempts,
                "providers": _providers(providers),
                "rules": rules_fingerprint(),
            },
        )
        claimed = [ClaimedEvent.from_row(r) for r in rows]
        # RETURNING has no order; process in due order, as claimed.
        claimed.sort(key=lambda e: (e.due_at is None, e.due_at, e.id))
        return claimed

    async def claim_event(
        self, event_id: str, *, force: bool, lease_seconds: int, max_attempts: int
    ) -> ClaimedEvent | None:
        row = await self.fetch_one(
            "claim_event",
            {
                "id": event_id,
                "force": force,
                "lease_seconds": lease_seconds,
                "max_attempts": max_attempts,
                "rules": rules_fingerprint(),
            },
        )
        return ClaimedEvent.from_row(row) if row else None

    async def retry_apply_batch(self, items: Sequence[SettleItem], max_attempts: int) -> dict[str, Settled]:
        """Settle claimed events in one round trip; returns each one's state by id.

        The settle moves payments, so its commit is durable even on the runner's asynchronously
        committing connections (the statement turns synchronous commit on for its own
        transaction: retry.sql): a payment status a reader has seen never goes back after a crash
        of the database server.
        """
        rows = await self.fetch_all(
            "retry_apply_batch",
            {
                "ids": [i.id for i in items],
                "providers": [i.provider for i in items],
                "payment_statuses": [i.payment_status for i in items],
                "payment_refs": [i.payment_ref for i in items],
                "retry_delays_ms": [i.retry_delay_ms for i in items],
                "max_attempts": max_attempts,
                "rules": rules_fingerprint(),
            },
        )
        return {row["id"]: Settled.from_row(row) for row in rows}

    async def retry_mark_failed(
        self, event_id: str, error: str, retry_delay_ms: int, max_attempts: int
    ) -> Settled | None:
        row = await self.fetch_one(
            "retry_mark_failed",
            {"id": event_id, "error": error, "retry_delay_ms": retry_delay_ms, "max_attempts": max_attempts},
        )
        return Settled.from_row(row) if row else None

    async def peek_due_events(self, *, limit: int, providers: Sequence[str] = ()) -> list[dict[str, Any]]:
        return await self.fetch_all("peek_due_events", {"limit": limit, "providers": _providers(providers)})

    async def replay_events(self, flt: ReplayFilter, *, actor: str, dry_run: bool = False) -> int:
        params = {**flt.__dict__, "actor": actor}
        if dry_run:
            row = await self.fetch_one("count_replayable", params)
            return int(row["replayable"]) if row else 0
        row = await self.fetch_one("replay_events", params)
        return int(row["replayed"]) if row else 0

    async def schedule_event_now(self, event_id: str, *, force: bool, actor: str) -> dict[str, Any] | None:
        return await self.fetch_one("schedule_event_now", {"id": event_id, "force": force, "actor": actor})

    async def list_events(
        self, flt: EventFilter, limit: int, offset: int
    ) -> tuple[list[dict[str, Any]], int]:
        """One page and the total of all matches (also for a page past the last one)."""
        rows = await self.fetch_all("list_events", {**flt.__dict__, "limit": limit, "offset": offset})
        total = int(rows[0]["total"]) if rows else 0
        return [r for r in rows if r["id"] is not None], total

    async def start_retry_run(self, run_id: str, trigger: str, policy: dict[str, Any]) -> datetime:
        row = await self.fetch_one(
            "start_retry_run", {"id": run_id, "trigger": trigger, "policy": Jsonb(policy)}
        )
        assert row is not None
        started: datetime = row["started_at"]
        return started

    async def retry_run_locked(
        self, run_id: str, lock_backend: str, *, lease_seconds: int, grace_seconds: int
    ) -> list[dict[str, Any]]:
        """Record the run's lock; mark the runs it proves dead ``abandoned`` and return them.

        ``lease_seconds`` stands in for a row whose policy does not say its lease.
        """
        return await self.fetch_all(
            "retry_run_locked",
            {
                "id": run_id,
                "lock_backend": lock_backend,
                "lease_seconds": lease_seconds,
                "grace_seconds": grace_seconds,
            },
        )

    async def finish_retry_run(
        self,
        run_id: str,
        *,
        outcome: str,
        policy: dict[str, Any],
        lock_backend: str | None,
        claimed: int,
        ok: int,
        failed: int,
        dead: int,
        error: str | None,
    ) -> None:
        await self.execute(
            "finish_retry_run",
            {
                "id": run_id,
                "outcome": outcome,
                "policy": Jsonb(policy),
                "lock_backend": lock_backend,
                "claimed": claimed,
                "ok": ok,
                "failed": failed,
                "dead": dead,
                "error": error,
            },
        )

    async def recent_retry_runs(self, limit: int = 5) -> list[dict[str, Any]]:
        return await self.fetch_all("recent_retry_runs", {"limit": limit})

    async def retry_status(self) -> dict[str, Any]:
        row = await self.fetch_one("retry_status")
        assert row is not None
        return {
            "events_by_status": row["events_by_status"] or {},
            "due": int(row["due"]),
            "oldest_due_seconds": float(row["oldest_due_seconds"] or 0),
            "next_due_at": row["next_due_at"],
            "runs_running": int(row["runs_running"]),
            "runs_abandoned_24h": int(row["runs_abandoned_24h"]),
        }
