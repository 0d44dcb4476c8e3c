"""The retry runner on a timer, in-process: what `tenrusl dev` uses instead of a CronJob.

Each tick is exactly one CronJob run (:class:`retry_job.runner.Runner` with the same lock,
policy layering and ``retry_runs`` row); ticks never overlap, because the next one is scheduled
only after the previous finished (the CronJob's ``concurrencyPolicy: Forbid``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from retry_job.runner import Runner, RunOptions, RunResult
from tenrusl.settings import Settings
from tenrusl.store import Store

log = logging.getLogger("tenrusl.retry.ticker")

DEFAULT_INTERVAL_S = 60.0


class RetryTicker:
    """``ticker = RetryTicker(settings, store, interval_s=60); ticker.start(); ... await ticker.stop()``.

    The first tick runs right away. A failed tick is logged and the ticker carries on, as the
    CronJob would start the next run a minute later.
    """

    def __init__(self, settings: Settings, store: Store, interval_s: float = DEFAULT_INTERVAL_S) -> None:
        self.settings = settings
        self.store = store
        self.interval_s = interval_s
        self.last: RunResult | None = None
        self._task: asyncio.Task[None] | None = None
        self._runner: Runner | None = None
        self._stopping = asyncio.Event()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="tenrusl-retry-ticker")

    async def stop(self, grace_s: float = 10.0) -> None:
        """Let the current event finish and the run record itself, then end the loop.

        After ``grace_s`` the tick is cancelled; events it still held come back when their
        lease runs out.
        """
        self._stopping.set()
        if self._runner is not None:
            self._runner.stop()
        if self._task is not None:
            _, pending = await asyncio.wait({self._task}, timeout=grace_s)
            for task in pending:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            self._task = None

    async def _loop(self) -> None:
        while not self._stopping.is_set():
            self._runner = Runner(self.settings, self.store, RunOptions(trigger="dev"))
            try:
                self.last = await self._runner.run()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("retry tick failed", extra={"action": "retry_tick"})
            finally:
                self._runner = None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=self.interval_s)
