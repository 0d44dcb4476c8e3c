"""How the operator is found and started: the installed package, ``kopf run`` by path, the commands."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import kopf
import pytest
from tenrusl_operator import cli, handlers

from tenrusl.settings import Settings, SettingsError
from tests.operator.conftest import (
    CRONJOBS,
    NAMESPACE,
    ROOT,
    WRP,
    Cluster,
    condition,
    cronjob_body,
    policy_body,
)

KOPF = Path(sys.executable).with_name("kopf")


def _handler_ids(registry: kopf.OperatorRegistry) -> set[str]:
    """Our handlers' ids (kopf's own fallback logins, present in its default registry, left out)."""
    found = [
        *registry._changing.get_all_handlers(),
        *registry._spawning.get_all_handlers(),
        *registry._activities.get_all_handlers(),
        *registry._watching.get_all_handlers(),
    ]
    return {h.id for h in found if not getattr(h, "_fallback", False)}


def test_the_installed_package_is_importable_as_tenrusl_operator() -> None:
    """``operator`` is a standard-library name, so the folder must be installed as ``tenrusl_operator``."""
    probe = "import operator, tenrusl_operator.handlers as h; print(operator.__file__); print(h.__file__)"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd="/", timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    stdlib_operator, handlers_file = done.stdout.split()
    assert "site-packages" not in stdlib_operator and not stdlib_operator.startswith(str(ROOT))
    assert Path(handlers_file).resolve() == (ROOT / "operator" / "handlers.py").resolve()


def test_loading_the_handlers_file_by_path_registers_every_handler() -> None:
    """What ``kopf run operator/handlers.py`` does: import by path, into kopf's default registry."""
    fresh = kopf.OperatorRegistry()
    saved = kopf.get_default_registry()
    kopf.set_default_registry(fresh)
    try:
        spec = importlib.util.spec_from_file_location("handlers_by_path", ROOT / "operator" / "handlers.py")
        assert spec is not None and spec.loader is not None
        spec.loader.exec_module(importlib.util.module_from_spec(spec))
    finally:
        kopf.set_default_registry(saved)
    expected = {
        "apply_policy",
        "on_event",
        "configure",
        "login",
        "disconnect",
        "reconciles",
    }
    assert expected <= _handler_ids(fresh)
    assert _handler_ids(fresh) == _handler_ids(saved), "the package import registers the same handlers"


async def test_kopf_run_on_the_file_reconciles_a_policy(cluster: Cluster, kubeconfig: Path) -> None:
    """A real ``kopf run --standalone -n payments operator/handlers.py`` process against the kmock server."""
    cluster.put(CRONJOBS, cronjob_body())
    cluster.put(WRP, policy_body(paused=True))
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    process = await asyncio.create_subprocess_exec(
        str(KOPF), "run", "--standalone", "-n", NAMESPACE, "--log-format=json", str(ROOT / "operator" / "handlers.py"),
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        await cluster.wait_for(
            lambda: condition(cluster.get(WRP, "default"), "Paused").get("status") == "True",
            within=30,
            what="the kopf run process to pause the CronJob",
        )
        assert cluster.must(CRONJOBS, "tenrusl-retry")["spec"]["suspend"] is True
    finally:
        process.terminate()
        output, _ = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, output.decode()[-3000:]


def test_console_script_and_command_are_declared() -> None:
    scripts = {ep.name: ep for ep in entry_points(group="console_scripts")}
    assert scripts["kubectl-tenrusl"].value == "tenrusl_operator.cli:plugin_main"
    commands = {ep.name: ep for ep in entry_points(group="tenrusl.commands")}
    assert commands["operator"].value == "tenrusl_operator.cli:register"
    assert commands["operator"].load() is cli.register
    assert scripts["kubectl-tenrusl"].load() is cli.plugin_main


WITHOUT_KUBERNETES = "import sys; sys.modules['kubernetes'] = sys.modules['kopf'] = None; "


@pytest.mark.parametrize(
    ("code", "exit_code", "what"),
    [
        ("from tenrusl_operator import cli; sys.exit(cli.plugin_main())", 1, "kubectl tenrusl"),
        (
            "from tenrusl.cli import main; sys.exit(main(['operator', '-n', 'payments']))",
            2,
            "tenrusl operator",
        ),
    ],
)
def test_without_the_kubernetes_client_the_operator_and_plugin_say_which_extra(
    code: str, exit_code: int, what: str
) -> None:
    """The receiver image leaves the Kubernetes client out; both commands then explain, no traceback."""
    done = subprocess.run([sys.executable, "-P", "-c", WITHOUT_KUBERNETES + code], capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert done.returncode == exit_code, done.stderr
    assert f"{what} needs the Kubernetes client" in done.stderr and "tenrusl[operator]" in done.stderr
    assert "Traceback" not in done.stderr


def _args(*argv: str) -> Any:
    import argparse

    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="command"))
    return parser.parse_args(["operator", *argv])


def test_operator_defaults_to_one_namespace_with_liveness() -> None:
    settings = cli.resolve(_args(), Settings.from_env({"TENRUSL_OPERATOR_NAMESPACE": "payments"}))
    assert cli.run_options(settings) == {
        "standalone": True,
        "namespaces": ["payments"],
        "liveness_endpoint": "http://0.0.0.0:8081/healthz",
    }


def test_operator_flags_override_their_env_twins() -> None:
    env = {"TENRUSL_OPERATOR_NAMESPACE": "payments", "TENRUSL_OPERATOR_LIVENESS_PORT": "9000"}
    settings = cli.resolve(_args("--all-namespaces", "--liveness-port", "0"), Settings.from_env(env))
    assert cli.run_options(settings) == {"standalone": True, "clusterwide": True}
    settings = cli.resolve(_args("-n", "eu"), Settings.from_env({"TENRUSL_OPERATOR_CLUSTERWIDE": "false"}))
    assert cli.run_options(settings)["namespaces"] == ["eu"]
    assert Settings.from_env({"TENRUSL_OPERATOR_CLUSTERWIDE": "1"}).operator_clusterwide is True


def test_the_metrics_port_reaches_the_startup_handler_through_kopfs_memo() -> None:
    """``tenrusl operator`` serves /metrics on 8080 unless told otherwise (0: not at all)."""
    assert cli.operator_memo(cli.resolve(_args(), Settings.from_env({}))).metrics_port == 8080  # type: ignore[attr-defined]
    env = {"TENRUSL_OPERATOR_METRICS_PORT": "9100"}
    assert cli.operator_memo(cli.resolve(_args(), Settings.from_env(env))).metrics_port == 9100  # type: ignore[attr-defined]
    off = cli.operator_memo(cli.resolve(_args("--metrics-port", "0"), Settings.from_env(env)))
    assert not hasattr(off, "metrics_port")


def test_operator_namespace_falls_back_to_the_kubeconfig_context(kubeconfig: Path) -> None:
    assert cli.run_options(Settings.from_env({}))["namespaces"] == ["payments"]


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"TENRUSL_OPERATOR_LIVENESS_PORT": "http"}, "TENRUSL_OPERATOR_LIVENESS_PORT"),
        ({"TENRUSL_OPERATOR_LIVENESS_PORT": "70000"}, "TENRUSL_OPERATOR_LIVENESS_PORT"),
        ({"TENRUSL_OPERATOR_CLUSTERWIDE": "maybe"}, "TENRUSL_OPERATOR_CLUSTERWIDE"),
    ],
)
def test_bad_operator_settings_name_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(SettingsError, match=variable):
        Settings.from_env(env)


def test_handlers_module_constants() -> None:
    assert handlers.RESOURCE == ("tenrusl.io", "v1alpha1", "webhookretrypolicies")
    assert handlers.TIMER_INTERVAL_S <= 30, "status may lag the CronJob by at most half a run"


def test_operator_logs_are_compact_json_lines() -> None:
    import io
    import json
    import logging

    from tenrusl.logs import JsonFormatter

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(cli.KopfFields())
    logger = logging.getLogger("kopf.objects.test")
    logger.addHandler(handler)
    try:
        ref = {"apiVersion": "tenrusl.io/v1alpha1", "kind": "WebhookRetryPolicy", "name": "default",
               "uid": "u", "namespace": "payments"}  # fmt: skip
        logger.warning("Handler 'apply_policy' succeeded.", extra={"k8s_ref": ref, "k8s_skip": False,
                                                                   "settings": object()})  # fmt: skip
    finally:
        logger.removeHandler(handler)
    entry = json.loads(stream.getvalue())
    assert entry["object"] == "payments/default" and entry["kind"] == "WebhookRetryPolicy"
    assert not {"k8s_ref", "k8s_skip", "settings"} & set(entry)
    assert entry["message"] == "Handler 'apply_policy' succeeded."
