"""Start-up: a bad provider setting stops the receiver before it serves, naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable

import pytest

from receiver.app import create_app
from receiver.keys import PROVIDERS
from receiver.server import loop_factory
from tenrusl.embedded import free_port
from tenrusl.settings import Settings, SettingsError


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("TENRUSL_DANA_PUBLIC_KEY", "not-a-key"),
        ("TENRUSL_PADDLE_PUBLIC_KEY", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"),
        ("TENRUSL_SKRILL_SIGNATURE_MODE", "bogus"),
        ("TENRUSL_PAYPAL_ENV", "staging"),
        ("TENRUSL_STRIPE_LEEWAY_SECONDS", "0"),
        ("TENRUSL_AMZN_BWP_JWKS_TTL_SECONDS", "a day"),
    ],
)
def test_create_app_refuses_a_bad_provider_setting(
    make_settings: Callable[..., Settings], variable: str, value: str
) -> None:
    with pytest.raises(SettingsError, match=variable):
        create_app(make_settings(**{variable: value}))


def test_a_provider_outside_the_allowlist_is_not_checked(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(TENRUSL_PROVIDERS_ALLOWLIST="mock", TENRUSL_DANA_PUBLIC_KEY="not-a-key")
    app = create_app(settings)  # dana is not served, so its key is not this receiver's concern
    providers = app[PROVIDERS]
    assert set(providers) == {"mock"}


@pytest.mark.parametrize(
    ("variable", "value"),
    [("TENRUSL_DANA_PUBLIC_KEY", "not-a-key"), ("TENRUSL_WORKERS", "0")],
)
def test_serve_exits_2_naming_the_variable(base_env: dict[str, str], variable: str, value: str) -> None:
    """A bad setting stops ``tenrusl serve`` (and the workers' supervisor) before anything starts."""
    env = {**os.environ, **base_env, variable: value, "TENRUSL_PORT": str(free_port())}
    result = subprocess.run(
        [sys.executable, "-P", "-m", "tenrusl.cli", "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert variable in result.stderr and "Traceback" not in result.stderr


def test_loop_choice() -> None:
    """``--loop auto`` is uvloop where installed (it is a dependency), ``asyncio`` the stdlib's."""
    import uvloop

    assert loop_factory("asyncio") is None
    assert loop_factory("auto") is uvloop.new_event_loop
    assert loop_factory("uvloop") is uvloop.new_event_loop


def test_serve_refuses_an_unknown_loop(base_env: dict[str, str]) -> None:
    env = {**os.environ, **base_env, "TENRUSL_PORT": str(free_port())}
    result = subprocess.run(
        [sys.executable, "-P", "-m", "tenrusl.cli", "serve", "--loop", "trio"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "--loop" in result.stderr, (result.stdout, result.stderr)


def test_serve_says_where_both_listeners_are_and_serves_metrics_only_on_the_admin_one(
    base_env: dict[str, str],
) -> None:
    """`tenrusl serve` outside Kubernetes: the webhook port and the admin port, named in its first log line."""
    import json
    import signal
    import time
    import urllib.error
    import urllib.request

    port, admin_port = free_port(), free_port()
    env = {**os.environ, **base_env, "TENRUSL_PORT": str(port), "TENRUSL_ADMIN_PORT": str(admin_port)}
    proc = subprocess.Popen(
        [sys.executable, "-P", "-m", "tenrusl.cli", "serve"], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + 60
        listening = None
        while listening is None and time.monotonic() < deadline:
            line = proc.stderr.readline()
            if '"receiver listening"' in line:
                listening = json.loads(line)
        assert listening is not None, "no listening line"
        assert listening["url"] == f"http://127.0.0.1:{port}"
        assert listening["admin_url"] == f"http://127.0.0.1:{admin_port}"
        with urllib.request.urlopen(f"{listening['admin_url']}/metrics", timeout=10) as answer:
            assert answer.status == 200
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{listening['url']}/metrics", timeout=10)
        assert refused.value.code == 404
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
