"""The kopf handlers: one idempotent reconcile, reached on create, update, resume and a timer.

Run with ``tenrusl operator`` (JSON logs, liveness, namespace flags), or directly with
``kopf run --standalone -n NAMESPACE -m tenrusl_operator.handlers`` (or the file path).

Errors follow kopf's vocabulary: a missing CronJob is ``TemporaryError`` (the chart may not have
created it yet), an invalid spec is ``PermanentError`` (the user must change it). Both first set
``Degraded`` in status, since kopf applies the handler's ``patch`` even when the handler fails.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import kopf
from tenrusl_operator import crd, kube, reconcile
from tenrusl_operator.metrics import MetricsServer, PolicyCollector
from tenrusl_operator.reconcile import Outcome

from tenrusl import __version__
from tenrusl.policy import PolicyError, RetryPolicy

RESOURCE = (crd.GROUP, crd.VERSION, crd.PLURAL)
# "CronJob not there yet": the chart creates it in the same release, so look again soon.
RETRY_DELAY_S = 15.0
# CronJobs start at most once a minute, so a 30 s look keeps status.lastScheduleTime at most one
# run behind, puts back a suspend that someone changed by hand within half a run, and moves
# status.cap along a gradual resume before each run.
TIMER_INTERVAL_S = 30.0
METRICS_HOST = "0.0.0.0"  # every interface of the pod: Prometheus scrapes it
FINALIZER = f"{crd.GROUP}/operator"
USER_AGENT = f"{reconcile.MANAGED_BY}/{__version__}"


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    """Name our events and annotations, and connect once; every handler shares ``memo.conn``."""
    settings.posting.reporting_component = reconcile.MANAGED_BY
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=crd.GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=crd.GROUP)
    settings.watching.server_timeout = 300
    settings.peering.standalone = True  # one replica, Recreate strategy (docs/design-notes.md)
    # No runtime scan of namespaces and CRDs: the namespaced Role grants neither, and the watched
    # namespace is named exactly (the chart installs the CRD before the operator starts).
    settings.scanning.disabled = True
    memo.conn = await asyncio.to_thread(kube.connect)
    # Named in the API server's audit log (and in the tests' request log, to check the chart's Role).
    memo.conn.api.user_agent = USER_AGENT
    memo.stats = {"reconciles": 0}
    # The clock is looked up at each scrape, so a test that replaces reconcile.utcnow moves it.
    memo.policies = PolicyCollector(clock=lambda: reconcile.utcnow())
    port = getattr(memo, "metrics_port", None)  # set by `tenrusl operator` (kopf.run's memo)
    if port is not None:
        memo.metrics_server = MetricsServer(memo.policies, getattr(memo, "metrics_host", METRICS_HOST), port)
        memo.metrics_port = await memo.metrics_server.start()


@kopf.on.cleanup()
async def disconnect(memo: kopf.Memo, **_: Any) -> None:
    server = getattr(memo, "metrics_server", None)
    if server is not None:
        await server.stop()
    conn = getattr(memo, "conn", None)
    if conn is not None:
        conn.api.close()


@kopf.on.login()
async def login(**_: Any) -> kopf.ConnectionInfo:
    """Log in exactly as the kube module connects (kubeconfig, then the service account)."""
    conn = await asyncio.to_thread(kube.connect)
    cfg = conn.api.configuration
    token = (cfg.api_key or {}).get("authorization", "").removeprefix("Bearer ").strip() or None
    return kopf.ConnectionInfo(
        server=cfg.host,
        ca_path=cfg.ssl_ca_cert,
        insecure=not cfg.verify_ssl,
        username=cfg.username or None,
        password=cfg.password or None,
        token=token,
        certificate_path=cfg.cert_file,
        private_key_path=cfg.key_file,
        default_namespace=conn.namespace,
    )


@kopf.on.probe(id="reconciles")
def count_reconciles(memo: kopf.Memo, **_: Any) -> int:
    """Liveness detail: the reconcile count (kopf's endpoint itself proves the loop is alive)."""
    return int(memo.stats["reconciles"]) if hasattr(memo, "stats") else 0


@kopf.on.resume(*RESOURCE)
@kopf.on.create(*RESOURCE)
@kopf.on.update(*RESOURCE)
async def apply_policy(
    body: kopf.Body,
    meta: kopf.Meta,
    spec: kopf.Spec,
    status: kopf.Status,
    patch: kopf.Patch,
    memo: kopf.Memo,
    **_: Any,
) -> None:
    """Make the CronJob and the ConfigMap match the spec; fail loudly (but safely) when they cannot."""
    outcome = await _reconcile(body, meta, spec, status, patch, memo)
    if outcome.reason == "InvalidSpec":
        raise kopf.PermanentError(outcome.message)
    if outcome.degraded:
        raise kopf.TemporaryError(outcome.message, delay=RETRY_DELAY_S)


@kopf.timer(*RESOURCE, interval=TIMER_INTERVAL_S, initial_delay=TIMER_INTERVAL_S)
async def observe(
    body: kopf.Body,
    meta: kopf.Meta,
    spec: kopf.Spec,
    status: kopf.Status,
    patch: kopf.Patch,
    memo: kopf.Memo,
    **_: Any,
) -> None:
    """Refresh the CronJob's last run times and undo drift; the same reconcile, without raising."""
    await _reconcile(body, meta, spec, status, patch, memo)


@kopf.on.delete(*RESOURCE, retries=5, backoff=3)
async def release_cronjob(
    body: kopf.Body,
    spec: kopf.Spec,
    namespace: str | None,
    memo: kopf.Memo,
    logger: kopf.Logger,
    **_: Any,
) -> None:
    """Deleting a policy resumes its CronJob; the owned ConfigMap goes with the policy.

    A missing CronJob is fine (nothing to resume), and after 5 failed tries kopf gives up and
    releases the finalizer, so this handler cannot hold a deletion hostage.
    """
    if namespace is None:  # kopf's type allows it (cluster-scoped kinds); a policy is namespaced
        raise kopf.PermanentError("a WebhookRetryPolicy without a namespace cannot name its CronJob")
    memo.policies.forget(namespace, body["metadata"]["name"])
    name = reconcile.cronjob_name(spec)
    cronjob = await asyncio.to_thread(kube.read_cronjob, memo.conn.api, namespace, name)
    if cronjob is None:
        logger.info("policy deleted; CronJob %s/%s does not exist, nothing to resume", namespace, name)
        return
    if reconcile.suspend_of(cronjob):
        await asyncio.to_thread(kube.set_suspend, memo.conn.api, namespace, name, False)
        kopf.info(body, reason="Resumed", message=f"policy deleted: CronJob {name} resumed on its defaults")


async def _reconcile(
    body: kopf.Body,
    meta: kopf.Meta,
    spec: Mapping[str, Any],
    status: kopf.Status,
    patch: kopf.Patch,
    memo: kopf.Memo,
) -> Outcome:
    """ConfigMap first (a running job stops claiming), then the CronJob's suspend, then status.

    A policy from before ``batchSize`` existed is migrated first (:func:`reconcile.migrate_spec`).
    """
    api, namespace, name = memo.conn.api, meta["namespace"], meta["name"]
    memo.stats["reconciles"] += 1
    migration = reconcile.migrate_spec(meta, spec, status)
    if migration:
        patch.spec.update(migration)
        patch.metadata.annotations[reconcile.MIGRATED] = f"limit {migration['batchSize']} -> batchSize"
        spec = {**spec, **migration}
        kopf.info(
            body,
            reason="Migrated",
            message=f"spec.limit {migration['batchSize']} was the claim size: moved to spec.batchSize; "
            f"spec.limit (events per run) is now {migration['limit']}",
        )
    cj_name, cm_name = reconcile.cronjob_name(spec), reconcile.configmap_name(name, spec)
    cronjob = await asyncio.to_thread(kube.read_cronjob, api, namespace, cj_name)
    try:
        policy = reconcile.policy_from_spec(spec, reconcile.source_of(meta))
    except (PolicyError, crd.SpecError) as exc:
        current = reconcile.suspend_of(cronjob) if cronjob else None
        outcome = Outcome(current, "InvalidSpec", f"invalid spec, nothing changed: {exc}", degraded=True)
        return _report(body, meta, spec, status, patch, outcome, cronjob)
    now = reconcile.utcnow()
    policy = reconcile.with_pause_times(policy, reconcile.pause_times(policy.paused, status, now))
    memo.policies.applied(namespace, name, policy)
    fields = reconcile.policy_status(policy, now)
    written = await asyncio.to_thread(
        kube.ensure_configmap, api, reconcile.render_configmap(cm_name, meta, policy)
    )
    if written != "unchanged":
        kopf.info(body, reason="PolicyWritten", message=f"ConfigMap {cm_name} {written}: {_summary(policy)}")
    if cronjob is None:
        message = f"CronJob {namespace}/{cj_name} not found; the policy is written, suspend is not"
        outcome = Outcome(None, "CronJobNotFound", message, degraded=True)
        return _report(body, meta, spec, status, patch, outcome, None, fields)
    if reconcile.suspend_of(cronjob) != policy.paused:
        cronjob = await asyncio.to_thread(kube.set_suspend, api, namespace, cj_name, policy.paused)
        verb = "Paused" if policy.paused else "Resumed"
        ramp = f"; gradual resume from {fields['cap']} events per run" if _ramping(policy, fields) else ""
        kopf.info(
            body, reason=verb, message=f"CronJob {cj_name} spec.suspend={str(policy.paused).lower()}{ramp}"
        )
    return _report(body, meta, spec, status, patch, Outcome(policy.paused), cronjob, fields)


def _ramping(policy: RetryPolicy, fields: dict[str, Any]) -> bool:
    return not policy.paused and fields["cap"] < policy.limit


def _report(
    body: kopf.Body,
    meta: kopf.Meta,
    spec: Mapping[str, Any],
    status: kopf.Status,
    patch: kopf.Patch,
    outcome: Outcome,
    cronjob: dict[str, Any] | None,
    fields: dict[str, Any] | None = None,
) -> Outcome:
    """Write status when it changes; post an event when Degraded starts, changes reason or ends."""
    new = reconcile.status_patch(outcome, meta, spec, status, cronjob, fields)
    if reconcile.status_changed(status, new):
        patch.status.update(new)
    before = {c.get("type"): c for c in status.get("conditions") or ()}.get(reconcile.DEGRADED) or {}
    was_degraded = before.get("status") == "True"
    if outcome.degraded and (not was_degraded or before.get("reason") != outcome.reason):
        kopf.warn(body, reason=outcome.reason, message=outcome.message)
    elif was_degraded and not outcome.degraded:
        kopf.info(body, reason="Recovered", message=f"no longer degraded ({before.get('reason')})")
    return outcome


def _summary(policy: Any) -> str:
    return (
        f"paused={str(policy.paused).lower()} limit={policy.limit} batchSize={policy.batch_size} "
        f"maxAttempts={policy.max_attempts} mode={policy.mode} baseMs={policy.base_ms} capMs={policy.cap_ms} "
        f"rampMinutes={policy.ramp_minutes}"
    )
