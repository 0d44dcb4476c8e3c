"""``tenrusl serve --workers 2``: real processes on one loopback port, a real PostgreSQL.

Which worker served a request is read from the kernel, not from anything the receiver says: the
server end of each client connection is found in ``/proc/net/tcp`` and its owner among the
workers' open files (``/proc/<pid>/fd``). The supervisor's children come from
``/proc/<pid>/task/<pid>/children``.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from receiver.supervisor import Supervisor
from tenrusl.embedded import free_port
from tests.chaos.load import SignedLoad
from tests.receiver.helpers import mock_delivery

WORKERS = 2
LISTEN = "0A"
START_TIMEOUT_S = 20.0


def children(pid: int) -> set[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return {int(p) for p in text.split()}


def _tcp_rows() -> list[list[str]]:
    return [line.split() for line in Path("/proc/net/tcp").read_text().splitlines()[1:]]


def _port(address: str) -> int:
    return int(address.split(":")[1], 16)


def listening_inodes(port: int) -> set[str]:
    return {r[9] for r in _tcp_rows() if _port(r[1]) == port and r[3] == LISTEN}


def served_by(server_port: int, client_port: int, pids: set[int]) -> int:
    """The worker holding the server end of the connection from ``client_port``."""
    inodes = {r[9] for r in _tcp_rows() if _port(r[1]) == server_port and _port(r[2]) == client_port}
    assert len(inodes) == 1, inodes
    target = f"socket:[{inodes.pop()}]"
    for pid in pids:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                    return pid
    raise AssertionError(f"no worker holds {target}")


class Workers:
    """``tenrusl serve --workers 2`` as a child process; ``close()`` leaves nothing running."""

    def __init__(self, env: dict[str, str], tmp: Path) -> None:
        self.port = free_port()
        self.admin_port = int(env["TENRUSL_ADMIN_PORT"])
        self.tmp = tmp
        base = {k: v for k, v in os.environ.items() if not k.startswith(("TENRUSL_", "PROMETHEUS_"))}
        # TMPDIR: the supervisor's metrics folder is made here, where the test can look for it.
        self.env = {**base, **env, "TENRUSL_LOG_LEVEL": "WARNING", "TMPDIR": str(tmp)}
        self.log = tmp / "serve.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-P", "-m", "tenrusl.cli", "serve", "--workers", str(WORKERS),
                 "--host", "127.0.0.1", "--port", str(self.port), "--shutdown-timeout", "5"],
                env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        self.wait_for(lambda: len(self.pids()) == WORKERS and len(listening_inodes(self.port)) == WORKERS)
        self.wait_for(lambda: self.get("/ready")[0] == 200)

    def wait_for(self, condition: Callable[[], bool], timeout: float = START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"serve exited {self.process.returncode}:\n{self.log.read_text()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out:\n{self.log.read_text()}")
            time.sleep(0.05)

    def pids(self) -> set[int]:
        assert self.process is not None
        try:
            return children(self.process.pid)
        except FileNotFoundError:
            return set()

    def metrics_dirs(self) -> list[Path]:
        return sorted(self.tmp.glob("tenrusl-metrics-*"))

    def connect(self) -> http.client.HTTPConnection:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        conn.connect()
        return conn

    def get(self, path: str, port: int | None = None) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", port or self.port, timeout=10)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            return resp.status, resp.read()
        except OSError:
            return 0, b""
        finally:
            conn.close()

    def deliver(self, event_id: str) -> int:
        """One signed delivery on a new connection; returns the pid of the worker that answered 202."""
        body, headers = mock_delivery({"id": event_id, "type": "payment.succeeded", "status": "succeeded"})
        conn = self.connect()
        try:
            conn.request("POST", "/api/v1/webhooks/mock", body=body, headers=headers)
            resp = conn.getresponse()
            resp.read()
            assert resp.status == 202, resp.status
            assert conn.sock is not None
            return served_by(self.port, conn.sock.getsockname()[1], self.pids())
        finally:
            conn.close()

    def metric(self, name: str, **labels: str) -> float:
        status, body = self.get("/metrics", self.admin_port)  # the admin listener
        assert status == 200
        text = body.decode()
        assert 'pid="' not in text, "a gauge without a multiprocess mode (one series per worker)"
        total = 0.0
        for line in text.splitlines():
            match = re.fullmatch(rf"{name}(?:\{{(.*)\}})? (\S+)", line)
            if match and all(f'{k}="{v}"' in (match.group(1) or "") for k, v in labels.items()):
                total += float(match.group(2))
        return total

    def terminate(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=20)

    def close(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        leftovers = self.pids()
        self.process.kill()
        self.process.wait(timeout=10)
        for pid in leftovers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def workers(base_env: dict[str, str], tmp_path: Path) -> Iterator[Workers]:
    server = Workers(base_env, tmp_path)
    try:
        yield server
    finally:
        server.close()


def stored(db_url: str) -> list[str]:
    with psycopg.connect(db_url) as conn:
        return [r[0] for r in conn.execute("SELECT event_id FROM webhook_events ORDER BY event_id")]


def test_both_workers_serve_one_port_and_metrics_count_for_the_whole_server(
    workers: Workers, db_url: str
) -> None:
    workers.start()
    pids = workers.pids()
    assert len(workers.metrics_dirs()) == 1  # made fresh for this start

    served = Counter(workers.deliver(f"evt_workers_{n:03d}") for n in range(40))

    # The kernel spread the 40 connections over both workers, and each answered some.
    assert set(served) == pids, served
    assert stored(db_url) == sorted(f"evt_workers_{n:03d}" for n in range(40))
    # Every worker's /metrics gives the server's totals, whichever worker answers the scrape.
    for _ in range(6):
        assert workers.metric("tenrusl_webhooks_total", provider="mock") == 40
        assert workers.metric("tenrusl_http_requests_total", route="/api/v1/webhooks/{provider}") == 40
    assert workers.metric("tenrusl_db_up") == 1
    assert workers.metric("tenrusl_rate_limit_backend", backend="redis") == 1

    assert workers.terminate() == 0
    assert workers.metrics_dirs() == []  # cleaned on exit


async def test_sigterm_drains_every_worker_and_exits_0(workers: Workers, db_url: str) -> None:
    await asyncio.to_thread(workers.start)
    url = f"http://127.0.0.1:{workers.port}"
    load = SignedLoad(url, prefix="evt_drain", concurrency=16)
    async with load:
        await load.until(lambda: len(load.acknowledged) >= 200, 20, "the warm-up")
        code = await asyncio.to_thread(workers.terminate)
    assert code == 0, workers.log.read_text()
    # Answers: 202 until the workers stopped listening, then refused; never a 5xx.
    assert set(load.statuses()) <= {202, None}, load.summary()
    assert load.acknowledged <= set(stored(db_url)), "acknowledged but not stored"
    assert workers.metrics_dirs() == []


def test_a_killed_worker_is_restarted_and_its_counts_stay(workers: Workers) -> None:
    workers.start()
    before = workers.pids()
    for n in range(10):
        workers.deliver(f"evt_restart_a{n}")
    victim = min(before)
    os.kill(victim, signal.SIGKILL)

    workers.wait_for(lambda: len(workers.pids()) == WORKERS and victim not in workers.pids())
    workers.wait_for(lambda: len(listening_inodes(workers.port)) == WORKERS)
    assert workers.pids() & before == before - {victim}  # only the dead one was replaced
    for n in range(10):
        workers.deliver(f"evt_restart_b{n}")
    # The dead worker's counts stay in the totals (its file is kept; only live gauges go).
    assert workers.metric("tenrusl_webhooks_total", provider="mock") == 20
    assert "worker died; restarting" in workers.log.read_text()
    assert workers.terminate() == 0


def test_a_worker_that_cannot_start_stops_the_server(base_env: dict[str, str], tmp_path: Path) -> None:
    server = Workers(base_env, tmp_path)
    taken = socket.socket()  # a listener without SO_REUSEPORT: the workers cannot bind beside it
    try:
        taken.bind(("127.0.0.1", server.port))
        taken.listen()
        server.process = subprocess.Popen(
            [sys.executable, "-P", "-m", "tenrusl.cli", "serve", "--workers", "2",
             "--host", "127.0.0.1", "--port", str(server.port)],
            env=server.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
        )  # fmt: skip
        _, err = server.process.communicate(timeout=30)
    finally:
        taken.close()
        server.close()
    assert server.process.returncode == 1, err.decode()
    assert b"worker failed to start" in err
    assert server.metrics_dirs() == []


# A stand-in worker: says it listens, then dies after a moment, every time it is started.
_DYING = "import socket, sys, time; socket.socket(fileno=int(sys.argv[1])).send(b'R'); time.sleep(0.2); sys.exit(3)"


def test_a_worker_that_keeps_dying_makes_the_supervisor_give_up(tmp_path: Path) -> None:
    supervisor = Supervisor(
        2,
        lambda fd: [sys.executable, "-P", "-c", _DYING, str(fd)],
        shutdown_timeout=1,
        env={**os.environ, "TMPDIR": str(tmp_path)},
    )
    supervisor.max_restarts, supervisor.backoff_first_s = 3, 0.01
    assert supervisor.run() == 1
    codes = [c for slot in supervisor.slots for c in slot.exit_codes]
    # Two first starts, three restarts, the fourth death gives up (the other one is stopped).
    assert codes.count(3) >= 4, codes
    assert list(tmp_path.iterdir()) == []
