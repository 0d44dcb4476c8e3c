"""The few Kubernetes API calls the operator and the kubectl plugin make, and how they connect.

Calls are synchronous (the official ``kubernetes`` client); the operator runs them in
``asyncio.to_thread``. Every call asks for raw JSON (``_preload_content=False``) so objects stay
plain dicts, exactly as the API server sent them. Connecting follows kubectl: ``--kubeconfig`` or
``KUBECONFIG`` (a path list), else ``~/.kube/config``, else the pod's service account.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from tenrusl_operator import crd, reconcile

MERGE_PATCH = "application/merge-patch+json"
# Client-side timeout of one API call (connect, read): short, so a hung API server cannot wedge a
# reconcile; kopf retries the handler.
REQUEST_TIMEOUT = (5, 20)
INCLUSTER_NAMESPACE_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"


class KubeError(RuntimeError):
    """A Kubernetes API call failed in a way the caller explains to a human."""


@dataclass(frozen=True)
class Connection:
    """An API client and the namespace kubectl would use by default."""

    api: client.ApiClient
    namespace: str
    server: str


def kubeconfig_path(explicit: str | None = None) -> str:
    """kubectl's rule: the flag, else ``KUBECONFIG`` (read now, not at import), else the home file."""
    return explicit or os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")


def connect(context: str | None = None, kubeconfig: str | None = None) -> Connection:
    """Connect like kubectl does; raise :class:`KubeError` when no configuration is found."""
    path = kubeconfig_path(kubeconfig)
    configured = kubeconfig or os.environ.get("KUBECONFIG") or os.path.exists(path)
    if configured:
        cfg = client.Configuration()
        try:
            config.load_kube_config(config_file=path, context=context, client_configuration=cfg)
            contexts, active = config.list_kube_config_contexts(config_file=path)
        except (ConfigException, OSError) as exc:
            raise KubeError(f"cannot load kubeconfig {path}: {exc}") from None
        chosen = next((c for c in contexts if c["name"] == context), active) if context else active
        namespace = ((chosen or {}).get("context") or {}).get("namespace") or "default"
        return Connection(client.ApiClient(cfg), namespace, cfg.host)
    cfg = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=cfg)
    except ConfigException:
        raise KubeError(
            f"no Kubernetes configuration: {path} does not exist, KUBECONFIG is not set, "
            "and this is not a pod with a service account"
        ) from None
    with open(INCLUSTER_NAMESPACE_FILE, encoding="utf-8") as fh:
        namespace = fh.read().strip() or "default"
    return Connection(client.ApiClient(cfg), namespace, cfg.host)


def _json(response: Any) -> dict[str, Any]:
    return json.loads(response.data or b"{}")


def api_message(exc: ApiException) -> str:
    """The ``message`` of the API server's Status body, else the HTTP reason."""
    try:
        return json.loads(exc.body or "{}").get("message") or str(exc.reason)
    except (ValueError, AttributeError):
        return str(exc.reason)


# --- CronJobs --------------------------------------------------------------------------------


def read_cronjob(api: client.ApiClient, namespace: str, name: str) -> dict[str, Any] | None:
    """The CronJob, or None when it does not exist."""
    try:
        return _json(
            client.BatchV1Api(api).read_namespaced_cron_job(
                name, namespace, _preload_content=False, _request_timeout=REQUEST_TIMEOUT
            )
        )
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def set_suspend(api: client.ApiClient, namespace: str, name: str, suspend: bool) -> dict[str, Any]:
    return _json(
        client.BatchV1Api(api).patch_namespaced_cron_job(
            name,
            namespace,
            {"spec": {"suspend": suspend}},
            _content_type=MERGE_PATCH,
            _preload_content=False,
            _request_timeout=REQUEST_TIMEOUT,
        )
    )


def list_jobs(api: client.ApiClient, namespace: str) -> list[dict[str, Any]]:
    response = client.BatchV1Api(api).list_namespaced_job(
        namespace, _preload_content=False, _request_timeout=REQUEST_TIMEOUT
    )
    return list(_json(response).get("items") or [])


# --- ConfigMaps ------------------------------------------------------------------------------


def ensure_configmap(api: client.ApiClient, body: Mapping[str, Any]) -> str:
    """Create the ConfigMap or bring its data, labels and owner in line; say what happened.

    Returns ``"created"``, ``"updated"``, ``"unchanged"`` or ``"foreign"``: a ConfigMap of that
    name that the operator did not write for this policy (:func:`reconcile.configmap_is_ours`) is
    left untouched. An unchanged ConfigMap is not written, so a periodic look costs one GET.
    Creating one that appeared meanwhile (409: another reconcile of the same policy won the race)
    is the state wanted: it is read back and checked like one that was there.
    """
    core = client.CoreV1Api(api)
    meta = body["metadata"]
    current = _read_configmap(core, meta["namespace"], meta["name"])
    if current is None:
        try:
            core.create_namespaced_config_map(  # the client takes a plain dict as the body
                meta["namespace"],
                dict(body),  # type: ignore[arg-type]
                _preload_content=False,
                _request_timeout=REQUEST_TIMEOUT,
            )
            return "created"
        except ApiException as exc:
            if exc.status != 409:
                raise
        current = _read_configmap(core, meta["namespace"], meta["name"])
        if current is None:  # created and deleted again in between: the next reconcile creates it
            return "unchanged"
    if not reconcile.configmap_is_ours(current, meta["labels"][reconcile.POLICY_LABEL]):
        return "foreign"
    old_meta = current.get("metadata") or {}
    same = (
        current.get("data") == body["data"]
        and old_meta.get("ownerReferences") == meta["ownerReferences"]
        and all((old_meta.get("labels") or {}).get(k) == v for k, v in meta["labels"].items())
    )
    if same:
        return "unchanged"
    patch = {
        "metadata": {"labels": meta["labels"], "ownerReferences": meta["ownerReferences"]},
        "data": body["data"],
    }
    core.patch_namespaced_config_map(
        meta["name"],
        meta["namespace"],
        patch,
        _content_type=MERGE_PATCH,
        _preload_content=False,
        _request_timeout=REQUEST_TIMEOUT,
    )
    return "updated"


def _read_configmap(core: client.CoreV1Api, namespace: str, name: str) -> dict[str, Any] | None:
    try:
        return _json(
            core.read_namespaced_config_map(
                name, namespace, _preload_content=False, _request_timeout=REQUEST_TIMEOUT
            )
        )
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


# --- Events ----------------------------------------------------------------------------------


def post_event(
    api: client.ApiClient, involved: Mapping[str, Any], kind: str, reason: str, message: str
) -> None:
    """A Kubernetes Event on ``involved`` (``kubectl describe wrp`` shows it); ``kind``: Normal/Warning."""
    meta = involved.get("metadata") or {}
    now = datetime.now(UTC).isoformat()
    body = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{meta.get('name')}.", "namespace": meta.get("namespace")},
        "involvedObject": {
            "apiVersion": involved.get("apiVersion"),
            "kind": involved.get("kind"),
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "uid": meta.get("uid"),
        },
        "type": kind,
        "reason": reason,
        "message": message[:1024],
        "source": {"component": reconcile.MANAGED_BY},
        "reportingComponent": reconcile.MANAGED_BY,
        "reportingInstance": socket.gethostname(),
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }
    client.CoreV1Api(api).create_namespaced_event(
        str(meta.get("namespace")),
        body,  # type: ignore[arg-type]
        _preload_content=False,
        _request_timeout=REQUEST_TIMEOUT,
    )


# --- WebhookRetryPolicies --------------------------------------------------------------------


def crd_installed(api: client.ApiClient) -> bool:
    """Whether the API server serves ``tenrusl.io/v1alpha1 webhookretrypolicies``."""
    try:
        response = client.CustomObjectsApi(api).get_api_resources(
            crd.GROUP, crd.VERSION, _preload_content=False, _request_timeout=REQUEST_TIMEOUT
        )
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return any(r.get("name") == crd.PLURAL for r in _json(response).get("resources") or [])


def get_policy(api: client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    return _json(
        client.CustomObjectsApi(api).get_namespaced_custom_object(
            crd.GROUP,
            crd.VERSION,
            namespace,
            crd.PLURAL,
            name,
            _preload_content=False,
            _request_timeout=REQUEST_TIMEOUT,
        )
    )


def list_policies(
    api: client.ApiClient, namespace: str | None, label_selector: str | None = None
) -> list[dict[str, Any]]:
    """The policies of a namespace (every namespace when None), optionally by label."""
    objects = client.CustomObjectsApi(api)
    options: dict[str, Any] = {"_preload_content": False, "_request_timeout": REQUEST_TIMEOUT}
    if label_selector:
        options["label_selector"] = label_selector
    if namespace is None:
        response = objects.list_cluster_custom_object(crd.GROUP, crd.VERSION, crd.PLURAL, **options)
    else:
        response = objects.list_namespaced_custom_object(
            crd.GROUP, crd.VERSION, namespace, crd.PLURAL, **options
        )
    return list(_json(response).get("items") or [])


def create_policy(api: client.ApiClient, body: Mapping[str, Any]) -> str:
    """Create a policy unless one of that name exists: ``"created"`` or ``"exists"``."""
    meta = body["metadata"]
    try:
        client.CustomObjectsApi(api).create_namespaced_custom_object(
            crd.GROUP,
            crd.VERSION,
            meta["namespace"],
            crd.PLURAL,
            dict(body),
            _preload_content=False,
            _request_timeout=REQUEST_TIMEOUT,
        )
    except ApiException as exc:
        if exc.status == 409:
            return "exists"
        raise
    return "created"


def patch_policy(
    api: client.ApiClient, namespace: str, name: str, patch: Mapping[str, Any], *, status: bool = False
) -> dict[str, Any]:
    """A merge patch of the policy (its metadata and spec), or of its status subresource."""
    objects = client.CustomObjectsApi(api)
    call = objects.patch_namespaced_custom_object_status if status else objects.patch_namespaced_custom_object
    return _json(
        call(
            crd.GROUP,
            crd.VERSION,
            namespace,
            crd.PLURAL,
            name,
            dict(patch),
            _content_type=MERGE_PATCH,
            _preload_content=False,
            _request_timeout=REQUEST_TIMEOUT,
        )
    )


def patch_policy_spec(
    api: client.ApiClient, namespace: str, name: str, spec_patch: Mapping[str, Any]
) -> dict[str, Any]:
    """The plain ``kubectl patch wrp NAME --type merge -p '{"spec": ...}'``."""
    return patch_policy(api, namespace, name, {"spec": dict(spec_patch)})
