"""The external tools of the chart and image tests, fetched or built by ``scripts/ensure-tools``.

helm comes from a PyPI wheel and the image is built with podman on a Debian base made with
mmdebstrap, all cached under ``~/.cache/tenrusl``. Where podman (or mmdebstrap) is not installed
the tests that need it skip, naming the missing tool; ``.ci/run`` installs them, so CI runs them.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ENSURE = ROOT / "scripts" / "ensure-tools"
EXIT_MISSING_TOOL = 3
# This machine's podman: runc and cgroupfs (crun rejects hybrid cgroups), ulimits below the hard limits.
PODMAN = ["podman", "--cgroup-manager=cgroupfs", "--runtime", "runc"]
ULIMITS = ["--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096"]


def ensure(what: str, timeout: float = 900) -> str:
    """Run ``scripts/ensure-tools WHAT``; its one line of output (a path or an image name)."""
    done = subprocess.run([str(ENSURE), what], capture_output=True, text=True, timeout=timeout)
    if done.returncode == EXIT_MISSING_TOOL:
        pytest.skip(done.stderr.strip().splitlines()[-1])
    assert done.returncode == 0, f"scripts/ensure-tools {what} failed:\n{done.stderr[-3000:]}"
    return done.stdout.strip().splitlines()[-1]


def require_podman() -> None:
    for tool in ("podman", "runc"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (.ci/run installs it)")
