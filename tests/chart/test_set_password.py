"""The bundled PostgreSQL's set-password init container, run for real: the script the chart renders,
on a data directory initialised with another password, with a real PostgreSQL's binaries.

The postgres image reads POSTGRES_PASSWORD only when it initialises an empty volume; this script
makes the role's password the Secret's at every start, so a Secret re-created at a reinstall, or a
password set later, never drifts from the data. Needs PostgreSQL's server binaries (Debian's
postgresql package, which .ci/run installs) and root, to run them as the postgres user.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tenrusl.embedded import free_port
from tests.chart.conftest import RELEASE, Render, one

BINARIES = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
USER = "tenrusl"
FIRST, LATER = "first-pass-1", "it's a $new\"pass`word"


def postgres_bin() -> Path:
    if not BINARIES or not Path(BINARIES[-1], "postgres").exists():
        pytest.skip("PostgreSQL's server binaries are not installed (apt-get install postgresql)")
    if os.geteuid() != 0 or shutil.which("runuser") is None:
        pytest.skip("runs PostgreSQL as the postgres user: needs root and runuser")
    return Path(BINARIES[-1])


def as_postgres(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["runuser", "-u", "postgres", "--", "env", *[f"{k}={v}" for k, v in (env or {}).items()], *args],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.fixture
def postgres_dir() -> Iterator[Path]:
    """A folder of the postgres user's (pytest's own temporary folders are root's alone)."""
    root = Path(tempfile.mkdtemp(prefix="tenrusl-set-password-"))
    shutil.chown(root, "postgres")
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def data_dir(postgres_dir: Path) -> Iterator[tuple[Path, Path]]:
    """An initialised data directory whose role has the password FIRST (as after a first install)."""
    binaries = postgres_bin()
    root = postgres_dir
    (root / "pw").write_text(FIRST + "\n")
    shutil.chown(root / "pw", "postgres")
    done = as_postgres(str(binaries / "initdb"), "-D", str(root / "pgdata"), "-U", USER, "--auth=scram-sha-256",
                       f"--pwfile={root / 'pw'}", "-E", "UTF8")  # fmt: skip
    assert done.returncode == 0, done.stderr
    yield binaries, root


def script(render: Render) -> str:
    sts = one(render(), "StatefulSet", f"{RELEASE}-postgresql")
    (init,) = sts["spec"]["template"]["spec"]["initContainers"]
    assert init["name"] == "set-password" and init["command"] == ["sh", "-c"]
    return str(init["args"][0])


def run_script(render: Render, binaries: Path, root: Path, user: str, password: str) -> Any:
    path = root / "set-password.sh"
    path.write_text(script(render))
    shutil.chown(path, "postgres")
    env = {"PATH": f"{binaries}:/usr/bin:/bin", "PGDATA": str(root / "pgdata"), "POSTGRES_USER": user,
           "POSTGRES_DB": "postgres", "POSTGRES_PASSWORD": password}  # fmt: skip
    return as_postgres("sh", str(path), env=env)


def can_log_in(binaries: Path, root: Path, password: str) -> bool:
    port = free_port()
    started = as_postgres(str(binaries / "pg_ctl"), "-D", str(root / "pgdata"), "-l", str(root / "log"), "-w",
                          "-o", f"-h 127.0.0.1 -p {port} -k {root}", "start")  # fmt: skip
    assert started.returncode == 0, started.stderr
    try:
        with psycopg.connect(host="127.0.0.1", port=port, user=USER, password=password, dbname="postgres"):
            return True
    except psycopg.OperationalError as exc:
        assert "password authentication failed" in str(exc)
        return False
    finally:
        as_postgres(str(binaries / "pg_ctl"), "-D", str(root / "pgdata"), "-w", "stop")


def test_the_role_gets_the_secrets_password_at_start(render: Render, data_dir: tuple[Path, Path]) -> None:
    binaries, root = data_dir
    done = run_script(render, binaries, root, USER, LATER)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "role tenrusl has the Secret's password" in done.stdout
    assert can_log_in(binaries, root, LATER) and not can_log_in(binaries, root, FIRST)
    assert LATER not in (root / "log").read_text(), "the password is never logged"


def test_a_failure_is_reported_without_the_password(render: Render, data_dir: tuple[Path, Path]) -> None:
    binaries, root = data_dir
    done = run_script(render, binaries, root, "renamed_user", LATER)
    assert done.returncode == 1
    assert 'role "renamed_user" does not exist' in done.stdout
    assert "pass`word" not in done.stdout + done.stderr


def test_an_empty_volume_is_left_to_the_images_initialisation(render: Render, postgres_dir: Path) -> None:
    done = run_script(render, postgres_bin(), postgres_dir, USER, LATER)
    assert done.returncode == 0 and "an empty volume" in done.stdout
