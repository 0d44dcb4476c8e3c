"""``tenrusl operator``: run the kopf operator with JSON logs, a liveness endpoint and clean shutdown.

Namespace-scoped by default (the pod's own namespace, so the operator needs only a namespaced
Role); ``--all-namespaces`` watches the whole cluster (and then needs a ClusterRole). Each flag has
an environment twin in :class:`tenrusl.settings.Settings`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os

from tenrusl_operator import crd

from tenrusl.cli import with_flags
from tenrusl.logs import configure_logging
from tenrusl.settings import Settings, SettingsError

HELP_NAMESPACE = (
    "namespace to watch (env TENRUSL_OPERATOR_NAMESPACE; default: the pod's own, or the kubeconfig context's)"
)
HELP_ALL = "watch every namespace (env TENRUSL_OPERATOR_CLUSTERWIDE); needs a ClusterRole"
HELP_LIVENESS = (
    "port of the liveness endpoint GET /healthz, 0 turns it off (env TENRUSL_OPERATOR_LIVENESS_PORT)"
)
HELP_METRICS = (
    "port of GET /metrics (the effective retry policies: paused, cap), 0 turns it off "
    "(env TENRUSL_OPERATOR_METRICS_PORT)"
)

log = logging.getLogger("tenrusl.operator")


class KopfFields(logging.Filter):
    """Make kopf's per-object records compact JSON: the object as ``ns/name``, not kopf's internals.

    kopf attaches its settings, a skip flag and the full object reference to every record, which
    the JSON formatter would print whole on every line.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        ref = record.__dict__.pop("k8s_ref", None)
        record.__dict__.pop("k8s_skip", None)
        record.__dict__.pop("settings", None)
        if isinstance(ref, dict):
            record.__dict__.setdefault(
                "object", f"{ref.get('namespace') or ''}/{ref.get('name')}".lstrip("/")
            )
            record.__dict__.setdefault("kind", ref.get("kind"))
        return True


def configure_operator_logging(level: str) -> None:
    """The core's JSON logs, with :class:`KopfFields` on the JSON handler."""
    configure_logging(level)
    for handler in logging.getLogger().handlers:
        if getattr(handler, "_tenrusl", False):
            handler.addFilter(KopfFields())


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "operator", help="run the WebhookRetryPolicy operator (pause and tune retries with kubectl)"
    )
    parser.add_argument("--namespace", "-n", default=None, help=HELP_NAMESPACE)
    parser.add_argument("--all-namespaces", "-A", action="store_true", default=None, help=HELP_ALL)
    parser.add_argument("--liveness-port", type=int, default=None, help=HELP_LIVENESS)
    parser.add_argument("--metrics-port", type=int, default=None, help=HELP_METRICS)
    parser.set_defaults(handler=_run)


FLAG_SETTINGS = {
    "namespace": "operator_namespace",
    "all_namespaces": "operator_clusterwide",
    "liveness_port": "operator_liveness_port",
    "metrics_port": "operator_metrics_port",
}


def resolve(args: argparse.Namespace, settings: Settings) -> Settings:
    """Flags over environment: the settings this run uses."""
    return with_flags(settings, args, FLAG_SETTINGS)


def default_namespace() -> str:
    """The pod's own namespace, else the kubeconfig context's, like kubectl."""
    from tenrusl_operator import kube

    return kube.connect().namespace


def run_options(settings: Settings) -> dict[str, object]:
    """The keyword arguments of ``kopf.run`` for these settings."""
    options: dict[str, object] = {"standalone": True}
    if settings.operator_clusterwide:
        options["clusterwide"] = True
    else:
        options["namespaces"] = [settings.operator_namespace or default_namespace()]
    if settings.operator_liveness_port:
        options["liveness_endpoint"] = f"http://0.0.0.0:{settings.operator_liveness_port}/healthz"
    return options


def operator_memo(settings: Settings, namespaces: list[str] | None = None) -> object:
    """kopf's root memo: what the handlers need from the settings.

    The metrics port, the namespaces watched (None: all), the release served, and the chart's
    policy to create when it is missing (its namespace defaults to the one watched).
    """
    import kopf

    memo = kopf.Memo()
    if settings.operator_metrics_port:
        memo.metrics_port = settings.operator_metrics_port
    memo.namespaces = namespaces
    memo.release = settings.operator_release
    if settings.operator_policy:
        policy = json.loads(json.dumps(dict(settings.operator_policy)))  # a plain, mutable copy
        metadata = policy.setdefault("metadata", {})
        if not metadata.get("namespace"):
            if not namespaces:
                raise SettingsError("TENRUSL_OPERATOR_POLICY needs metadata.namespace with --all-namespaces")
            metadata["namespace"] = namespaces[0]
        if policy.get("kind") != crd.KIND or not metadata.get("name"):
            raise SettingsError(f"TENRUSL_OPERATOR_POLICY must be a {crd.KIND} manifest with metadata.name")
        memo.policy = policy
    return memo


MISSING_EXTRA = (
    "{what} needs the Kubernetes client, which this installation leaves out: pip install "
    "'tenrusl[operator]' (the receiver image has none; the operator image has it)"
)


def plugin_main() -> int:
    """The ``kubectl-tenrusl`` console script: the plugin, or one clear line when it cannot run."""
    import sys

    try:
        from tenrusl_operator import plugin
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in ("kubernetes", "kopf", "urllib3"):
            raise
        print(f"error: {MISSING_EXTRA.format(what='kubectl tenrusl')}", file=sys.stderr)
        return 1
    return plugin.main()


def _run(args: argparse.Namespace, settings: Settings) -> int:
    try:
        import kopf
        from tenrusl_operator import handlers  # importing registers the handlers with kopf
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in ("kubernetes", "kopf"):
            raise
        raise SettingsError(MISSING_EXTRA.format(what="tenrusl operator")) from None

    settings = resolve(args, settings)
    configure_operator_logging(settings.log_level)
    options = run_options(settings)
    log.info(
        "operator starting",
        extra={"action": "start", "pid": os.getpid(), "handlers": handlers.__name__, **options},
    )
    # kopf.run installs SIGTERM/SIGINT handlers: in-flight handlers finish, then it returns.
    namespaces = options.get("namespaces")
    memo = operator_memo(settings, list(namespaces) if isinstance(namespaces, list) else None)
    kopf.run(**options, memo=memo)  # type: ignore[arg-type]
    log.info("operator stopped", extra={"action": "stop"})
    return 0
