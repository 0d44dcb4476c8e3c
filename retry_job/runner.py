"""One retry run: take the run lock, claim due events in batches, re-process them, record the run.

The same code serves the CronJob (`tenrusl retry once`), the CLI (`retry run`, `retry one`) and
the dev server's tick. A run claims in batches of the policy's ``batchSize`` until nothing is due,
the run's cap was claimed (the policy's ``limit``, lower during the gradual resume after a pause:
:func:`tenrusl.policy.effective_cap`), the time budget ran out (checked after each batch), SIGTERM
arrived (``stop()``), or the policy file says ``paused``. It never waits for work; the CronJob
owns the schedule.

Outcomes and exit codes: ``completed``/``paused``/``busy`` exit 0 (failed events are normal work,
recorded in the counters); ``error`` exits 1 when the database is unreachable and 2 when the
policy is invalid. Every run that reaches the database leaves a ``retry_runs`` row; a run that is
killed leaves it ``running``, and the next run to take the lock marks it ``abandoned``.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from retry_job.backoff import Backoff
from retry_job.lock import RunLock
from retry_job.policy import resolve_policy
from tenrusl.constants import EVENT_DEAD, EVENT_PROCESSED
from tenrusl.errors import DatabaseUnavailable
from tenrusl.ids import new_id
from tenrusl.policy import PolicyError, RetryPolicy, effective_cap
from tenrusl.providers import provider_spec
from tenrusl.settings import Settings
from tenrusl.store import ClaimedEvent, Settled, SettleItem, Store

log = logging.getLogger("tenrusl.retry")

# Stop claiming after the batch in which this much time passed: well under the CronJob's
# activeDeadlineSeconds, and the next run starts a minute later anyway.
DEFAULT_TIME_BUDGET_S = 300.0
# A run that never took a lock (`retry one`, or killed before the lock) is abandoned this long
# after its lease ran out.
ABANDON_GRACE_S = 60
# Expired Idempotency-Key records each run deletes at most (oldest first): a run a minute clears
# over 7 million a day, far above what the payments API creates, in one short statement.
PURGE_LIMIT = 5000
# Test-only hook: sleep this long before each event, so a test can kill a run mid-batch.
DEBUG_DELAY_ENV = "TENRUSL_RETRY_DEBUG_EVENT_DELAY_MS"

# Settings of the connections a run uses (retry_job/cli.py opens its pool with them; measured in
# docs/PERFORMANCE.md, "Retry drain and claim latency"):
#   * generic plans: the claim and the settle run at every batch. psycopg prepares a statement at
#     its fifth execution, but PostgreSQL would still plan it again for each execution's values.
#     Their generic plans are as good (tests/retry_job/test_claim.py holds them: O(batch), no table
#     scan, whatever the statistics), so they are planned once per connection;
#   * asynchronous commit for the claims: a claim's commit does not wait for the WAL flush. Only
#     a crash of the database server (not of the runner) can lose the last fraction of a second
#     of claims, and a lost claim leaves its events due as before (what is lost is the count of
#     those attempts). The settle, which moves payments, overrides this for its own transaction
#     (`retry_apply_batch` in tenrusl/sql/queries/retry.sql): a payment status a reader has seen
#     never goes back after a crash. Its flush also makes every earlier claim durable, because
#     WAL is flushed in order. The receiver keeps synchronous commit: it acknowledges.
RUNNER_SESSION = {"plan_cache_mode": "force_generic_plan", "synchronous_commit": "off"}

# Settles a run keeps in flight while it claims and reads the next batch (docs/PERFORMANCE.md):
# their durable commits wait for the WAL flush together, and the database claims meanwhile. A run
# opens one connection more than that (retry_job/cli.py): the claim's.
SETTLES_IN_FLIGHT = 2
RUN_CONNECTIONS = SETTLES_IN_FLIGHT + 1

OK, FAIL, DEAD = "ok", "fail", "dead"
EXIT_OK, EXIT_DB, EXIT_POLICY = 0, 1, 2


@dataclass
class RunResult:
    run_id: str
    trigger: str
    outcome: str = "running"
    claimed: int = 0
    ok: int = 0
    failed: int = 0
    dead: int = 0
    idempotency_keys_purged: int = 0
    lock_backend: str | None = None
    policy: dict[str, Any] = field(default_factory=dict)
    cap: int | None = None  # the most events this run could handle (effective_cap)
    error: str | None = None
    exit_code: int = EXIT_OK

    @property
    def summary(self) -> str:
        return f"CLAIMED={self.claimed} OK={self.ok} FAIL={self.failed} DEAD={self.dead}"

    def count(self, outcome: str) -> None:
        if outcome == OK:
            self.ok += 1
        elif outcome == DEAD:
            self.dead += 1
        else:
            self.failed += 1


@dataclass
class BatchRead:
    """A claimed batch after reading: what to settle, and the outcomes already known (dead at
    claim, or failed while reading)."""

    batch: list[ClaimedEvent]
    max_attempts: int  # of the policy it was claimed under
    items: list[SettleItem] = field(default_factory=list)
    delays: dict[str, int] = field(default_factory=dict)
    outcomes: list[str] = field(default_factory=list)


# The settles in flight, oldest first: each one's task and the payments its batch names.
Settling = deque[tuple["asyncio.Task[list[str]]", frozenset[tuple[str, str]]]]


@dataclass(frozen=True)
class RunOptions:
    trigger: str = "cron"
    # Command-line overrides: RetryPolicy field names; None means "not given".
    flags: Mapping[str, Any] = field(default_factory=dict)
    time_budget_s: float = DEFAULT_TIME_BUDGET_S


def utc_now() -> datetime:
    return datetime.now(UTC)


class Runner:
    """One run. ``await Runner(settings, store).run()``; ``stop()`` makes it stop claiming.

    ``clock`` tells the time the gradual resume is computed at (tests pass their own).
    """

    def __init__(
        self,
        settings: Settings,
        store: Store,
        options: RunOptions | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.settings = settings
        self.store = store
        self.options = options or RunOptions()
        self.rng = rng or random.Random()
        self.clock = clock
        self._stopping = False
        self._debug_delay_s = int(settings.value(DEBUG_DELAY_ENV, default="0") or 0) / 1000.0
        self._resolved: tuple[bytes | None, RetryPolicy] | None = None  # policy file, policy
        self._backoffs: tuple[RetryPolicy, Backoff] | None = None

    def stop(self) -> None:
        """SIGTERM: finish the batch in hand, claim nothing more. Leases return the rest."""
        self._stopping = True

    # -- the run ---------------------------------------------------------------------------------

    async def run(self) -> RunResult:
        result = RunResult(run_id=new_id(), trigger=self.options.trigger)
        try:
            policy = self._policy()
        except PolicyError as exc:
            return await self._fail_early(result, EXIT_POLICY, f"bad policy: {exc}")
        result.policy = policy.to_file()
        try:
            await self.store.start_retry_run(result.run_id, result.trigger, result.policy)
        except DatabaseUnavailable as exc:
            return self._finish_log(result, "error", EXIT_DB, str(exc))

        lock = RunLock(self.settings, token=result.run_id)
        try:
            result.lock_backend = await lock.acquire()
            if result.lock_backend is None:
                log.info(
                    "another retry run holds the run lock; nothing to do",
                    extra={"action": "retry_run", "run_id": result.run_id, "outcome": "busy"},
                )
                return await self._finish(result, "busy", EXIT_OK)
            await self._sweep_abandoned(result, result.lock_backend, policy)
            outcome = await self._drain(result, policy)
            # Housekeeping under the run lock, so one run at a time does it.
            result.idempotency_keys_purged = await self.store.purge_idempotency_keys(PURGE_LIMIT)
            return await self._finish(result, outcome, EXIT_OK)
        except DatabaseUnavailable as exc:
            return await self._finish(result, "error", EXIT_DB, str(exc))
        except PolicyError as exc:
            return await self._finish(result, "error", EXIT_POLICY, f"bad policy: {exc}")
        finally:
            await lock.release()

    async def _sweep_abandoned(self, result: RunResult, backend: str, policy: RetryPolicy) -> None:
        """Holding the lock proves earlier holders dead: their `running` rows become `abandoned`."""
        for run in await self.store.retry_run_locked(
            result.run_id,
            backend,
            lease_seconds=policy.lease_seconds,
            grace_seconds=ABANDON_GRACE_S,
        ):
            log.warning(
                "an earlier retry run never recorded its end; marked abandoned",
                extra={
                    "action": "retry_run",
                    "run_id": run["id"],
                    "trigger": run["trigger"],
                    "outcome": "abandoned",
                    "lock_backend": run["lock_backend"],
                    "seen_by": result.run_id,
                },
            )

    async def _drain(self, result: RunResult, policy: RetryPolicy) -> str:
        """Claim and process batches until done; returns the outcome (completed or paused).

        A batch is claimed, read (per event, in Python) and handed to a settle that runs on its
        own connection while the run claims and reads the next batches: up to
        ``SETTLES_IN_FLIGHT`` settles at once, so their durable commits wait for the WAL flush
        together (PostgreSQL flushes them in one write) while the database works on the next
        claim. The claims stay one after another, each of its own batch: an event is claimed, so
        applied, once. A batch that names a payment a settle in flight moves waits for it, so a
        payment still moves to the first event's status in claim order, as if the batches were
        applied one after another. Whether to claim again is decided between batches, as before:
        not when paused, stopping, past the time budget or at the run's cap; the cap is computed
        again after each policy re-read (lowering ``limit`` mid-run, a storm, takes effect at the
        next batch). Every settle started is waited for before the run ends, also on an error:
        a settle that failed leaves its events leased, and they come back by themselves.
        """
        settling: Settling = deque()
        try:
            outcome = await self._claim_batches(result, policy, settling)
        except BaseException:
            await self._settle_all(result, settling, raise_error=False)  # the run's error goes on
            raise
        await self._settle_all(result, settling, raise_error=True)
        return outcome

    async def _claim_batches(self, result: RunResult, policy: RetryPolicy, settling: Settling) -> str:
        """The drain's loop: claim, read, start the settle; returns the outcome."""
        started = time.monotonic()
        while True:
            await self._settled(result, settling)
            limit, outcome = self._next_claim(result, policy, started, holding=result.claimed > 0)
            if limit <= 0:
                return outcome
            batch = await self.store.claim_due_events(
                limit=limit,
                lease_seconds=policy.lease_seconds,
                max_attempts=policy.max_attempts,
                providers=policy.providers,
            )
            if not batch:
                return outcome
            result.claimed += len(batch)
            read = await self.read_batch(batch, policy, self._backoff(policy))
            payments = frozenset((i.provider, i.payment_ref) for i in read.items if i.payment_ref is not None)
            await self._settled(result, settling, room=SETTLES_IN_FLIGHT, payments=payments)
            settling.append((asyncio.create_task(self.settle_batch(read)), payments))
            # Re-read between batches: the operator may pause or retune while we drain. A broken
            # policy stops the run; the batches in hand are still settled (_drain).
            policy = self._policy()

    async def _settled(
        self,
        result: RunResult,
        settling: Settling,
        *,
        room: int | None = None,
        payments: frozenset[tuple[str, str]] = frozenset(),
    ) -> None:
        """Count the settles that finished, oldest first. With ``room``, also wait for the oldest
        ones until fewer than ``room`` are in flight and none of them moves one of ``payments``.
        A settle that failed raises here: the run claims nothing more."""
        while settling and (
            settling[0][0].done()
            or (room is not None and len(settling) >= room)
            or (payments and any(payments & moving for _, moving in settling))
        ):
            task, _ = settling.popleft()
            for each in await task:
                result.count(each)

    async def _settle_all(self, result: RunResult, settling: Settling, *, raise_error: bool) -> None:
        """Wait for every settle in flight and count what they settled; then raise the first
        settle's error if ``raise_error``."""
        done = await asyncio.gather(*(task for task, _ in settling), return_exceptions=True)
        settling.clear()
        failed: BaseException | None = None
        for each in done:
            if isinstance(each, BaseException):
                failed = failed or each
            else:
                for outcome in each:
                    result.count(outcome)
        if failed is not None and raise_error:
            raise failed

    def _next_claim(
        self, result: RunResult, policy: RetryPolicy, started: float, *, holding: bool
    ) -> tuple[int, str]:
        """How many events to claim next, and the run's outcome if that is none (the drain ends)."""
        if self._stopping:
            return 0, "completed"
        if policy.paused:
            log.info("retry policy is paused; claiming nothing", extra={"action": "retry_run"})
            result.policy = policy.to_file()
            return 0, "paused"
        if holding and time.monotonic() - started >= self.options.time_budget_s:
            log.info("time budget reached; the next run continues", extra={"action": "retry_run"})
            return 0, "completed"
        result.cap = effective_cap(policy, self.clock())
        result.policy = {**policy.to_file(), "cap": result.cap}
        room = result.cap - result.claimed
        if room <= 0:
            log.info(
                "the run handled its cap of %d events; the next run continues",
                result.cap,
                extra={"action": "retry_run", "cap": result.cap},
            )
            return 0, "completed"
        return min(policy.batch_size, room), "completed"

    # -- a batch: read each event, settle all in one statement ------------------------------------

    async def process_batch(
        self, batch: list[ClaimedEvent], policy: RetryPolicy, backoff: Backoff
    ) -> list[str]:
        """Re-apply a claimed batch; returns one outcome (ok, fail, dead) per event."""
        return await self.settle_batch(await self.read_batch(batch, policy, backoff))

    async def read_batch(self, batch: list[ClaimedEvent], policy: RetryPolicy, backoff: Backoff) -> BatchRead:
        """Per event: its retry delay and what it says about its payment (:meth:`_extract`).

        Reading runs per event, so a provider bug fails that event alone (recorded at once, with
        its own statement); the database work for the rest of the batch is one statement
        (:meth:`settle_batch`), so a drain costs a round trip per batch, not per event.
        """
        read = BatchRead(batch, policy.max_attempts)
        for event in batch:
            if event.status == EVENT_DEAD:
                log.warning(
                    "webhook event dead: %s", event.last_error, extra={**self._extra(event), "outcome": DEAD}
                )
                read.outcomes.append(DEAD)
                continue
            prev = event.prev_delay_ms if policy.mode == "decorrelated" else None
            delay_ms = read.delays[event.id] = backoff.delay(event.attempts, self.rng, prev_ms=prev)
            try:
                payment_status, payment_ref = await self._extract(event)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                read.outcomes.append(await self._record_error(event, exc, delay_ms, policy))
                continue
            read.items.append(SettleItem(event.id, event.provider, payment_status, payment_ref, delay_ms))
        return read

    async def settle_batch(self, read: BatchRead) -> list[str]:
        """Apply the read events in one statement; returns every outcome of the batch.

        If that statement fails, every event of it stays leased and comes back by itself.
        """
        outcomes = list(read.outcomes)
        if read.items:
            settled = await self.store.retry_apply_batch(read.items, read.max_attempts)
            by_id = {event.id: event for event in read.batch}
            for event_id, state in settled.items():
                outcomes.append(self._log_settled(by_id[event_id], state, read.delays[event_id]))
        return outcomes

    async def process(self, event: ClaimedEvent, policy: RetryPolicy, backoff: Backoff) -> str:
        """Re-apply one claimed event (admin "retry now"); the batch path with a batch of one."""
        return (await self.process_batch([event], policy, backoff))[0]

    async def _extract(self, event: ClaimedEvent) -> tuple[str, str | None]:
        """What the stored event says about its payment: status and reference.

        The receiver read both with the core's provider rules (tenrusl/providers/) and stored
        them; when those were this process's rules the claim says so and they are used as they
        are. Otherwise (an event stored before a rule changed, or by older code) the claim sent
        the payload and the current rules read it again. No secret is needed: a bad provider
        setting cannot fail an event here (the CLI refuses to start on one instead).
        """
        if self._debug_delay_s:
            await asyncio.sleep(self._debug_delay_s)
        if event.fields_current and event.payment_status is not None:
            return event.payment_status, event.payment_ref
        return provider_spec(event.provider).payment_fields(event.payload)

    async def _record_error(
        self, event: ClaimedEvent, exc: Exception, delay_ms: int, policy: RetryPolicy
    ) -> str:
        log.exception("retry processing raised", extra={**self._extra(event), "outcome": FAIL})
        marked = await self.store.retry_mark_failed(
            event.id, f"{exc.__class__.__name__}: {exc}", delay_ms, policy.max_attempts
        )
        return DEAD if marked is not None and marked.status == EVENT_DEAD else FAIL

    def _log_settled(self, event: ClaimedEvent, settled: Settled, delay_ms: int) -> str:
        outcome = {EVENT_PROCESSED: OK, EVENT_DEAD: DEAD}.get(settled.status, FAIL)
        log.log(
            logging.WARNING if outcome == DEAD else logging.INFO,
            "webhook event retried",
            extra={
                **self._extra(event),
                "outcome": outcome,
                "event_status": settled.status,
                "payment_status": settled.payment_status,
                "next_retry_at": settled.next_retry_at,
                "delay_ms": delay_ms if outcome == FAIL else None,
                "reason": settled.last_error,
            },
        )
        return outcome

    @staticmethod
    def _extra(event: ClaimedEvent) -> dict[str, Any]:
        return {
            "action": "retry_event",
            "webhook_event_id": event.id,
            "provider": event.provider,
            "event_id": event.event_id,
            "attempts": event.attempts,
        }

    async def process_one(self, event_id: str, *, force: bool) -> tuple[RunResult, str | None]:
        """Admin "retry now" for one event (no run lock: row locks make it safe beside a run).

        Returns the run and the event's outcome, or None when it could not be claimed.
        """
        result = RunResult(run_id=new_id(), trigger="manual-one")
        try:
            policy = self._policy()
        except PolicyError as exc:
            return await self._fail_early(result, EXIT_POLICY, f"bad policy: {exc}"), None
        result.policy = policy.to_file()
        try:
            await self.store.start_retry_run(result.run_id, result.trigger, result.policy)
            event = await self.store.claim_event(
                event_id, force=force, lease_seconds=policy.lease_seconds, max_attempts=policy.max_attempts
            )
            outcome = None
            if event is not None:
                result.claimed = 1
                outcome = await self.process(event, policy, Backoff.from_policy(policy))
                result.count(outcome)
            return await self._finish(result, "completed", EXIT_OK), outcome
        except DatabaseUnavailable as exc:
            return await self._finish(result, "error", EXIT_DB, str(exc)), None

    # -- helpers -----------------------------------------------------------------------------------

    def _policy(self) -> RetryPolicy:
        """The effective policy, read again at each call (between batches). The settings and the
        flags do not change during a run, so it is resolved again only when the policy file's
        bytes changed: a drain reads the file (a few microseconds) but does not parse and
        validate it per batch."""
        path, content = self.settings.policy_file, None
        if path:
            try:
                with open(path, "rb") as fh:
                    content = fh.read()
            except FileNotFoundError:
                pass
            except OSError:  # unreadable: resolve_policy says why
                self._resolved = None
                return resolve_policy(self.settings, self.options.flags)
        if self._resolved is None or self._resolved[0] != content:
            self._resolved = (content, resolve_policy(self.settings, self.options.flags))
        return self._resolved[1]

    def _backoff(self, policy: RetryPolicy) -> Backoff:
        """The policy's backoff, built again only when the policy changed."""
        if self._backoffs is None or self._backoffs[0] is not policy:
            self._backoffs = (policy, Backoff.from_policy(policy))
        return self._backoffs[1]

    async def _fail_early(self, result: RunResult, code: int, error: str) -> RunResult:
        """A run that could not start (bad policy): record it if the database is there."""
        try:
            await self.store.start_retry_run(result.run_id, result.trigger, {})
        except DatabaseUnavailable:
            return self._finish_log(result, "error", code, error)
        return await self._finish(result, "error", code, error)

    async def _finish(
        self, result: RunResult, outcome: str, code: int, error: str | None = None
    ) -> RunResult:
        self._finish_log(result, outcome, code, error)
        try:
            await self.store.finish_retry_run(
                result.run_id,
                outcome=outcome,
                policy=result.policy,
                lock_backend=result.lock_backend,
                claimed=result.claimed,
                ok=result.ok,
                failed=result.failed,
                dead=result.dead,
                error=error,
            )
        except DatabaseUnavailable as exc:
            log.error("could not record the retry run: %s", exc, extra={"action": "retry_run"})
            result.exit_code = EXIT_DB
        return result

    def _finish_log(self, result: RunResult, outcome: str, code: int, error: str | None) -> RunResult:
        result.outcome, result.exit_code, result.error = outcome, code, error
        log.log(
            logging.ERROR if outcome == "error" else logging.INFO,
            result.summary,
            extra={
                "action": "retry_run",
                "run_id": result.run_id,
                "trigger": result.trigger,
                "outcome": outcome,
                "claimed": result.claimed,
                "ok": result.ok,
                "failed": result.failed,
                "dead": result.dead,
                "idempotency_keys_purged": result.idempotency_keys_purged,
                "lock_backend": result.lock_backend,
                "cap": result.cap,
                "error": error,
            },
        )
        return result
