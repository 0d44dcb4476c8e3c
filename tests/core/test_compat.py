"""The schema records the oldest code it serves; older code refuses to start, and /ready says so.

The refusal is shown the way an operator meets it: the real ``tenrusl`` commands (migrate, the
retry runner, serve, one worker or several) against a database whose recorded version is newer
than this code, and a receiver that was already running when a newer release moved the schema on.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tomllib
from typing import Any

import psycopg
import pytest
import yaml

from tenrusl import __version__
from tenrusl.compat import Compatibility, refusal, too_old
from tenrusl.db import Connection
from tenrusl.embedded import free_port
from tenrusl.version import code_version, release
from tests.tools import ROOT

NEWER = "99.0.0"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.1.0", (0, 1)),
        ("0.2", (0, 2)),
        ("0.2.0", (0, 2)),
        ("0.2.0rc1", (0, 2)),
        ("0.2.0.dev3+local", (0, 2)),
        ("1.10.0", (1, 10)),
        ("v2.0.1", (2, 0, 1)),
    ],
)
def test_release_orders_by_the_release_segment(text: str, expected: tuple[int, ...]) -> None:
    assert release(text) == expected


@pytest.mark.parametrize(
    ("code", "oldest", "refused"),
    [
        ("0.2.0", None, False),  # a schema from before the table serves everyone
        ("0.2.0", "0.1.0", False),
        ("0.2.0", "0.2.0", False),
        ("0.2.0", "0.2", False),
        ("0.9.0", "0.10.0", True),  # numeric, not text order
        ("0.2.0", "0.3.0", True),
        ("1.0.0", "0.3.0", False),
    ],
)
def test_code_older_than_the_recorded_version_is_refused(
    code: str, oldest: str | None, refused: bool
) -> None:
    compat = Compatibility(oldest, "0099_contract")
    assert too_old(code, compat) is refused
    if refused:
        assert oldest is not None and oldest in refusal(code, compat) and code in refusal(code, compat)


def test_the_version_is_written_once_and_the_chart_follows_it() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert __version__ == code_version() == pyproject
    chart = yaml.safe_load((ROOT / "charts" / "tenrusl" / "Chart.yaml").read_text())
    assert chart["version"] == pyproject and chart["appVersion"] == pyproject
    production = yaml.safe_load((ROOT / "charts" / "tenrusl" / "ci" / "production-values.yaml").read_text())
    assert production["image"]["tag"] == pyproject, "the production example pins this release's image"
    # Nowhere else: the image label comes from the build argument (scripts/ensure-tools passes it).
    assert f"={pyproject}" not in (ROOT / "Dockerfile").read_text()
    assert f'__version__ = "{pyproject}"' not in (ROOT / "tenrusl" / "__init__.py").read_text()


async def test_migrations_record_that_this_release_still_serves_the_previous_one(db: Connection) -> None:
    row = await (await db.execute("SELECT oldest_code_version, set_by FROM tenrusl_compatibility")).fetchone()
    assert row is not None and row["oldest_code_version"] == "0.1.0"
    assert not too_old(__version__, Compatibility(row["oldest_code_version"]))
    with pytest.raises(psycopg.errors.UniqueViolation):
        await db.execute(
            "INSERT INTO tenrusl_compatibility (oldest_code_version, set_by) VALUES ('0.1.0', 'x')"
        )


async def make_the_schema_newer(db: Connection) -> None:
    """What a future contracting migration does: the schema no longer serves this version."""
    await db.execute(
        "UPDATE tenrusl_compatibility SET oldest_code_version = %s, set_by = '0099_contract'", (NEWER,)
    )


def run_tenrusl(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-P", "-m", "tenrusl.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.parametrize(
    "command",
    [
        ("migrate",),
        ("retry", "once"),
        ("status",),
        ("serve",),
        ("serve", "--workers=2"),
    ],
    ids=lambda c: " ".join(c),
)
async def test_every_process_refuses_to_start_on_a_schema_that_no_longer_serves_it(
    db: Connection, base_env: dict[str, str], command: tuple[str, ...]
) -> None:
    await make_the_schema_newer(db)
    env = {**base_env, "TENRUSL_PORT": str(free_port()), "TENRUSL_ADMIN_PORT": str(free_port())}
    done = await asyncio.to_thread(run_tenrusl, env, *command)
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert f"this is TenRusl {__version__}" in done.stderr and f"TenRusl {NEWER} and newer" in done.stderr
    assert "0099_contract" in done.stderr
    assert "Traceback" not in done.stderr, done.stderr


async def test_a_running_receiver_reports_code_too_old_on_ready(client: Any, db: Connection) -> None:
    assert (await client.get("/ready")).status == 200
    await make_the_schema_newer(db)
    answer = await client.get("/ready")
    body = await answer.json()
    assert answer.status == 503 and body["error"]["code"] == "code_too_old"
    assert NEWER in body["error"]["message"] and __version__ in body["error"]["message"]
    assert (await client.get("/up")).status == 200, "liveness stays up: restarting would not help"
