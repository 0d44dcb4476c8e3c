"""Group commit for webhook ingest: concurrent deliveries stored by one statement and one commit.

Each delivery waits for the commit of the batch that holds it, so its 202 still follows its
own durable write. There is no timer: a delivery that arrives while fewer than ``flushes``
batches are in flight starts one at once (alone, at low load: the single-delivery statement, as
without group commit); deliveries that arrive while all are busy wait and leave together in the
next one, at most ``max_batch`` at a time. The batch grows with the load and costs nothing when
there is none (docs/PERFORMANCE.md, "Receiver ingest").

A batch holds at most one delivery per (provider, event id): a second one waits for the next
batch, where it is a duplicate, exactly as if the two had arrived one after the other.
Deliveries naming one payment may share a batch: the statement applies them in batch order.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Sequence

import psycopg

from tenrusl.errors import DatabaseUnavailable
from tenrusl.store.events import EventQueries, NewEvent
from tenrusl.store.models import IngestResult

log = logging.getLogger("tenrusl.store")


class _Pending:
    __slots__ = ("event", "future")

    def __init__(self, event: NewEvent, future: asyncio.Future[IngestResult]) -> None:
        self.event = event
        self.future = future


class GroupCommit:
    """Coalesces ``ingest`` calls into ``Store.ingest_events`` batches (one per statement)."""

    def __init__(
        self, store: EventQueries, *, max_batch: int, flushes: int, retry_delay_ms: int, max_attempts: int
    ) -> None:
        self.store = store
        self.max_batch = max_batch
        self.flushes = flushes
        self.retry_delay_ms = retry_delay_ms
        self.max_attempts = max_attempts
        self._pending: deque[_Pending] = deque()
        self._running = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def ingest(self, event: NewEvent) -> IngestResult:
        """Store ``event`` and return once the batch holding it has committed."""
        if self.max_batch <= 1:
            return await self.store.ingest_event(event, self.retry_delay_ms, self.max_attempts)
        self.store.check_event(event)  # an unstorable delivery fails alone, never its batch
        future: asyncio.Future[IngestResult] = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(event, future))
        if self._running < self.flushes:
            self._running += 1
            task = asyncio.create_task(self._flush_loop())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        # A waiter that is cancelled (client gone) does not cancel the batch: the others need it.
        return await future

    def _take(self) -> list[_Pending]:
        """The next batch, in arrival order, without two deliveries of one event."""
        batch: list[_Pending] = []
        events: set[tuple[str, str]] = set()
        deferred: list[_Pending] = []
        pending = self._pending
        while pending and len(batch) < self.max_batch:
            item = pending.popleft()
            if item.future.done():  # its waiter was cancelled before the batch left
                continue
            key = (item.event.provider, item.event.event_id)
            if key in events:
                deferred.append(item)
                continue
            events.add(key)
            batch.append(item)
        pending.extendleft(reversed(deferred))
        return batch

    async def _flush_loop(self) -> None:
        try:
            while self._pending:
                batch = self._take()
                if batch:
                    await self._flush(batch)
        finally:
            self._running -= 1

    async def _flush(self, batch: list[_Pending]) -> None:
        if len(batch) == 1:  # nothing to coalesce (low load): the single statement is cheaper
            await self._single(batch[0])
            return
        events = [item.event for item in batch]
        try:
            results = await self.store.ingest_events(events, self.retry_delay_ms, self.max_attempts)
        except DatabaseUnavailable as exc:
            _fail(batch, exc)
            return
        except psycopg.Error:
            # One delivery the database refuses (a constraint, a data error) must not fail the
            # others: each is stored on its own and gets its own answer.
            log.warning(
                "ingest batch failed; storing its deliveries one by one",
                extra={"action": "ingest_batch_split", "size": len(batch)},
            )
            await asyncio.gather(*(self._single(item) for item in batch))
            return
        except BaseException as exc:
            _fail(batch, exc if isinstance(exc, Exception) else DatabaseUnavailable("ingest cancelled"))
            raise
        for item, result in zip(batch, results, strict=True):
            if not item.future.done():
                item.future.set_result(result)

    async def _single(self, item: _Pending) -> None:
        try:
            result = await self.store.ingest_event(item.event, self.retry_delay_ms, self.max_attempts)
        except Exception as exc:
            _fail([item], exc)
        else:
            if not item.future.done():
                item.future.set_result(result)

    async def close(self) -> None:
        """Wait for the batches in flight (the pool closes after this)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


def _fail(batch: Sequence[_Pending], exc: BaseException) -> None:
    for item in batch:
        if not item.future.done():
            item.future.set_exception(exc)
