"""``kubectl tenrusl``: pause, resume, inspect and tune retries from a terminal during an incident.

Installed as the console script ``kubectl-tenrusl``, so kubectl finds it as a plugin. Every
command is a merge patch of the policy's spec, the same as
``kubectl patch wrp NAME --type merge -p '{"spec": {...}}'``; ``pause`` and ``resume`` then wait
until the operator confirms with the ``Paused`` condition, because an unconfirmed pause has not
stopped anything. When the operator is down, ``--without-operator`` does its work for this one
change (the policy file and the CronJob's suspend, with the user's own rights) instead of waiting.
Exit codes: 0 done, 1 failed or not confirmed, 2 bad usage.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import urllib3.exceptions
from kubernetes.client.exceptions import ApiException
from tenrusl_operator import crd, kube, reconcile

from tenrusl.policy import KNOB, KNOBS, Knob, PolicyError, RetryPolicy

DEFAULT_NAME = "default"
# The knobs a WebhookRetryPolicy spec holds (the others are environment only).
TUNABLE = tuple(knob for knob in KNOBS if knob.file_key)
RESUME_KNOBS = tuple(knob for knob in TUNABLE if str(knob.file_key).startswith("resume."))
POLL_S = 0.1
RUNS_SHOWN = 5
WITHOUT_OPERATOR_HELP = (
    "the operator is down: write the policy file and set the CronJob's suspend yourself (your own "
    "rights: patch cronjobs, create/patch configmaps) instead of waiting for it to confirm"
)


class PluginError(Exception):
    """A failure explained in one line to the person at the keyboard."""


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-n", "--namespace", default=argparse.SUPPRESS, help="namespace of the policy")
    common.add_argument("--context", default=argparse.SUPPRESS, help="kubeconfig context to use")
    common.add_argument("--kubeconfig", default=argparse.SUPPRESS, help="kubeconfig file (else KUBECONFIG)")
    parser = argparse.ArgumentParser(
        prog="kubectl tenrusl",
        parents=[common],
        description="Pause, resume, inspect and tune TenRusl webhook retries (WebhookRetryPolicy).",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    name_help = "policy name (default: the only policy in the namespace, else 'default')"
    wait_help = "seconds to wait for the operator to confirm (0: do not wait)"
    for verb, text in (
        ("pause", "stop retries: suspend the retry CronJob"),
        ("resume", "start retries again, the per-run cap climbing gradually (spec.resume)"),
    ):
        sub = commands.add_parser(verb, parents=[common], help=text)
        sub.add_argument("name", nargs="?", help=name_help)
        sub.add_argument("--wait", type=float, default=10.0, metavar="SECONDS", help=wait_help)
        sub.add_argument("--without-operator", action="store_true", help=WITHOUT_OPERATOR_HELP)
        if verb == "resume":  # the gradual resume's knobs, set with the resume itself
            for knob in RESUME_KNOBS:
                sub.add_argument(knob.flag, type=int, help=_knob_help(knob))
        sub.set_defaults(run=_pause if verb == "pause" else _resume)
    sub = commands.add_parser("status", parents=[common], help="the policy, its CronJob and the last runs")
    sub.add_argument("name", nargs="?", help=name_help)
    sub.set_defaults(run=_status)
    tune_help = "change the per-run limit, batch size, attempts, backoff or resume ramp"
    sub = commands.add_parser("tune", parents=[common], help=tune_help)
    sub.add_argument("name", nargs="?", help=name_help)
    for knob in TUNABLE:  # one flag per policy knob, its help from the policy table
        if knob.choices:
            sub.add_argument(knob.flag, choices=knob.choices, help=_knob_help(knob))
        else:
            sub.add_argument(knob.flag, type=int, help=_knob_help(knob))
    sub.add_argument("--providers", help="comma-separated providers to retry, or 'all'")
    sub.set_defaults(run=_tune)
    return parser


def _knob_help(knob: Knob) -> str:
    return f"{knob.meaning} ({knob.bounds}; default {knob.default})"


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        conn = kube.connect(getattr(args, "context", None), getattr(args, "kubeconfig", None))
        namespace = getattr(args, "namespace", None) or conn.namespace
        run: Callable[[kube.Connection, str, argparse.Namespace], int] = args.run
        try:
            return run(conn, namespace, args)
        finally:
            conn.api.close()
    except PluginError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except kube.KubeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except ApiException as exc:
        print(f"error: the API server answered {exc.status}: {kube.api_message(exc)}", file=sys.stderr)
        return 1
    except urllib3.exceptions.HTTPError as exc:
        print(f"error: cannot reach the Kubernetes API server: {exc}", file=sys.stderr)
        return 1


# --- commands --------------------------------------------------------------------------------


def _pause(conn: kube.Connection, namespace: str, args: argparse.Namespace) -> int:
    return _set_paused(conn, namespace, args, paused=True)


def _resume(conn: kube.Connection, namespace: str, args: argparse.Namespace) -> int:
    return _set_paused(conn, namespace, args, paused=False)


def _set_paused(conn: kube.Connection, namespace: str, args: argparse.Namespace, *, paused: bool) -> int:
    name = _resolve_name(conn, namespace, args.name)
    change: dict[str, Any] = {"paused": paused}
    if not paused:
        change.update(tune_patch(args, RESUME_KNOBS))
    if "resume" in change:
        current = dict(kube.get_policy(conn.api, namespace, name).get("spec") or {})
        try:
            reconcile.policy_from_spec(_merged(current, change), {})
        except (PolicyError, crd.SpecError) as exc:
            raise PluginError(f"refusing to resume {namespace}/{name}: {exc}") from None
    policy = kube.patch_policy_spec(conn.api, namespace, name, change)
    verb = "paused" if paused else "resumed"
    print(f"webhookretrypolicy {namespace}/{name}: spec.paused={str(paused).lower()}")
    if args.without_operator:
        print(apply_without_operator(conn, policy))
        return 0
    if args.wait <= 0:
        return 0
    want = "True" if paused else "False"
    started = time.monotonic()
    while True:
        policy = kube.get_policy(conn.api, namespace, name)
        condition = _conditions(policy).get(reconcile.PAUSED) or {}
        if condition.get("status") == want:
            print(f"{verb}: confirmed by the operator in {time.monotonic() - started:.1f}s")
            if not paused:
                print(_ramp_text(policy))
            return 0
        if time.monotonic() - started >= args.wait:
            degraded = _conditions(policy).get(reconcile.DEGRADED) or {}
            why = f" Degraded: {degraded.get('message')}." if degraded.get("status") == "True" else ""
            print(
                f"error: the operator has not confirmed within {args.wait:g}s.{why} "
                f"Check 'kubectl tenrusl status {name} -n {namespace}' and the operator's logs.",
                file=sys.stderr,
            )
            return 1
        time.sleep(POLL_S)


def apply_without_operator(conn: kube.Connection, policy: Mapping[str, Any]) -> str:
    """Do the operator's part of a pause or resume: the same policy file, the same suspend.

    Through the operator's own functions (tenrusl_operator.reconcile), so the runner reads the file
    it would have written; the same ownership rules hold (a ConfigMap or CronJob that is not
    TenRusl's is refused). Status stays the operator's: it reconciles when it is back.
    """
    meta, spec, status = policy.get("metadata") or {}, policy.get("spec") or {}, policy.get("status") or {}
    namespace, name = meta["namespace"], meta["name"]
    try:
        applied = reconcile.policy_from_spec(spec, reconcile.source_of(meta))
    except (PolicyError, crd.SpecError) as exc:
        raise PluginError(f"the policy's spec is invalid, nothing applied: {exc}") from None
    times = reconcile.pause_times(applied.paused, status, datetime.now(UTC))
    applied = reconcile.with_pause_times(applied, times)
    cj_name, cm_name = reconcile.cronjob_name(spec), reconcile.configmap_name(name, spec)
    cronjob = kube.read_cronjob(conn.api, namespace, cj_name)
    if cronjob is None:
        raise PluginError(f"CronJob {namespace}/{cj_name} not found; nothing applied")
    refused = reconcile.cronjob_refusal(cronjob, (meta.get("labels") or {}).get(reconcile.INSTANCE_LABEL, ""))
    if refused:
        raise PluginError(f"refusing CronJob {namespace}/{cj_name}: {refused}")
    written = kube.ensure_configmap(conn.api, reconcile.render_configmap(cm_name, meta, applied))
    if written == "foreign":
        raise PluginError(
            f"refusing ConfigMap {namespace}/{cm_name}: the operator did not write it for this policy"
        )
    kube.set_suspend(conn.api, namespace, cj_name, applied.paused)
    paused = str(applied.paused).lower()
    return (
        f"applied without the operator: ConfigMap {cm_name} {written} (paused={paused}), "
        f"CronJob {cj_name} spec.suspend={paused}; the policy's status is updated when the operator is back"
    )


def _tune(conn: kube.Connection, namespace: str, args: argparse.Namespace) -> int:
    name = _resolve_name(conn, namespace, args.name)
    change = tune_patch(args)
    if not change:
        raise PluginError(
            "nothing to tune: give at least one of --limit, --batch-size, --mode, --base-ms, --cap-ms, ..."
        )
    current = dict(kube.get_policy(conn.api, namespace, name).get("spec") or {})
    try:
        before = reconcile.policy_from_spec(current, {})
    except (PolicyError, crd.SpecError):
        before = None
    try:
        after = reconcile.policy_from_spec(_merged(current, change), {})
    except (PolicyError, crd.SpecError) as exc:
        raise PluginError(f"refusing to tune {namespace}/{name}: {exc}") from None
    kube.patch_policy_spec(conn.api, namespace, name, change)
    print(f"webhookretrypolicy {namespace}/{name} tuned:")
    for label, old, new in _differences(before, after):
        print(f"  {label:<14} {old} -> {new}")
    return 0


def tune_patch(args: argparse.Namespace, knobs: Sequence[Knob] = TUNABLE) -> dict[str, Any]:
    """The spec merge patch the ``tune`` (or ``resume``) flags ask for."""
    change: dict[str, Any] = {}
    for knob in knobs:
        value = getattr(args, knob.field, None)
        if value is not None:
            *parents, leaf = str(knob.file_key).split(".")
            node = change
            for parent in parents:
                node = node.setdefault(parent, {})
            node[leaf] = value
    if getattr(args, "providers", None) is not None:
        names = [p.strip().lower() for p in args.providers.split(",") if p.strip()]
        change["providers"] = [] if names == ["all"] else names
    return change


def _merged(spec: Mapping[str, Any], change: Mapping[str, Any]) -> dict[str, Any]:
    """What a merge patch makes of ``spec``: objects merge key by key, other values replace."""
    out = dict(spec)
    for key, value in change.items():
        old = out.get(key)
        out[key] = _merged(old, value) if isinstance(value, Mapping) and isinstance(old, Mapping) else value
    return out


def _ramp_text(policy: Mapping[str, Any]) -> str:
    """One line on the gradual resume that the operator just started (from the spec and status)."""
    spec, status = policy.get("spec") or {}, policy.get("status") or {}
    resume = spec.get("resume") or {}
    limit = spec.get("limit", KNOB["limit"].default)
    minutes = resume.get("rampMinutes", KNOB["ramp_minutes"].default)
    if not minutes:
        return f"no gradual resume (spec.resume.rampMinutes 0): runs handle up to {limit} events at once"
    floor = min(resume.get("floor", KNOB["ramp_floor"].default), limit)
    return (
        f"gradual resume: the per-run cap climbs from {floor} to {limit} events over {minutes} min "
        f"(now {status.get('cap', '?')}; watch the Cap column of 'kubectl get wrp')"
    )


def _differences(before: Any, after: Any) -> list[tuple[str, Any, Any]]:
    fields = [(str(knob.file_key), knob.field) for knob in TUNABLE] + [("providers", "providers")]
    rows = []
    for label, attr in fields:
        old = getattr(before, attr) if before is not None else "?"
        new = getattr(after, attr)
        if old != new:
            rows.append((label, _show(old), _show(new)))
    return rows


def _status(conn: kube.Connection, namespace: str, args: argparse.Namespace) -> int:
    name = _resolve_name(conn, namespace, args.name)
    policy = kube.get_policy(conn.api, namespace, name)
    spec = policy.get("spec") or {}
    cj_name = reconcile.cronjob_name(spec)
    cronjob = kube.read_cronjob(conn.api, namespace, cj_name)
    jobs = kube.list_jobs(conn.api, namespace) if cronjob is not None else []
    print(render_status(policy, cronjob, jobs, now=datetime.now(UTC)))
    return 0


# --- rendering -------------------------------------------------------------------------------


def render_status(
    policy: Mapping[str, Any],
    cronjob: Mapping[str, Any] | None,
    jobs: Sequence[Mapping[str, Any]],
    now: datetime,
) -> str:
    """The ``status`` report: plain aligned text, no colours, readable in any terminal or log."""
    meta, spec, status = policy.get("metadata") or {}, policy.get("spec") or {}, policy.get("status") or {}
    backoff = spec.get("backoff") or {}
    defaults = RetryPolicy()
    lines = [
        f"WebhookRetryPolicy {meta.get('namespace')}/{meta.get('name')}"
        f"  (generation {meta.get('generation', '?')}, observed {status.get('observedGeneration', '-')})",
        *_pairs(
            [
                (
                    "Paused",
                    _show(bool(spec.get("paused", False)))
                    + (f" (since {_when(status.get('pausedAt'), now)})" if status.get("pausedAt") else ""),
                ),
                ("Limit", f"{spec.get('limit', defaults.limit)} events per run"),
                ("Batch size", spec.get("batchSize", defaults.batch_size)),
                ("Cap now", _cap_text(spec, status, now)),
                ("Resume ramp", _resume_text(spec.get("resume") or {})),
                ("Max attempts", spec.get("maxAttempts", defaults.max_attempts)),
                ("Lease", f"{spec.get('leaseSeconds', defaults.lease_seconds)}s"),
                ("Backoff", _backoff_text(backoff)),
                ("Providers", ", ".join(spec.get("providers") or []) or "all"),
                (
                    "ConfigMap",
                    status.get("configMap") or reconcile.configmap_name(meta.get("name", ""), spec),
                ),
            ]
        ),
        "",
    ]
    conditions = status.get("conditions") or []
    if conditions:
        rows = [
            [
                c.get("type"),
                c.get("status"),
                c.get("reason", ""),
                _age(c.get("lastTransitionTime"), now),
                c.get("message", ""),
            ]
            for c in conditions
        ]
        lines += [*_table(["CONDITION", "STATUS", "REASON", "SINCE", "MESSAGE"], rows), ""]
    else:
        lines += ["No conditions yet: is the operator running?", ""]
    cj_name = reconcile.cronjob_name(spec)
    if cronjob is None:
        lines.append(f"CronJob {meta.get('namespace')}/{cj_name}: NOT FOUND")
        return "\n".join(lines)
    cj_spec, cj_status = cronjob.get("spec") or {}, cronjob.get("status") or {}
    lines += [
        f"CronJob {meta.get('namespace')}/{cj_name}",
        *_pairs(
            [
                ("Schedule", cj_spec.get("schedule", "?")),
                ("Suspended", _show(bool(cj_spec.get("suspend", False)))),
                ("Last schedule", _when(cj_status.get("lastScheduleTime"), now)),
                ("Last success", _when(cj_status.get("lastSuccessfulTime"), now)),
                ("Active runs", len(cj_status.get("active") or [])),
            ]
        ),
        "",
    ]
    runs = sorted(
        (j for j in jobs if _owned_by(j, cj_name)),
        key=lambda j: (j.get("status") or {}).get("startTime") or "",
        reverse=True,
    )[:RUNS_SHOWN]
    if not runs:
        lines.append("No runs yet.")
    else:
        lines += _table(["LAST RUNS", "STATUS", "STARTED", "DURATION"], [_run_row(j, now) for j in runs])
    return "\n".join(lines)


def _cap_text(spec: Mapping[str, Any], status: Mapping[str, Any], now: datetime) -> str:
    """The operator's ``status.cap``, and where a gradual resume stands."""
    if "cap" not in status:
        return "- (not reported yet: is the operator running?)"
    text = str(status["cap"])
    limit = spec.get("limit", KNOB["limit"].default)
    resumed = status.get("resumedAt")
    if not spec.get("paused") and resumed and status["cap"] < limit:
        text += f" (gradual resume since {_when(resumed, now)}, climbing to {limit})"
    elif resumed:
        text += f" (last resumed {_when(resumed, now)})"
    return text


def _resume_text(resume: Mapping[str, Any]) -> str:
    minutes = resume.get("rampMinutes", KNOB["ramp_minutes"].default)
    floor = resume.get("floor", KNOB["ramp_floor"].default)
    return f"{minutes} min from {floor} events per run" if minutes else "off (rampMinutes 0)"


def _backoff_text(backoff: Mapping[str, Any]) -> str:
    defaults = RetryPolicy()
    text = (
        f"{backoff.get('mode', defaults.mode)}, base {backoff.get('baseMs', defaults.base_ms)} ms, "
        f"cap {backoff.get('capMs', defaults.cap_ms)} ms"
    )
    return text + (f", schedule {backoff['schedule']}" if backoff.get("schedule") else "")


def _run_row(job: Mapping[str, Any], now: datetime) -> list[Any]:
    status = job.get("status") or {}
    if status.get("succeeded"):
        state = "Succeeded"
    elif status.get("failed") and not status.get("active"):
        state = "Failed"
    elif status.get("active"):
        state = "Running"
    else:
        state = "Pending"
    start, end = _parse(status.get("startTime")), _parse(status.get("completionTime"))
    duration = _span(((end or now) - start).total_seconds()) if start else "-"
    return [(job.get("metadata") or {}).get("name"), state, _age(status.get("startTime"), now), duration]


def _owned_by(job: Mapping[str, Any], cronjob: str) -> bool:
    owners = (job.get("metadata") or {}).get("ownerReferences") or []
    return any(o.get("kind") == "CronJob" and o.get("name") == cronjob for o in owners)


def _pairs(items: Sequence[tuple[str, Any]]) -> list[str]:
    return [f"  {label:<14} {value}" for label, value in items]


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    cells = [list(headers), *[["" if c is None else str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple | list):
        return ", ".join(value) or "all"
    return str(value)


def _parse(stamp: str | None) -> datetime | None:
    if not stamp:
        return None
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None


def _span(seconds: float) -> str:
    seconds = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _age(stamp: str | None, now: datetime) -> str:
    when = _parse(stamp)
    return _span((now - when).total_seconds()) if when else "-"


def _when(stamp: str | None, now: datetime) -> str:
    return f"{stamp} ({_age(stamp, now)} ago)" if _parse(stamp) else "never"


def _conditions(policy: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {c.get("type"): c for c in (policy.get("status") or {}).get("conditions") or []}


# --- finding the policy ----------------------------------------------------------------------


def _resolve_name(conn: kube.Connection, namespace: str, name: str | None) -> str:
    """The policy to act on; a wrong name or a missing CRD is a clear error, never a traceback."""
    try:
        if name:
            kube.get_policy(conn.api, namespace, name)
            return name
        names = sorted(p["metadata"]["name"] for p in kube.list_policies(conn.api, namespace))
    except ApiException as exc:
        if exc.status != 404:
            raise
        if not kube.crd_installed(conn.api):
            raise PluginError(
                f"the {crd.CRD_NAME} CRD is not installed on {conn.server}: apply "
                "crds/webhookretrypolicy.yaml or install the tenrusl chart"
            ) from None
        names = sorted(p["metadata"]["name"] for p in kube.list_policies(conn.api, namespace))
        known = f"; policies here: {', '.join(names)}" if names else "; there are none"
        raise PluginError(
            f'webhookretrypolicy "{name}" not found in namespace "{namespace}"{known}'
        ) from None
    if len(names) == 1:
        return names[0]
    if DEFAULT_NAME in names:
        return DEFAULT_NAME
    if not names:
        raise PluginError(f'no webhookretrypolicy in namespace "{namespace}" (try -n NAMESPACE)')
    raise PluginError(f'several policies in namespace "{namespace}" ({", ".join(names)}): name one')
