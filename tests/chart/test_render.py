"""The chart, rendered by the real helm for three value sets, checked object by object."""

from __future__ import annotations

import filecmp
import json
import re
from typing import Any

import kubernetes_validate
import pytest
import yaml
from tenrusl_operator import crd, reconcile

from tests.chart.conftest import (
    CHART,
    KUBE_VERSIONS,
    NAMESPACE,
    RELEASE,
    VALUE_SETS,
    Render,
    by_kind,
    one,
    pod_specs,
    run_helm,
    value_args,
)
from tests.tools import ROOT

SETS = list(VALUE_SETS)
CUSTOM_KINDS = {"WebhookRetryPolicy", "ServiceMonitor", "PrometheusRule", "HTTPRoute"}
POLICY_FILE = "/etc/tenrusl/policy/policy.json"  # docs/operator.md: where the CronJob mounts it
SECRET_NAME = re.compile(r"(URL|KEY|SECRET|PASSWORD|TOKEN)$")


def containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*spec.get("initContainers", []), *spec["containers"]]


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in container.get("env", [])}


@pytest.mark.parametrize("value_set", SETS)
def test_helm_lint_strict_is_clean(helm: str, value_set: str) -> None:
    done = run_helm(helm, "lint", "--strict", str(CHART), *value_args(VALUE_SETS[value_set]))
    assert "0 chart(s) failed" in done.stdout
    assert "[WARNING]" not in done.stdout and "[ERROR]" not in done.stdout, done.stdout


@pytest.mark.parametrize("kube", KUBE_VERSIONS)
@pytest.mark.parametrize("value_set", SETS)
def test_every_rendered_object_passes_kubernetes_validate_strict(
    render: Render, value_set: str, kube: str
) -> None:
    objects = render(value_set, kube=kube)
    unvalidated = set()
    for obj in objects:
        if obj["kind"] in CUSTOM_KINDS:
            unvalidated.add(obj["kind"])
            continue
        try:
            kubernetes_validate.validate(obj, kube, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(
                f"{obj['kind']}/{obj['metadata']['name']} (Kubernetes {kube}): {exc.message} at {list(exc.path)}"
            )
    assert len(objects) >= 8


@pytest.mark.parametrize("value_set", ["defaults", "production"])
def test_the_default_policy_validates_against_the_crd_schema(render: Render, value_set: str) -> None:
    policy = one(render(value_set), "WebhookRetryPolicy")
    assert policy["apiVersion"] == crd.API_VERSION and policy["metadata"]["name"] == RELEASE
    assert "paused" not in policy["spec"], "an upgrade must never undo a pause made with kubectl"
    crd.validate_spec(policy["spec"])  # schema types, bounds, enums and the CEL rules


def test_a_misspelled_policy_field_fails_the_crd_schema(render: Render) -> None:
    policy = one(render(sets={"retryPolicy.spec": {"maxAttemps": 3}}), "WebhookRetryPolicy")
    with pytest.raises(crd.SpecError, match="maxAttemps"):
        crd.validate_spec(policy["spec"])


def test_the_charts_crds_are_the_crds_folder() -> None:
    """The chart's copy (files/crds/, rendered by templates/crds/) is the source of truth byte for byte."""
    ours = sorted(p.name for p in (CHART / "files" / "crds").iterdir())
    assert ours == sorted(p.name for p in (ROOT / "crds").iterdir())
    for name in ours:
        assert filecmp.cmp(CHART / "files" / "crds" / name, ROOT / "crds" / name, shallow=False), name
    assert not (CHART / "crds").exists(), "a crds/ folder is installed once and never upgraded by Helm"


@pytest.mark.parametrize("value_set", SETS)
def test_retry_cronjob_forbids_overlap_never_sets_suspend_and_mounts_the_policy(
    render: Render, value_set: str
) -> None:
    cronjob = one(render(value_set), "CronJob")
    spec = cronjob["spec"]
    assert spec["schedule"] == "* * * * *"
    assert spec["concurrencyPolicy"] == "Forbid"
    assert "suspend" not in spec, "the operator owns spec.suspend"
    assert 10 <= spec["startingDeadlineSeconds"] < 60
    assert spec["successfulJobsHistoryLimit"] >= 1 and spec["failedJobsHistoryLimit"] >= 1
    job = spec["jobTemplate"]["spec"]
    assert job["activeDeadlineSeconds"] > 300, "longer than the runner's own 300 s time budget"
    pod = job["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    runner = next(c for c in pod["containers"] if c["name"] == "retry")
    assert runner["args"][:2] == ["retry", "once"]
    assert env_of(runner)["TENRUSL_POLICY_FILE"]["value"] == POLICY_FILE
    mount = next(m for m in runner["volumeMounts"] if m["name"] == "policy")
    assert mount["mountPath"] + "/policy.json" == POLICY_FILE and mount["readOnly"] is True
    volume = next(v for v in pod["volumes"] if v["name"] == "policy")
    assert volume["configMap"]["optional"] is True
    assert ("timeZone" in spec) == (value_set == "production")


@pytest.mark.parametrize("value_set", ["defaults", "production"])
def test_the_policy_governs_the_charts_cronjob_and_the_cronjob_mounts_what_the_operator_writes(
    render: Render, value_set: str
) -> None:
    objects = render(value_set)
    policy, cronjob = one(objects, "WebhookRetryPolicy"), one(objects, "CronJob")
    # The operator's own rules (operator/reconcile.py) name the CronJob and the ConfigMap.
    assert reconcile.cronjob_name(policy["spec"]) == cronjob["metadata"]["name"]
    volumes = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["volumes"]
    mounted = next(v for v in volumes if v["name"] == "policy")["configMap"]["name"]
    assert mounted == reconcile.configmap_name(policy["metadata"]["name"], policy["spec"])


@pytest.mark.parametrize("value_set", SETS)
def test_probes_and_a_grace_period_that_fits_the_drain(render: Render, value_set: str) -> None:
    objects = render(value_set)
    deploy = one(objects, "Deployment", f"{RELEASE}-receiver")
    pod = deploy["spec"]["template"]["spec"]
    receiver = next(c for c in pod["containers"] if c["name"] == "receiver")
    assert receiver["startupProbe"]["httpGet"] == {"path": "/up", "port": "http"}
    assert f"--admin-port={receiver['ports'][1]['containerPort']}" in receiver["args"]
    assert receiver["livenessProbe"]["httpGet"] == {"path": "/up", "port": "http"}
    assert receiver["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}
    assert receiver["livenessProbe"]["failureThreshold"] > receiver["readinessProbe"]["failureThreshold"]
    args = dict(a.removeprefix("--").split("=", 1) for a in receiver["args"][1:] if "=" in a)
    assert receiver["args"][0] == "serve"
    assert receiver["ports"][0]["containerPort"] == int(args["port"])
    pre_stop = receiver["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    assert pod["terminationGracePeriodSeconds"] >= int(pre_stop[1]) + float(args["shutdown-timeout"])
    assert [c["args"][:1] for c in pod["initContainers"]] == [["migrate"]]
    assert pod["topologySpreadConstraints"], "receiver pods spread over zones and nodes"
    for obj in by_kind(objects, "Deployment"):
        if obj["metadata"]["name"] == f"{RELEASE}-operator":
            operator = obj["spec"]["template"]["spec"]["containers"][0]
            assert obj["spec"]["replicas"] == 1 and obj["spec"]["strategy"] == {"type": "Recreate"}
            assert operator["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
            port = operator["ports"][0]["containerPort"]
            assert f"--liveness-port={port}" in operator["args"]


def test_a_grace_period_shorter_than_the_drain_is_refused(helm: str) -> None:
    done = run_helm(
        helm,
        "template",
        RELEASE,
        str(CHART),
        "--set",
        "receiver.terminationGracePeriodSeconds=10",
        check=False,
    )
    assert done.returncode != 0
    assert "terminationGracePeriodSeconds must be at least" in done.stderr


def receiver_container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    deploy = one(objects, "Deployment", f"{RELEASE}-receiver")
    return next(c for c in deploy["spec"]["template"]["spec"]["containers"] if c["name"] == "receiver")


@pytest.mark.parametrize("value_set", SETS)
def test_one_receiver_process_per_pod_by_default(render: Render, value_set: str) -> None:
    assert "--workers=1" in receiver_container(render(value_set))["args"]


TWO_CORES = {"requests": {"cpu": "2", "memory": "256Mi"}, "limits": {"cpu": "2500m", "memory": "1Gi"}}


def test_workers_reach_serve_with_a_core_each_and_the_same_probes_and_drain(render: Render) -> None:
    single = render("defaults")
    objects = render("defaults", {"receiver.workers": 2, "receiver.resources": TWO_CORES})
    receiver = receiver_container(objects)
    assert "--workers=2" in receiver["args"]
    assert receiver["resources"] == TWO_CORES
    before = receiver_container(single)
    for key in ("startupProbe", "livenessProbe", "readinessProbe", "lifecycle", "ports"):
        assert receiver[key] == before[key], key  # the supervisor forwards SIGTERM; any worker answers
    deploy = one(objects, "Deployment", f"{RELEASE}-receiver")
    pod = deploy["spec"]["template"]["spec"]
    assert (
        pod["terminationGracePeriodSeconds"]
        == one(single, "Deployment", f"{RELEASE}-receiver")["spec"]["template"]["spec"][
            "terminationGracePeriodSeconds"
        ]
    )
    kubernetes_validate.validate(deploy, KUBE_VERSIONS[-1], strict=True)


@pytest.mark.parametrize(
    ("resources", "message"),
    [
        ({"requests": {"cpu": "100m"}}, "requests.cpu of at least 2"),
        ({"requests": {"cpu": "1.5"}}, "requests.cpu of at least 2"),
        ({"requests": {"memory": "1Gi"}}, "requests.cpu of at least 2"),
        ({"requests": {"cpu": "2"}, "limits": {"cpu": "1500m"}}, "limits.cpu of at least 2"),
    ],
)
def test_workers_without_a_core_each_are_refused(helm: str, resources: dict[str, Any], message: str) -> None:
    sets = {"receiver.workers": 2, "receiver.resources": resources}
    done = run_helm(helm, "template", RELEASE, str(CHART), *value_args([], sets), check=False)
    assert done.returncode != 0
    assert message in done.stderr, done.stderr


@pytest.mark.parametrize("value_set", SETS)
def test_every_pod_meets_the_restricted_pod_security_standard_with_a_read_only_root(
    render: Render, value_set: str
) -> None:
    pods = list(pod_specs(render(value_set)))
    assert pods
    for name, pod in pods:
        pod_ctx = pod.get("securityContext", {})
        assert not any(pod.get(k) for k in ("hostNetwork", "hostPID", "hostIPC")), name
        for c in containers(pod):
            ctx = c.get("securityContext", {})
            where = f"{name} container {c['name']}"
            assert ctx.get("runAsNonRoot", pod_ctx.get("runAsNonRoot")) is True, where
            assert ctx.get("runAsUser", pod_ctx.get("runAsUser", 1)) != 0, where
            assert ctx.get("allowPrivilegeEscalation") is False, where
            assert ctx.get("privileged", False) is False, where
            assert ctx.get("capabilities", {}).get("drop") == ["ALL"], where
            assert not ctx.get("capabilities", {}).get("add"), where
            seccomp = ctx.get("seccompProfile", pod_ctx.get("seccompProfile", {}))
            assert seccomp.get("type") == "RuntimeDefault", where
            assert ctx.get("readOnlyRootFilesystem") is True, where
        wants_token = name.endswith("-operator")
        assert pod.get("automountServiceAccountToken") is wants_token, name


@pytest.mark.parametrize("value_set", SETS)
def test_secrets_are_only_referenced_never_inlined(render: Render, value_set: str) -> None:
    objects = render(value_set)
    for name, pod in pod_specs(objects):
        for c in containers(pod):
            for env_name, item in env_of(c).items():
                if SECRET_NAME.search(env_name):
                    assert "secretKeyRef" in item.get("valueFrom", {}), f"{name} {c['name']} {env_name}"
            for source in c.get("envFrom", []):
                assert set(source) <= {"configMapRef", "secretRef"}
    for cm in by_kind(objects, "ConfigMap"):
        for key in cm.get("data", {}):
            assert not SECRET_NAME.search(key), f"ConfigMap {cm['metadata']['name']} holds {key}"


def test_a_provider_secret_given_as_a_value_appears_only_in_a_secret(render: Render) -> None:
    marker = "whsec_only_in_a_secret_42"
    objects = render(sets={"secrets.providers": {"TENRUSL_STRIPE_WEBHOOK_SECRET": marker}})
    holders = [f"{o['kind']}/{o['metadata']['name']}" for o in objects if marker in json.dumps(o)]
    assert holders == [f"Secret/{RELEASE}"]
    secret = one(objects, "Secret", RELEASE)
    assert {"TENRUSL_ADMIN_KEY", "TENRUSL_MOCK_SECRET", "TENRUSL_STRIPE_WEBHOOK_SECRET"} <= set(
        secret["stringData"]
    )


def test_a_changed_configmap_or_secret_changes_the_pod_template(render: Render) -> None:
    fixed = {"secrets.adminKey": "a" * 32, "secrets.providers": {"TENRUSL_MOCK_SECRET": "m"},
             "postgresql.auth.password": "p", "redis.password": "r"}  # fmt: skip

    def annotations(**sets: Any) -> dict[str, str]:
        deploy = one(render(sets={**fixed, **sets}), "Deployment", f"{RELEASE}-receiver")
        return deploy["spec"]["template"]["metadata"]["annotations"]

    base = annotations()
    assert base == annotations(), "the same values render the same checksums"
    assert annotations(**{"config.logLevel": "DEBUG"})["checksum/config"] != base["checksum/config"]
    assert annotations(**{"secrets.adminKey": "b" * 32})["checksum/secret"] != base["checksum/secret"]


@pytest.mark.parametrize("value_set", SETS)
def test_every_object_carries_the_standard_labels(render: Render, value_set: str) -> None:
    for obj in render(value_set):
        labels = obj["metadata"].get("labels", {})
        for key in ("app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/version",
                    "app.kubernetes.io/managed-by", "app.kubernetes.io/component", "helm.sh/chart"):  # fmt: skip
            assert key in labels, f"{obj['kind']}/{obj['metadata']['name']} lacks {key}"
        selector = (obj.get("spec") or {}).get("selector")
        if obj["kind"] in ("Deployment", "StatefulSet", "PodDisruptionBudget"):
            assert selector is not None
            assert selector["matchLabels"]["app.kubernetes.io/instance"] == RELEASE


def test_defaults_bundle_postgresql_and_redis_and_point_every_process_at_them(render: Render) -> None:
    objects = render()
    assert {o["metadata"]["name"] for o in by_kind(objects, "StatefulSet")} == {
        f"{RELEASE}-postgresql",
        f"{RELEASE}-redis",
    }
    for sts in by_kind(objects, "StatefulSet"):
        assert sts["spec"]["replicas"] == 1 and sts["spec"]["volumeClaimTemplates"]
    receiver = one(objects, "Deployment", f"{RELEASE}-receiver")["spec"]["template"]["spec"]["containers"][0]
    env = env_of(receiver)
    assert env["TENRUSL_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": f"{RELEASE}-postgresql",
        "key": "url",
    }
    assert env["TENRUSL_REDIS_URL"]["valueFrom"]["secretKeyRef"] == {"name": f"{RELEASE}-redis", "key": "url"}
    url = one(objects, "Secret", f"{RELEASE}-postgresql")["stringData"]["url"]
    assert url.startswith("postgresql://tenrusl:") and url.endswith(f"@{RELEASE}-postgresql:5432/tenrusl")
    assert one(objects, "Service", f"{RELEASE}-postgresql")["spec"]["ports"][0]["port"] == 5432


def test_production_uses_external_stores_monitoring_autoscaling_and_network_policies(render: Render) -> None:
    objects = render("production")
    assert not by_kind(objects, "StatefulSet")
    assert not [s for s in by_kind(objects, "Secret") if s["metadata"]["name"] == RELEASE], (
        "existingSecret is used"
    )
    deploy = one(objects, "Deployment", f"{RELEASE}-receiver")
    assert "replicas" not in deploy["spec"], "the HPA owns the replica count"
    env = env_of(deploy["spec"]["template"]["spec"]["containers"][0])
    assert env["TENRUSL_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "payments-db-app",
        "key": "uri",
    }
    assert env["TENRUSL_REDIS_URL"]["valueFrom"]["secretKeyRef"] == {"name": "payments-redis", "key": "url"}
    assert {"name": "tenrusl-provider-secrets"} in [
        s.get("secretRef") for s in deploy["spec"]["template"]["spec"]["containers"][0]["envFrom"]
    ]
    hpa = one(objects, "HorizontalPodAutoscaler")
    assert (
        hpa["spec"]["scaleTargetRef"]["name"] == deploy["metadata"]["name"]
        and hpa["spec"]["minReplicas"] == 3
    )
    for monitor in ("receiver", "operator"):
        labels = one(objects, "ServiceMonitor", f"{RELEASE}-{monitor}")["metadata"]["labels"]
        assert labels["release"] == "kube-prometheus-stack"
    rule = one(objects, "PrometheusRule")
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert rule["spec"] == yaml.safe_load((CHART / "files" / "alerts.yaml").read_text())
    dashboard = one(objects, "ConfigMap", f"{RELEASE}-dashboard")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(dashboard["data"]["tenrusl.json"]) == json.loads(
        (CHART / "files" / "dashboard.json").read_text()
    )
    policies = {p["metadata"]["name"] for p in by_kind(objects, "NetworkPolicy")}
    assert policies == {f"{RELEASE}-receiver", f"{RELEASE}-operator"}


def test_network_policies_admit_only_the_release_to_its_databases(render: Render) -> None:
    objects = render(sets={"networkPolicy.enabled": True})
    pg = one(objects, "NetworkPolicy", f"{RELEASE}-postgresql")
    peers = pg["spec"]["ingress"][0]["from"][0]["podSelector"]["matchExpressions"]
    assert {
        "key": "app.kubernetes.io/component",
        "operator": "In",
        "values": ["receiver", "retry-runner"],
    } in peers
    operator = one(objects, "NetworkPolicy", f"{RELEASE}-operator")["spec"]
    assert operator["ingress"] == [{"ports": [{"port": "metrics", "protocol": "TCP"}]}], (
        "only its metrics port (metricsFrom empty: anyone)"
    )


def test_minimal_runs_without_operator_redis_or_test_pod(render: Render) -> None:
    objects = render("minimal")
    kinds = {o["kind"] for o in objects}
    assert not kinds & {"Role", "RoleBinding", "WebhookRetryPolicy", "PodDisruptionBudget", "Pod"}
    receiver = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert "TENRUSL_REDIS_URL" not in env_of(receiver)


def test_helm_test_checks_up_and_ready_through_the_service(render: Render) -> None:
    objects = render()
    pod = one(objects, "Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert "hook-succeeded" not in pod["metadata"]["annotations"].get("helm.sh/hook-delete-policy", "")
    service = one(objects, "Service", f"{RELEASE}-receiver")
    script = pod["spec"]["containers"][0]["args"][0]
    assert f"http://{service['metadata']['name']}:{service['spec']['ports'][0]['port']}" in script
    assert '"/up", "/ready"' in script


def test_operator_role_is_namespaced_and_bound_to_its_service_account(render: Render) -> None:
    objects = render()
    assert not by_kind(objects, "ClusterRoleBinding"), "the operator's rights are namespaced"
    assert {r["metadata"]["name"] for r in by_kind(objects, "ClusterRole")} == {
        f"{NAMESPACE}-{RELEASE}-wrp-view",
        f"{NAMESPACE}-{RELEASE}-wrp-edit",
    }, "only the aggregated roles for people, bound to nobody by the chart"
    binding = one(objects, "RoleBinding")
    assert binding["roleRef"]["name"] == one(objects, "Role")["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": f"{RELEASE}-operator", "namespace": NAMESPACE}
    ]
