"""The kopf handlers: one idempotent reconcile, reached on create, update, resume and a periodic look.

Run with ``tenrusl operator`` (JSON logs, liveness, namespace flags), or directly with
``kopf run --standalone -n NAMESPACE -m tenrusl_operator.handlers`` (or the file path).

Errors follow kopf's vocabulary: a missing CronJob is ``TemporaryError`` (the chart may not have
created it yet), an invalid spec is ``PermanentError`` (the user must change it). Both first set
``Degraded`` in status, since kopf applies the handler's ``patch`` even when the handler fails.

No finalizer. A kopf timer would make kopf put one on every policy, and a policy deleted while the
operator is gone (``helm uninstall`` deletes the operator before the policies; ``kubectl delete
namespace`` deletes everything at once) would then stay ``Terminating`` for ever. So the periodic
look (:func:`observe_forever`) is the operator's own task, and a deletion is seen as a watch event:
the CronJob is resumed when the operator sees it, and nothing ever waits for the operator. An
older operator's finalizer, still on a policy, is removed by kopf at the first look.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import kopf
from kubernetes.client.exceptions import ApiException
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
# The finalizer name an older operator put on policies; kopf removes it (no handler needs one).
FINALIZER = f"{crd.GROUP}/operator"
USER_AGENT = f"{reconcile.MANAGED_BY}/{__version__}"
# Creating the chart's policy at start-up: the CRD may still be being established.
ENSURE_POLICY_TRIES, ENSURE_POLICY_PAUSE_S = 20, 3.0

log = logging.getLogger("tenrusl.operator")


def of_this_release(value: str | None, memo: kopf.Memo, **_: Any) -> bool:
    """kopf's label filter: with a release (the chart's), only that release's policies are ours."""
    release = getattr(memo, "release", "") or ""
    return not release or value == release


RELEASE_FILTER = {reconcile.INSTANCE_LABEL: of_this_release}


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
    # One reconcile at a time per policy (reconcile_policy). Set on the root memo, which kopf copies
    # shallowly to every object's memo, so the handlers and the periodic look share this dict.
    memo.locks = {}
    # The clock is looked up at each scrape, so a test that replaces reconcile.utcnow moves it.
    memo.policies = PolicyCollector(clock=lambda: reconcile.utcnow())
    port = getattr(memo, "metrics_port", None)  # set by `tenrusl operator` (kopf.run's memo)
    if port is not None:
        memo.metrics_server = MetricsServer(memo.policies, getattr(memo, "metrics_host", METRICS_HOST), port)
        memo.metrics_port = await memo.metrics_server.start()
    if not hasattr(memo, "namespaces"):  # `kopf run` without `tenrusl operator`: the context's
        memo.namespaces = [memo.conn.namespace]
    policy = getattr(memo, "policy", None)
    if policy:
        await _ensure_policy(memo.conn.api, policy)
    memo.observer = asyncio.create_task(observe_forever(memo), name="tenrusl-observe")


async def _ensure_policy(api: Any, manifest: Mapping[str, Any]) -> None:
    """Create the chart's policy when it does not exist (a first install; docs/operator.md).

    Helm cannot create it in the release that creates its CRD, so the chart hands it to the
    operator; it carries the release's ownership labels, and the next ``helm upgrade`` adopts it.
    It is owned by the CronJob it governs, so deleting the release deletes it even before an upgrade
    made it Helm's. An existing policy is left as it is: its live spec and pause win.
    """
    meta = manifest["metadata"]
    name = f"{meta['namespace']}/{meta['name']}"
    cronjob = await asyncio.to_thread(
        kube.read_cronjob, api, meta["namespace"], reconcile.cronjob_name(manifest.get("spec") or {})
    )
    if cronjob is not None:
        manifest = {**manifest, "metadata": {**meta, "ownerReferences": [reconcile.owner_reference(cronjob)]}}
    for attempt in range(ENSURE_POLICY_TRIES):
        try:
            done = await asyncio.to_thread(kube.create_policy, api, manifest)
        except ApiException as exc:
            if exc.status != 404 or attempt == ENSURE_POLICY_TRIES - 1:
                log.error("cannot create the chart's policy %s: %s", name, kube.api_message(exc))
                return
            await asyncio.sleep(ENSURE_POLICY_PAUSE_S)  # the CRD is not served yet
            continue
        log.info("chart policy %s: %s", name, done, extra={"action": "ensure_policy", "outcome": done})
        return


@kopf.on.cleanup()
async def disconnect(memo: kopf.Memo, **_: Any) -> None:
    observer = getattr(memo, "observer", None)
    if observer is not None:
        observer.cancel()
        await asyncio.gather(observer, return_exceptions=True)
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


@kopf.on.resume(*RESOURCE, labels=RELEASE_FILTER)
@kopf.on.create(*RESOURCE, labels=RELEASE_FILTER)
@kopf.on.update(*RESOURCE, labels=RELEASE_FILTER)
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
    outcome = await reconcile_policy(memo, meta["namespace"], meta["name"])
    if outcome is None:  # deleted meanwhile
        return
    if outcome.reason == "InvalidSpec":
        raise kopf.PermanentError(outcome.message)
    if outcome.degraded:
        raise kopf.TemporaryError(outcome.message, delay=RETRY_DELAY_S)


async def observe_forever(memo: kopf.Memo) -> None:
    """Every ``memo.observe_interval`` seconds (30), the same reconcile for every policy, without raising.

    It refreshes the CronJob's last run times, undoes drift (a suspend changed by hand) and moves
    status.cap along a gradual resume. One LIST per namespace per look.
    """
    interval = float(getattr(memo, "observe_interval", TIMER_INTERVAL_S))
    while True:
        await asyncio.sleep(interval)
        try:
            policies = await asyncio.to_thread(_list_ours, memo)
        except Exception as exc:  # the API server is away: look again next time
            log.warning("cannot list policies: %s", exc, extra={"action": "observe"})
            continue
        for policy in policies:
            meta = policy.get("metadata") or {}
            try:
                await reconcile_policy(memo, meta["namespace"], meta["name"])
            except Exception:
                log.exception("observing %s failed", _ref(policy), extra={"action": "observe"})


def _list_ours(memo: kopf.Memo) -> list[dict[str, Any]]:
    release = getattr(memo, "release", "") or ""
    selector = f"{reconcile.INSTANCE_LABEL}={release}" if release else None
    found = []
    for namespace in memo.namespaces or [None]:
        for policy in kube.list_policies(memo.conn.api, namespace, selector):
            labels = (policy.get("metadata") or {}).get("labels") or {}
            if of_this_release(labels.get(reconcile.INSTANCE_LABEL), memo):
                found.append(policy)
    return found


async def reconcile_policy(memo: kopf.Memo, namespace: str, name: str) -> Outcome | None:
    """One reconcile of one policy, from the policy as it is now; None when it is gone.

    Both the change handlers and the periodic look come here, one at a time per policy, and each
    reads the policy afresh under the lock and writes its own patch before releasing it: the
    reconcile derives time stamps from status (a resume is dated "now" when status still shows the
    pause), so it must never start from a status that another reconcile has already moved on.
    """
    async with memo.locks.setdefault((namespace, name), asyncio.Lock()):
        try:
            raw = await asyncio.to_thread(kube.get_policy, memo.conn.api, namespace, name)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        body = kopf.Body(raw)  # type: ignore[arg-type]  # kopf's RawBody is this dict's TypedDict
        if body.metadata.get("deletionTimestamp"):
            return None
        patch = kopf.Patch()
        outcome = await _reconcile(body, body.meta, body.spec, body.status, patch, memo)
        await _write(memo, namespace, name, patch)
        return outcome


async def _write(memo: kopf.Memo, namespace: str, name: str, patch: kopf.Patch) -> None:
    """A reconcile's patch: metadata and spec through the object, then status (which reports what
    was done) through its subresource."""
    api = memo.conn.api
    rest = {key: value for key, value in patch.items() if key in ("metadata", "spec") and value}
    if rest:
        await asyncio.to_thread(kube.patch_policy, api, namespace, name, rest)
    if patch.get("status"):
        await asyncio.to_thread(
            kube.patch_policy, api, namespace, name, {"status": patch["status"]}, status=True
        )


@kopf.on.event(*RESOURCE, labels=RELEASE_FILTER)
async def on_event(event: kopf.RawEvent, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """A deleted policy: forget it, and resume the CronJob it paused (nothing waits for this)."""
    if event.get("type") != "DELETED":
        return
    namespace, name = body.metadata.get("namespace"), body.metadata.get("name")
    if namespace is None or name is None:
        return
    memo.policies.forget(namespace, name)
    cj_name = reconcile.cronjob_name(body.spec)
    cronjob = await asyncio.to_thread(kube.read_cronjob, memo.conn.api, namespace, cj_name)
    if cronjob is None or not reconcile.suspend_of(cronjob):
        return
    if reconcile.cronjob_refusal(cronjob, getattr(memo, "release", "")):
        return
    await asyncio.to_thread(kube.set_suspend, memo.conn.api, namespace, cj_name, False)
    await _event(
        memo, body, "Normal", "Resumed", f"policy deleted: CronJob {cj_name} resumed on its defaults"
    )


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
    A CronJob or ConfigMap that is not ours is refused (Degraded) and left untouched.
    """
    api, namespace, name = memo.conn.api, meta["namespace"], meta["name"]
    memo.stats["reconciles"] += 1
    migration = reconcile.migrate_spec(meta, spec, status)
    if migration:
        patch.spec.update(migration)
        patch.metadata.annotations[reconcile.MIGRATED] = f"limit {migration['batchSize']} -> batchSize"
        spec = {**spec, **migration}
        await _event(
            memo,
            body,
            "Normal",
            "Migrated",
            f"spec.limit {migration['batchSize']} was the claim size: moved to spec.batchSize; "
            f"spec.limit (events per run) is now {migration['limit']}",
        )
    cj_name, cm_name = reconcile.cronjob_name(spec), reconcile.configmap_name(name, spec)
    cronjob = await asyncio.to_thread(kube.read_cronjob, api, namespace, cj_name)
    refused = reconcile.cronjob_refusal(cronjob, getattr(memo, "release", "")) if cronjob else None
    try:
        policy = reconcile.policy_from_spec(spec, reconcile.source_of(meta))
    except (PolicyError, crd.SpecError) as exc:
        current = reconcile.suspend_of(cronjob) if cronjob and not refused else None
        outcome = Outcome(current, "InvalidSpec", f"invalid spec, nothing changed: {exc}", degraded=True)
        return await _report(body, meta, spec, status, patch, outcome, cronjob, memo)
    now = reconcile.utcnow()
    policy = reconcile.with_pause_times(policy, reconcile.pause_times(policy.paused, status, now))
    memo.policies.applied(namespace, name, policy)
    fields = reconcile.policy_status(policy, now)
    written = await asyncio.to_thread(
        kube.ensure_configmap, api, reconcile.render_configmap(cm_name, meta, policy)
    )
    if written in ("created", "updated"):
        await _event(
            memo, body, "Normal", "PolicyWritten", f"ConfigMap {cm_name} {written}: {_summary(policy)}"
        )
    if cronjob is None:
        message = f"CronJob {namespace}/{cj_name} not found; the policy is written, suspend is not"
        outcome = Outcome(None, "CronJobNotFound", message, degraded=True)
        return await _report(body, meta, spec, status, patch, outcome, None, memo, fields)
    if refused:
        outcome = Outcome(
            None, "ForeignCronJob", f"refusing CronJob {namespace}/{cj_name}: {refused}", degraded=True
        )
        return await _report(body, meta, spec, status, patch, outcome, None, memo, fields)
    if reconcile.suspend_of(cronjob) != policy.paused:
        cronjob = await asyncio.to_thread(kube.set_suspend, api, namespace, cj_name, policy.paused)
        verb = "Paused" if policy.paused else "Resumed"
        ramp = f"; gradual resume from {fields['cap']} events per run" if _ramping(policy, fields) else ""
        await _event(
            memo, body, "Normal", verb, f"CronJob {cj_name} spec.suspend={str(policy.paused).lower()}{ramp}"
        )
    if written == "foreign":
        message = (
            f"refusing ConfigMap {namespace}/{cm_name}: the operator did not write it for this policy "
            f"(labels app.kubernetes.io/managed-by={reconcile.MANAGED_BY}, {reconcile.POLICY_LABEL}={name}); "
            "it is left untouched, so the runner does not get this policy's file; name another with "
            "spec.configMapName"
        )
        outcome = Outcome(policy.paused, "ForeignConfigMap", message, degraded=True)
        return await _report(body, meta, spec, status, patch, outcome, cronjob, memo, fields)
    return await _report(body, meta, spec, status, patch, Outcome(policy.paused), cronjob, memo, fields)


def _ramping(policy: RetryPolicy, fields: dict[str, Any]) -> bool:
    return not policy.paused and fields["cap"] < policy.limit


async def _report(
    body: kopf.Body,
    meta: kopf.Meta,
    spec: Mapping[str, Any],
    status: kopf.Status,
    patch: kopf.Patch,
    outcome: Outcome,
    cronjob: dict[str, Any] | None,
    memo: kopf.Memo,
    fields: dict[str, Any] | None = None,
) -> Outcome:
    """Write status when it changes; post an event when Degraded starts, changes reason or ends."""
    new = reconcile.status_patch(outcome, meta, spec, status, cronjob, fields)
    if reconcile.status_changed(status, new):
        patch.status.update(new)
    before = {c.get("type"): c for c in status.get("conditions") or ()}.get(reconcile.DEGRADED) or {}
    was_degraded = before.get("status") == "True"
    if outcome.degraded and (not was_degraded or before.get("reason") != outcome.reason):
        await _event(memo, body, "Warning", outcome.reason, outcome.message)
    elif was_degraded and not outcome.degraded:
        await _event(memo, body, "Normal", "Recovered", f"no longer degraded ({before.get('reason')})")
    return outcome


async def _event(memo: kopf.Memo, body: kopf.Body, kind: str, reason: str, message: str) -> None:
    """Post a Kubernetes Event on the policy; a failure to post is logged, never raised."""
    try:
        await asyncio.to_thread(kube.post_event, memo.conn.api, body, kind, reason, message)
    except Exception as exc:
        log.warning("cannot post event %s on %s: %s", reason, _ref(body), exc, extra={"action": "event"})


def _ref(policy: Mapping[str, Any]) -> str:
    meta = policy.get("metadata") or {}
    return f"{meta.get('namespace')}/{meta.get('name')}"


def _summary(policy: Any) -> str:
    return (
        f"paused={str(policy.paused).lower()} limit={policy.limit} batchSize={policy.batch_size} "
        f"maxAttempts={policy.max_attempts} mode={policy.mode} baseMs={policy.base_ms} capMs={policy.cap_ms} "
        f"rampMinutes={policy.ramp_minutes}"
    )
