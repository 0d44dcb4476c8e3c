"""``tenrusl serve --workers N``: N receiver processes sharing its ports, and their supervisor.

One aiohttp process uses one core. With N > 1 this process becomes a small supervisor: it starts
N worker processes (``python -m receiver``, i.e. ``tenrusl serve``, started afresh, so nothing of
this process, a database pool least of all, is inherited), each binding the same host:port with
``SO_REUSEPORT``; the kernel spreads new connections over the listening workers. The supervisor
itself never serves.

* Start-up: the settings are checked here first (a bad one exits 2 before any worker starts). A
  worker that exits before it listens on its first start (the port is taken, ...) stops the
  server with that worker's exit code, as a single process would have failed.
* SIGTERM or SIGINT: forwarded (as SIGTERM) to every worker; each shuts down as a single process
  does (``/ready`` 503, requests in flight finish within ``--shutdown-timeout``, the pool is
  closed). The supervisor exits 0 once all have exited 0; a worker still running
  ``KILL_MARGIN_S`` after the timeout is killed, and the exit code is then 1.
* A worker that dies on its own is restarted, after 0.5 s doubling to 10 s for a worker that keeps
  dying young. More than ``MAX_RESTARTS`` restarts within ``RESTART_WINDOW_S`` means something
  is wrong with the process, not one request: the supervisor then stops the other workers
  gracefully and exits 1, so Kubernetes restarts the container and shows it crash-looping.
* Metrics: prometheus-client's multiprocess mode. The supervisor makes a fresh empty folder for
  ``PROMETHEUS_MULTIPROC_DIR`` at every start, marks each exited worker dead (its live gauges
  disappear; its counts stay in the totals) and deletes the folder on exit.
* Workers watch the supervisor: each holds one end of a socket pair; if the supervisor dies (even
  by SIGKILL) the worker reads end-of-file and shuts down gracefully.

Connections are spread by a hash of their addresses, not by load: a client holding a few
keep-alive connections may land on fewer workers than there are.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType

from prometheus_client.multiprocess import mark_process_dead

from receiver.app import create_app
from receiver.server import READY
from tenrusl.settings import Settings, SettingsError

log = logging.getLogger("tenrusl.supervisor")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"  # prometheus-client's own variable
WORKERS_ENV = "TENRUSL_WORKERS"
MAX_RESTARTS = 5  # restarts allowed within RESTART_WINDOW_S before the server gives up
RESTART_WINDOW_S = 60.0
BACKOFF_FIRST_S, BACKOFF_MAX_S = 0.5, 10.0
STABLE_S = 30.0  # a worker up this long resets its slot's backoff
KILL_MARGIN_S = 5.0  # beyond --shutdown-timeout, for closing the pool and exiting
TICK_S = 0.05
EXIT_FAILED = 1

Command = Callable[[int], list[str]]  # the worker command, given the fd of its supervisor socket


@dataclass
class Slot:
    """One worker place: the process in it now, or when the next one may start."""

    index: int
    process: subprocess.Popen[bytes] | None = None
    control: socket.socket | None = None  # the supervisor's end of the worker's socket pair
    ready: bool = False
    ever_ready: bool = False
    started_at: float = 0.0
    failures: int = 0  # consecutive early deaths, for the backoff
    restart_at: float | None = None
    exit_codes: list[int] = field(default_factory=list)


def worker_command(settings: Settings, shutdown_timeout: float, loop: str = "auto") -> Command:
    """``python -P -m receiver`` (``tenrusl serve``) as a worker, on the supervisor's ports."""

    def command(fd: int) -> list[str]:
        return [
            sys.executable, "-P", "-m", "receiver",
            "--host", settings.host, "--port", str(settings.port), "--loop", loop,
            "--admin-host", settings.admin_host, "--admin-port", str(settings.admin_port),
            "--shutdown-timeout", str(shutdown_timeout), "--supervisor-fd", str(fd),
        ]  # fmt: skip

    return command


class Supervisor:
    """Runs ``workers`` copies of ``command`` until a signal; see the module docstring."""

    def __init__(
        self, workers: int, command: Command, *, shutdown_timeout: float, env: dict[str, str] | None = None
    ) -> None:
        self.workers = workers
        self.command = command
        self.shutdown_timeout = shutdown_timeout
        self.base_env = dict(os.environ if env is None else env)
        self.slots = [Slot(i) for i in range(workers)]
        self.restarts: deque[float] = deque()
        self.signal: int | None = None
        self.metrics_dir = ""
        self.max_restarts, self.backoff_first_s = MAX_RESTARTS, BACKOFF_FIRST_S  # tests shorten them

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.signal is None:
            log.info("stopping workers", extra={"action": "shutdown", "signal": signal.Signals(signum).name})
        self.signal = signum

    def run(self) -> int:
        handled = (signal.SIGTERM, signal.SIGINT)
        previous = {sig: signal.signal(sig, self._on_signal) for sig in handled}
        self.metrics_dir = tempfile.mkdtemp(prefix="tenrusl-metrics-")
        try:
            code = self._supervise()
            stopped = self._stop_all()
            return code if code is not None else (0 if stopped else EXIT_FAILED)
        finally:
            for slot in self.slots:
                self._reap(slot)
            shutil.rmtree(self.metrics_dir, ignore_errors=True)
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _supervise(self) -> int | None:
        """Keep every slot filled until a signal (None) or a failure (the exit code)."""
        for slot in self.slots:
            self._start(slot)
        while self.signal is None:
            now = time.monotonic()
            for slot in self.slots:
                if slot.process is None:
                    if slot.restart_at is not None and now >= slot.restart_at:
                        self._start(slot)
                    continue
                self._check_ready(slot)
                code = slot.process.poll()
                if code is None:
                    continue
                if self.signal is not None:  # exiting because of the signal that just arrived
                    break
                failed = self._died(slot, code, now)
                if failed is not None:
                    return failed
            time.sleep(TICK_S)
        return None

    def _start(self, slot: Slot) -> None:
        ours, theirs = socket.socketpair()
        env = {**self.base_env, WORKERS_ENV: str(self.workers), MULTIPROC_ENV: self.metrics_dir}
        try:
            # Its own process group: a Ctrl-C in a terminal reaches only the supervisor, which
            # forwards it once (a second signal would interrupt a worker's graceful shutdown).
            slot.process = subprocess.Popen(
                self.command(theirs.fileno()), env=env, pass_fds=(theirs.fileno(),), process_group=0
            )
        finally:
            theirs.close()
        ours.setblocking(False)
        slot.control, slot.ready, slot.restart_at = ours, False, None
        slot.started_at = time.monotonic()
        extra = {"action": "worker_start", "worker": slot.index, "pid": slot.process.pid}
        log.info("worker started", extra=extra)

    def _check_ready(self, slot: Slot) -> None:
        if slot.ready or slot.control is None:
            return
        with contextlib.suppress(BlockingIOError):
            if slot.control.recv(1) == READY:
                slot.ready = slot.ever_ready = True

    def _died(self, slot: Slot, code: int, now: float) -> int | None:
        """A worker exited without being asked: restart it later, or give up (the exit code)."""
        self._check_ready(slot)  # it may have listened and died since the last look
        first_start, was_ready = not slot.ever_ready, slot.ready
        pid = self._reap(slot)
        extra = {"action": "worker_exit", "worker": slot.index, "pid": pid, "exit_code": code}
        if first_start:
            log.error("worker failed to start; stopping", extra=extra)
            return code if code > 0 else EXIT_FAILED
        while self.restarts and now - self.restarts[0] > RESTART_WINDOW_S:
            self.restarts.popleft()
        if len(self.restarts) >= self.max_restarts:
            window = f"{self.max_restarts} restarts within {RESTART_WINDOW_S:.0f} s"
            log.error(f"worker died; {window} already, giving up", extra=extra)
            return EXIT_FAILED
        self.restarts.append(now)
        stable = was_ready and now - slot.started_at >= STABLE_S
        slot.failures = 0 if stable else slot.failures + 1
        delay = min(BACKOFF_MAX_S, self.backoff_first_s * 2 ** max(0, slot.failures - 1))
        slot.restart_at = now + delay
        log.error("worker died; restarting", extra={**extra, "restart_in_s": delay})
        return None

    def _reap(self, slot: Slot) -> int | None:
        """Forget a worker that has exited: close its socket, drop its live gauges."""
        process, slot.process = slot.process, None
        if slot.control is not None:
            slot.control.close()
            slot.control = None
        slot.ready = False
        if process is None:
            return None
        if process.returncode is None:  # only when run() unwinds on an exception
            process.kill()
            process.wait()
        slot.exit_codes.append(process.returncode)
        with contextlib.suppress(OSError):
            mark_process_dead(process.pid, self.metrics_dir)
        return process.pid

    def _stop_all(self) -> bool:
        """SIGTERM every worker and wait for them; True when all exited 0 in time."""
        running = [s for s in self.slots if s.process is not None]
        for slot in running:
            assert slot.process is not None
            with contextlib.suppress(ProcessLookupError):
                slot.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.shutdown_timeout + KILL_MARGIN_S
        clean = True
        for slot in running:
            assert slot.process is not None
            try:
                code = slot.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.error("worker did not stop in time; killing it", extra={"worker": slot.index})
                slot.process.kill()
                code = slot.process.wait()
            clean = clean and code == 0
            self._reap(slot)
        log.info("all workers stopped", extra={"action": "shutdown", "clean": clean})
        return clean


def supervise(
    settings: Settings, shutdown_timeout: float, command: Command | None = None, loop: str = "auto"
) -> int:
    """Check the settings as a worker would (a bad one exits 2 here), then run the workers."""
    create_app(settings)  # builds nothing that needs closing: the pool opens only at start-up
    if settings.port == 0:
        raise SettingsError("--workers above 1 needs a fixed port: each worker binds the same one")
    if settings.admin_port and settings.admin_port == settings.port:
        raise SettingsError(f"--admin-port {settings.admin_port} must differ from --port (0 turns it off)")
    command = command or worker_command(settings, shutdown_timeout, loop)
    return Supervisor(settings.workers, command, shutdown_timeout=shutdown_timeout).run()
