"""Pure functions of the reconcile: from a policy's spec to what the cluster should hold.

No I/O here, so every rule (the policy file, the ConfigMap, the conditions) is testable alone.
The policy file is made by :class:`tenrusl.policy.RetryPolicy`, through the same parser the retry
runner uses, so the operator can only ever write a file the runner accepts.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from tenrusl_operator import crd

from tenrusl.policy import (
    KNOB,
    POLICY_FILE_VERSION,
    RetryPolicy,
    effective_cap,
    format_time,
    parse_policy_document,
    parse_time,
)

DEFAULT_CRONJOB = "tenrusl-retry"
POLICY_KEY = "policy.json"
MANAGED_BY = "tenrusl-operator"

# Ownership. The operator writes only a ConfigMap it made for this policy (these two labels), and
# suspends only a retry CronJob of TenRusl (these two, and the release's instance label when the
# operator serves one release): naming someone else's object in a policy changes nothing of it.
POLICY_LABEL = f"{crd.GROUP}/policy"
INSTANCE_LABEL = "app.kubernetes.io/instance"
CRONJOB_LABELS = {"app.kubernetes.io/part-of": "tenrusl", "app.kubernetes.io/component": "retry-runner"}

# Set on a policy migrated from before spec.batchSize (its value says what moved).
MIGRATED = f"{crd.GROUP}/migrated-limit-to-batch-size"

READY, PAUSED, DEGRADED = "Ready", "Paused", "Degraded"
CONDITION_TYPES = (READY, PAUSED, DEGRADED)

# Spec fields that are policy-file fields; the others (cronJobName, configMapName) are wiring.
_POLICY_FIELDS = (
    "paused", "limit", "batchSize", "maxAttempts", "leaseSeconds", "backoff", "resume", "providers",
)  # fmt: skip


@dataclass(frozen=True)
class Outcome:
    """What one reconcile found: the state to report in the conditions."""

    paused: bool | None  # the CronJob's actual suspend, None when unknown
    reason: str = "Reconciled"
    message: str = "the CronJob and the policy ConfigMap match the spec"
    degraded: bool = False


def cronjob_name(spec: Mapping[str, Any]) -> str:
    return spec.get("cronJobName") or DEFAULT_CRONJOB


def configmap_name(name: str, spec: Mapping[str, Any]) -> str:
    return spec.get("configMapName") or f"{name}-policy"


def policy_from_spec(spec: Mapping[str, Any], source: Mapping[str, Any]) -> RetryPolicy:
    """The complete policy a spec states; absent fields take the CRD's (and RetryPolicy's) defaults.

    Raises :class:`tenrusl.policy.PolicyError` naming the field when the spec is invalid.
    """
    doc = {key: spec[key] for key in _POLICY_FIELDS if spec.get(key) is not None}
    doc["version"] = POLICY_FILE_VERSION
    doc["source"] = dict(source)
    policy = RetryPolicy().with_overrides(parse_policy_document(doc))
    crd.check_rules({"maxAttempts": policy.max_attempts, "backoff": {"schedule": list(policy.schedule_ms)}})
    return policy


def migrate_spec(
    meta: Mapping[str, Any], spec: Mapping[str, Any], status: Mapping[str, Any]
) -> dict[str, Any] | None:
    """The spec patch that carries a policy from before ``batchSize`` over; None when none is due.

    Until policy file version 2, ``spec.limit`` was the claim size and a run handled everything
    due. A policy whose status shows that an operator of that time applied its current spec
    (``observedGeneration`` equals ``generation``, and no ``policyFileVersion``) still means that:
    its ``limit`` becomes ``batchSize``, and ``limit`` (the per-run cap) takes its default. The old
    schema defaulted ``limit`` to 200, so every such policy states one. A spec changed since (by
    ``helm upgrade`` or by hand, with the new meaning in mind) is taken as it is. The migration
    marks the policy with :data:`MIGRATED` in the same patch as the spec, so it happens once even
    when the next event still shows the old status.
    """
    if status.get("policyFileVersion") is not None or "limit" not in spec:
        return None
    if MIGRATED in (meta.get("annotations") or {}):
        return None
    observed = status.get("observedGeneration")
    if observed is None or observed != meta.get("generation"):
        return None
    return {"batchSize": spec["limit"], "limit": KNOB["limit"].default}


def pause_times(paused: bool, status: Mapping[str, Any], now: datetime) -> dict[str, str | None]:
    """``pausedAt`` and ``resumedAt`` after this reconcile: a pause starts, or ends, now.

    A pause that began before the operator recorded ``pausedAt`` (an older operator) is dated by
    the ``Paused`` condition's last transition.
    """
    paused_at, resumed_at = status.get("pausedAt"), status.get("resumedAt")
    if paused and not paused_at:
        since = _condition(status, PAUSED)
        began = since.get("lastTransitionTime") if since.get("status") == "True" else None
        paused_at = began or format_time(now)
    elif not paused and paused_at:
        paused_at, resumed_at = None, format_time(now)
    return {"pausedAt": paused_at, "resumedAt": resumed_at}


def with_pause_times(policy: RetryPolicy, times: Mapping[str, str | None]) -> RetryPolicy:
    """The policy with the pause state the runner needs (it computes the cap from ``resumedAt``)."""
    paused_at, resumed_at = times.get("pausedAt"), times.get("resumedAt")
    return replace(
        policy,
        paused_at=parse_time(paused_at, "status.pausedAt") if paused_at else None,
        resumed_at=parse_time(resumed_at, "status.resumedAt") if resumed_at else None,
    )


def policy_status(policy: RetryPolicy, now: datetime) -> dict[str, Any]:
    """The status fields that state the policy's pause and its cap now (None removes a field)."""
    return {
        "pausedAt": format_time(policy.paused_at) if policy.paused and policy.paused_at else None,
        "resumedAt": format_time(policy.resumed_at) if policy.resumed_at else None,
        "cap": effective_cap(policy, now),
        "policyFileVersion": POLICY_FILE_VERSION,
    }


def _condition(status: Mapping[str, Any], kind: str) -> Mapping[str, Any]:
    return {c.get("type"): c for c in status.get("conditions") or ()}.get(kind) or {}


def source_of(meta: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "namespace": meta.get("namespace"),
        "name": meta.get("name"),
        "generation": meta.get("generation"),
        "uid": meta.get("uid"),
    }


def render_policy_file(policy: RetryPolicy) -> str:
    """The ``policy.json`` text: stable key order, so an unchanged policy is an unchanged ConfigMap."""
    return json.dumps(policy.to_file(), indent=2, sort_keys=True) + "\n"


def render_configmap(name: str, meta: Mapping[str, Any], policy: RetryPolicy) -> dict[str, Any]:
    """The ConfigMap body, owned by the policy so that deleting the policy deletes it."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": meta["namespace"],
            "labels": {
                "app.kubernetes.io/name": "tenrusl",
                "app.kubernetes.io/component": "retry-policy",
                "app.kubernetes.io/managed-by": MANAGED_BY,
                POLICY_LABEL: meta["name"],
                **{k: v for k, v in (meta.get("labels") or {}).items() if k == INSTANCE_LABEL},
            },
            "ownerReferences": [
                {
                    "apiVersion": crd.API_VERSION,
                    "kind": crd.KIND,
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "data": {POLICY_KEY: render_policy_file(policy)},
    }


def configmap_is_ours(configmap: Mapping[str, Any], policy: str) -> bool:
    """Whether the operator wrote this ConfigMap for the policy named ``policy``."""
    labels = (configmap.get("metadata") or {}).get("labels") or {}
    return labels.get("app.kubernetes.io/managed-by") == MANAGED_BY and labels.get(POLICY_LABEL) == policy


def cronjob_refusal(cronjob: Mapping[str, Any], release: str = "") -> str | None:
    """Why the operator will not touch this CronJob (None: it is a TenRusl retry CronJob it governs)."""
    labels = (cronjob.get("metadata") or {}).get("labels") or {}
    missing = {k: v for k, v in CRONJOB_LABELS.items() if labels.get(k) != v}
    if release and labels.get(INSTANCE_LABEL) != release:
        missing[INSTANCE_LABEL] = release
    if not missing:
        return None
    wanted = ", ".join(f"{k}={v}" for k, v in sorted(missing.items()))
    return f"it does not carry the labels of this release's retry CronJob ({wanted}); nothing was changed"


def owner_reference(owner: Mapping[str, Any]) -> dict[str, Any]:
    """A plain owner reference (garbage collection only: no blockOwnerDeletion, so it needs no
    right on the owner's finalizers)."""
    meta = owner.get("metadata") or {}
    return {"apiVersion": owner.get("apiVersion"), "kind": owner.get("kind"), "name": meta.get("name"),
            "uid": meta.get("uid")}  # fmt: skip


def suspend_of(cronjob: Mapping[str, Any]) -> bool:
    return bool((cronjob.get("spec") or {}).get("suspend", False))


def cronjob_times(cronjob: Mapping[str, Any] | None) -> dict[str, Any]:
    status = (cronjob or {}).get("status") or {}
    return {
        "lastScheduleTime": status.get("lastScheduleTime"),
        "lastSuccessfulTime": status.get("lastSuccessfulTime"),
    }


def utcnow() -> datetime:
    """The operator's clock (tests replace it to step through a gradual resume without waiting)."""
    return datetime.now(UTC)


def now_iso() -> str:
    return format_time(utcnow())


def conditions(
    outcome: Outcome,
    generation: int | None,
    previous: Sequence[Mapping[str, Any]] | None,
    now: str | None = None,
) -> list[dict[str, Any]]:
    """The three conditions for an outcome; ``lastTransitionTime`` moves only when status does."""
    if outcome.paused is None:
        paused = ("Unknown", outcome.reason, "the CronJob's state is unknown: " + outcome.message)
    elif outcome.paused:
        paused = ("True", "PausedBySpec", "the retry CronJob is suspended; no new runs start")
    else:
        paused = ("False", "Running", "the retry CronJob runs on its schedule")
    if outcome.degraded:
        ready = ("False", outcome.reason, outcome.message)
        degraded = ("True", outcome.reason, outcome.message)
    else:
        ready = ("True", outcome.reason, outcome.message)
        degraded = ("False", "AsExpected", "no problem found")
    states = {READY: ready, PAUSED: paused, DEGRADED: degraded}
    old = {c.get("type"): c for c in previous or ()}
    stamp = now or now_iso()
    result = []
    for kind in CONDITION_TYPES:
        status, reason, message = states[kind]
        before = old.get(kind) or {}
        moved = before.get("status") != status or not before.get("lastTransitionTime")
        result.append(
            {
                "type": kind,
                "status": status,
                "reason": reason,
                "message": message,
                "lastTransitionTime": stamp if moved else before["lastTransitionTime"],
                "observedGeneration": generation,
            }
        )
    return result


def status_patch(
    outcome: Outcome,
    meta: Mapping[str, Any],
    spec: Mapping[str, Any],
    old_status: Mapping[str, Any],
    cronjob: Mapping[str, Any] | None,
    policy_fields: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``status`` an outcome reports; ``observedGeneration`` only moves when the spec was applied.

    ``policy_fields`` (:func:`policy_status`) when a policy was applied; an invalid spec leaves
    the last applied pause times and cap as they were.
    """
    generation = meta.get("generation")
    patch: dict[str, Any] = {
        "conditions": conditions(outcome, generation, old_status.get("conditions")),
        "cronJob": cronjob_name(spec),
        "configMap": configmap_name(meta["name"], spec),
        **(policy_fields or {}),
    }
    if not outcome.degraded:
        patch["observedGeneration"] = generation
    if cronjob is not None:
        patch.update({k: v for k, v in cronjob_times(cronjob).items() if v})
    return patch


def status_changed(old_status: Mapping[str, Any], patch: Mapping[str, Any]) -> bool:
    """Whether writing ``patch`` would change anything (timers skip no-op writes)."""
    return any(old_status.get(key) != value for key, value in patch.items())
