"""Day two, as far as a render shows it: secrets that are kept and renders that are identical, the
second port and what is published, the operator's rights by name, the roles people get, CRDs that
upgrade and stay, bundled stores that recover, cleaned-up retry Jobs, stable pod templates,
releases that share a namespace, and `helm test` through the production NetworkPolicies."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.chart.conftest import (
    CHART,
    KUBE_VERSIONS,
    NAMESPACE,
    RELEASE,
    SERVES_POLICIES,
    VALUE_SETS,
    Render,
    by_kind,
    one,
    pod_specs,
    run_helm,
    value_args,
)
from tests.tools import ROOT

GIVEN_SECRETS = {
    "secrets.adminKey": "a" * 40,
    "secrets.providers": {"TENRUSL_MOCK_SECRET": "m" * 40},
    "postgresql.auth.password": "p" * 40,
    "redis.password": "r" * 40,
}


def template(helm: str, *args: str, chart: Path = CHART, check: bool = True) -> Any:
    return run_helm(helm, "template", RELEASE, str(chart), "--namespace", NAMESPACE, *args, check=check)


def pod_templates(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    found = {}
    for obj in objects:
        name = f"{obj['kind']}/{obj['metadata']['name']}"
        if obj["kind"] in ("Deployment", "StatefulSet"):
            found[name] = obj["spec"]["template"]
        elif obj["kind"] == "CronJob":
            found[name] = obj["spec"]["jobTemplate"]["spec"]["template"]
    return found


# -- secrets that never drift ----------------------------------------------------------------------


@pytest.mark.parametrize("value_set", list(VALUE_SETS))
def test_two_renders_with_the_secrets_given_are_byte_identical(helm: str, value_set: str) -> None:
    args = value_args(VALUE_SETS[value_set], GIVEN_SECRETS if value_set != "production" else None)
    first, second = template(helm, *args).stdout, template(helm, *args).stdout
    assert first == second, "no random value, timestamp or generated checksum in a render"
    assert "a" * 40 in first or value_set == "production"


def test_every_secret_the_chart_makes_survives_uninstall(render: Render) -> None:
    secrets = by_kind(render(sets=GIVEN_SECRETS), "Secret")
    assert {s["metadata"]["name"] for s in secrets} == {RELEASE, f"{RELEASE}-postgresql", f"{RELEASE}-redis"}
    for secret in secrets:
        assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep", secret["metadata"][
            "name"
        ]


@pytest.mark.parametrize(
    ("given", "missing"),
    [
        ({}, "secrets.adminKey"),
        ({"secrets.adminKey": "a" * 40}, "secrets.providers.TENRUSL_MOCK_SECRET"),
        (
            {k: v for k, v in GIVEN_SECRETS.items() if k != "postgresql.auth.password"},
            "postgresql.auth.password",
        ),
        ({k: v for k, v in GIVEN_SECRETS.items() if k != "redis.password"}, "redis.password"),
    ],
)
def test_an_upgrade_that_cannot_read_a_generated_secret_fails_naming_the_value(
    helm: str, given: dict[str, Any], missing: str
) -> None:
    """What Argo CD or `helm template --is-upgrade` does: no cluster to read the live Secret from."""
    done = template(helm, "--is-upgrade", *value_args([], given), check=False)
    assert done.returncode != 0
    named = done.stderr.split("Set ", 1)[1].split(" (or existing Secrets", 1)[0].split(", ")
    assert missing in named and not set(named) & set(given), named
    assert f"{missing}: kubectl -n payments get secret" in done.stderr, "where its current value is"
    assert "cannot read the Secrets" in done.stderr


def test_an_upgrade_with_the_secrets_given_renders(helm: str) -> None:
    assert template(helm, "--is-upgrade", *value_args([], GIVEN_SECRETS)).returncode == 0
    assert template(helm, "--is-upgrade", *value_args(VALUE_SETS["production"])).returncode == 0


def test_with_generate_off_every_missing_secret_is_named(helm: str) -> None:
    done = template(helm, "--set", "secrets.generate=false", check=False)
    assert done.returncode != 0 and "secrets.generate is false" in done.stderr
    assert (
        "Set secrets.adminKey, secrets.providers.TENRUSL_MOCK_SECRET, postgresql.auth.password, redis.password"
        in done.stderr
    )
    assert template(helm, "--set", "secrets.generate=false", *value_args([], GIVEN_SECRETS)).returncode == 0


def test_a_chart_bump_restarts_no_pod(helm: str, tmp_path: Path) -> None:
    """Pod templates carry no chart version and checksums come from values, so a new chart version
    that changes nothing a pod reads leaves every pod template as it was."""
    bumped = tmp_path / "tenrusl"
    shutil.copytree(CHART, bumped)
    chart_yaml = bumped / "Chart.yaml"
    chart_yaml.write_text(chart_yaml.read_text().replace("\nversion: ", "\nversion: 9.9.9-bump # was "))
    args = ["--api-versions", SERVES_POLICIES, *value_args([], GIVEN_SECRETS)]
    before = pod_templates([d for d in yaml.safe_load_all(template(helm, *args).stdout) if d])
    after = pod_templates([d for d in yaml.safe_load_all(template(helm, *args, chart=bumped).stdout) if d])
    assert len(before) == 5 and before == after


def test_changed_settings_or_given_secrets_roll_the_pods(render: Render) -> None:
    def annotations(**sets: Any) -> dict[str, str]:
        deploy = one(render(sets={**GIVEN_SECRETS, **sets}), "Deployment", f"{RELEASE}-receiver")
        return deploy["spec"]["template"]["metadata"]["annotations"]

    base = annotations()
    assert annotations(**{"config.logLevel": "DEBUG"})["checksum/config"] != base["checksum/config"]
    assert annotations(**{"postgresql.auth.password": "q" * 40})["checksum/secret"] != base["checksum/secret"]
    postgres = one(
        render(sets={**GIVEN_SECRETS, "postgresql.auth.password": "q" * 40}),
        "StatefulSet",
        f"{RELEASE}-postgresql",
    )
    original = one(render(sets=GIVEN_SECRETS), "StatefulSet", f"{RELEASE}-postgresql")
    assert (
        postgres["spec"]["template"]["metadata"]["annotations"]
        != original["spec"]["template"]["metadata"]["annotations"]
    ), "a new password restarts PostgreSQL, whose set-password init container applies it"


@pytest.mark.parametrize("value_set", list(VALUE_SETS))
def test_pod_templates_carry_only_selector_labels_and_pod_labels(render: Render, value_set: str) -> None:
    objects = render(value_set, sets={"podLabels": {"team": "payments"}})
    for name, template_ in pod_templates(objects).items():
        labels = template_["metadata"]["labels"]
        component = labels["app.kubernetes.io/component"]
        assert labels == {"app.kubernetes.io/name": "tenrusl", "app.kubernetes.io/instance": RELEASE,
                          "app.kubernetes.io/component": component, "team": "payments"}, name  # fmt: skip


# -- least exposure ---------------------------------------------------------------------------------


def test_metrics_and_the_admin_api_are_on_a_second_port_the_providers_service_does_not_expose(
    render: Render,
) -> None:
    objects = render()
    receiver = one(objects, "Deployment", f"{RELEASE}-receiver")["spec"]["template"]["spec"]["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in receiver["ports"]}
    assert ports == {"http": 8080, "admin": 9090}
    assert "--port=8080" in receiver["args"] and "--admin-port=9090" in receiver["args"]
    public = one(objects, "Service", f"{RELEASE}-receiver")["spec"]["ports"]
    assert [p["targetPort"] for p in public] == ["http"], "providers reach the webhook port only"
    admin = one(objects, "Service", f"{RELEASE}-receiver-admin")["spec"]
    assert admin["type"] == "ClusterIP" and [p["targetPort"] for p in admin["ports"]] == ["admin"]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert receiver[probe]["httpGet"]["port"] == "http"


def test_the_admin_port_must_differ_from_the_webhook_port(helm: str) -> None:
    done = template(helm, "--set", "receiver.adminPort=8080", check=False)
    assert done.returncode != 0 and "receiver.adminPort must differ from receiver.port" in done.stderr


def published_paths(objects: list[dict[str, Any]]) -> dict[str, list[tuple[str, str, Any]]]:
    found: dict[str, list[tuple[str, str, Any]]] = {}
    for ingress in by_kind(objects, "Ingress"):
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                found.setdefault("Ingress", []).append(
                    (path["pathType"], path["path"], (backend["name"], backend["port"]["name"]))
                )
    for route in by_kind(objects, "HTTPRoute"):
        for rule in route["spec"]["rules"]:
            backends = [(b["name"], b["port"]) for b in rule["backendRefs"]]
            for match in rule["matches"]:
                found.setdefault("HTTPRoute", []).append(
                    (match["path"]["type"], match["path"]["value"], backends)
                )
    return found


def test_ingress_and_httproute_are_off_by_default(render: Render) -> None:
    assert published_paths(render()) == {}


def test_ingress_and_httproute_publish_only_the_webhook_prefixes(render: Render) -> None:
    gateway = [{"name": "public", "namespace": "gateways"}]
    objects = render(sets={"ingress.enabled": True, "ingress.hosts": ["hooks.example.com"],
                           "ingress.paths": ["/api/v1/webhooks", "/api/webhooks/stripe"],
                           "httpRoute.enabled": True, "httpRoute.parentRefs": gateway})  # fmt: skip
    paths = published_paths(objects)
    assert paths["Ingress"] == [("Prefix", "/api/v1/webhooks", (f"{RELEASE}-receiver", "http")),
                                ("Prefix", "/api/webhooks/stripe", (f"{RELEASE}-receiver", "http"))]  # fmt: skip
    assert paths["HTTPRoute"] == [("PathPrefix", "/api/v1/webhooks", [(f"{RELEASE}-receiver", 80)])]
    assert one(objects, "HTTPRoute")["spec"]["parentRefs"] == gateway
    for obj in by_kind(objects, "Ingress"):
        kubernetes_validate.validate(obj, KUBE_VERSIONS[0], strict=True)


@pytest.mark.parametrize(
    ("sets", "where"),
    [
        ({"ingress": {"paths": ["/"]}}, "/ingress/paths/0"),
        ({"ingress": {"paths": ["/api"]}}, "/ingress/paths/0"),
        ({"ingress": {"paths": ["/api/v1/payments"]}}, "/ingress/paths/0"),
        ({"ingress": {"paths": ["/metrics"]}}, "/ingress/paths/0"),
        ({"ingress": {"paths": ["/api/v1/admin/webhook-events"]}}, "/ingress/paths/0"),
        ({"httpRoute": {"paths": ["/"]}}, "/httpRoute/paths/0"),
        ({"httpRoute": {"enabled": True}}, "/httpRoute/parentRefs"),
    ],
)
def test_nothing_but_a_webhook_prefix_can_be_published(
    helm: str, tmp_path: Path, sets: dict[str, Any], where: str
) -> None:
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump(sets))
    done = template(helm, "-f", str(values), check=False)
    assert done.returncode != 0 and where in done.stderr, done.stderr


def test_the_production_example_publishes_the_webhooks_only_and_has_no_mock(render: Render) -> None:
    objects = render("production")
    assert published_paths(objects)["Ingress"] == [
        ("Prefix", "/api/v1/webhooks", (f"{RELEASE}-receiver", "http"))
    ]
    assert (
        "mock"
        not in yaml.safe_load((CHART / "ci" / "production-values.yaml").read_text())["config"]["providers"]
    )
    allowlist = one(objects, "ConfigMap", RELEASE)["data"]["TENRUSL_PROVIDERS_ALLOWLIST"]
    assert "mock" not in allowlist.split(",")


def test_the_notes_warn_about_mock_in_production(helm: str) -> None:
    def notes(*args: str) -> str:
        return run_helm(helm, "install", RELEASE, str(CHART), "--dry-run=client", *args).stdout.split(
            "NOTES:", 1
        )[1]

    assert 'WARNING: the "mock" provider is allowed' in notes()  # the quick start's defaults
    assert "WARNING: the" not in notes("--set-json", 'config.providers=["stripe"]')


def role_rules(role: dict[str, Any]) -> dict[tuple[str, str, str], list[str] | None]:
    """(group, resource, verb) -> the resourceNames it is limited to (None: any name)."""
    rules: dict[tuple[str, str, str], list[str] | None] = {}
    for rule in role["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    rules[group, resource, verb] = rule.get("resourceNames")
    return rules


@pytest.mark.parametrize("sets", [{}, {"retryPolicy.name": "payments-retries", "fullnameOverride": "pay"}])
def test_the_operators_role_names_the_releases_own_objects(render: Render, sets: dict[str, Any]) -> None:
    objects = render(sets=sets)
    rules = role_rules(one(objects, "Role"))
    policy = one(objects, "WebhookRetryPolicy")["metadata"]["name"]
    cronjob = one(objects, "CronJob")["metadata"]["name"]
    configmap = next(v for v in one(objects, "CronJob")["spec"]["jobTemplate"]["spec"]["template"]["spec"]["volumes"]
                     if v["name"] == "policy")["configMap"]["name"]  # fmt: skip
    assert rules["batch", "cronjobs", "get"] == rules["batch", "cronjobs", "patch"] == [cronjob]
    assert rules["", "configmaps", "get"] == rules["", "configmaps", "patch"] == [configmap]
    assert rules["tenrusl.io", "webhookretrypolicies", "patch"] == [policy]
    assert rules["tenrusl.io", "webhookretrypolicies/status", "patch"] == [policy]
    # Owner references with blockOwnerDeletion need this where they are enforced (OpenShift).
    assert rules["tenrusl.io", "webhookretrypolicies/finalizers", "update"] == [policy]
    # What Kubernetes cannot limit by name, and nothing else, is unnamed.
    unnamed = sorted(key for key, names in rules.items() if names is None)
    assert unnamed == [("", "configmaps", "create"), ("", "events", "create"),
                       ("tenrusl.io", "webhookretrypolicies", "create"), ("tenrusl.io", "webhookretrypolicies", "list"),
                       ("tenrusl.io", "webhookretrypolicies", "watch")]  # fmt: skip


def test_view_and_edit_users_read_and_pause_policies(render: Render) -> None:
    roles = {r["metadata"]["name"].rsplit("-", 1)[-1]: r for r in by_kind(render(), "ClusterRole")}
    view, edit = role_rules(roles["view"]), role_rules(roles["edit"])
    assert roles["view"]["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-view"] == "true"
    assert roles["edit"]["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"] == "true"
    for verb in ("get", "list", "watch"):
        assert ("tenrusl.io", "webhookretrypolicies", verb) in view
    # `kubectl tenrusl pause` is a merge patch of the spec (edit includes view's rights by aggregation).
    assert ("tenrusl.io", "webhookretrypolicies", "patch") in edit
    assert not [k for k in edit if k[1].endswith("/status")], "status stays the operator's"
    assert by_kind(render(sets={"rbac.aggregateToDefaultRoles": False}), "ClusterRole") == []


# -- CRDs that upgrade ------------------------------------------------------------------------------


def test_the_crd_is_a_template_kept_on_uninstall_and_equal_to_the_source(render: Render) -> None:
    (crd,) = by_kind(render(first_install=True), "CustomResourceDefinition")
    source = yaml.safe_load((ROOT / "crds" / "webhookretrypolicy.yaml").read_text())
    assert crd["spec"] == source["spec"] and crd["metadata"]["name"] == source["metadata"]["name"]
    assert crd["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
    assert crd["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"
    assert "annotations" not in one(render(sets={"crds.keep": False}), "CustomResourceDefinition")["metadata"]
    assert by_kind(render(sets={"crds.install": False}), "CustomResourceDefinition") == []


def test_kube_version_is_the_oldest_the_crd_is_valid_on(helm: str, render: Render) -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["kubeVersion"] == f">={KUBE_VERSIONS[0]}.0-0"
    crd = one(render(), "CustomResourceDefinition")
    kubernetes_validate.validate(crd, KUBE_VERSIONS[0], strict=True)
    older = f"1.{int(KUBE_VERSIONS[0].split('.')[1]) - 1}"
    with pytest.raises(kubernetes_validate.ValidationError, match=r"fieldPath|reason"):
        kubernetes_validate.validate(crd, older, strict=True)  # CEL rules' reason and fieldPath
    done = template(helm, "--kube-version", f"{older}.0", check=False)
    assert done.returncode != 0 and "kubeVersion" in done.stderr


def test_a_first_install_hands_the_policy_to_the_operator(render: Render) -> None:
    """Helm cannot create the policy in the release that creates its CRD: the operator does, from the
    very object an upgrade renders (ownership labels and annotations included, so Helm adopts it)."""
    first = render(first_install=True)
    assert by_kind(first, "WebhookRetryPolicy") == [] and by_kind(first, "CustomResourceDefinition")
    operator = one(first, "Deployment", f"{RELEASE}-operator")["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in operator["env"]}
    handed = json.loads(env["TENRUSL_OPERATOR_POLICY"])
    assert env["TENRUSL_OPERATOR_RELEASE"] == RELEASE
    rendered = copy.deepcopy(one(render(), "WebhookRetryPolicy"))  # the render cache is shared
    for volatile in ("helm.sh/chart", "app.kubernetes.io/version"):  # a chart bump must not restart it
        del rendered["metadata"]["labels"][volatile]
    assert handed == rendered, "the same object as the upgrade's"
    assert handed["metadata"]["annotations"] == {
        "meta.helm.sh/release-name": RELEASE,
        "meta.helm.sh/release-namespace": NAMESPACE,
    }
    assert handed["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"
    assert "paused" not in handed["spec"]


def test_the_operator_runs_its_own_image(render: Render) -> None:
    objects = render("production")
    images = {c["name"]: c["image"] for _, pod in pod_specs(objects) for c in pod["containers"]}
    assert images["operator"] == "registry.example.com/payments/tenrusl-operator:0.2.0"
    assert images["receiver"] == "registry.example.com/payments/tenrusl:0.2.0"


# -- bundled stores that recover -----------------------------------------------------------------------


def test_postgresql_gets_half_an_hour_to_recover_and_two_minutes_to_stop(render: Render) -> None:
    objects = render()
    sts = one(objects, "StatefulSet", f"{RELEASE}-postgresql")
    pod = sts["spec"]["template"]["spec"]
    container = pod["containers"][0]
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 30 * 60
    assert pod["terminationGracePeriodSeconds"] >= 120
    stop = container["lifecycle"]["preStop"]["exec"]["command"][-1]
    assert "pg_ctl stop" in stop and "-m fast" in stop and "-t 110" in stop, "fast, within the grace"
    assert pod["securityContext"]["fsGroupChangePolicy"] == "OnRootMismatch"
    assert [c["name"] for c in pod["initContainers"]] == ["set-password"]


@pytest.mark.parametrize("store", ["postgresql", "redis"])
def test_bundled_stores_have_a_headless_governing_service_and_can_reuse_a_claim(
    render: Render, store: str
) -> None:
    objects = render()
    sts = one(objects, "StatefulSet", f"{RELEASE}-{store}")
    governing = one(objects, "Service", sts["spec"]["serviceName"])
    assert governing["spec"]["clusterIP"] == "None" and governing["spec"]["publishNotReadyAddresses"] is True
    assert one(objects, "Service", f"{RELEASE}-{store}")["spec"].get("clusterIP") != "None", (
        "clients use this one"
    )
    assert sts["spec"]["template"]["spec"]["securityContext"]["fsGroupChangePolicy"] == "OnRootMismatch"
    assert "startupProbe" in sts["spec"]["template"]["spec"]["containers"][0]
    kept = one(
        render(sets={f"{store}.persistence.existingClaim": f"data-old-{store}-0"}),
        "StatefulSet",
        f"{RELEASE}-{store}",
    )
    assert "volumeClaimTemplates" not in kept["spec"]
    volume = next(v for v in kept["spec"]["template"]["spec"]["volumes"] if v["name"] == "data")
    assert volume == {"name": "data", "persistentVolumeClaim": {"claimName": f"data-old-{store}-0"}}
    kubernetes_validate.validate(kept, KUBE_VERSIONS[0], strict=True)


def test_the_values_say_the_volume_size_is_set_at_install() -> None:
    text = (CHART / "values.yaml").read_text()
    for store in ("postgresql", "redis"):
        size_comment = text.split(f"\n{store}:", 1)[1].split("size:", 1)[0]
        assert "Set at install" in size_comment, store


# -- smaller fixes -------------------------------------------------------------------------------------


def test_finished_retry_jobs_are_cleaned_up_before_kube_job_failed_fires(render: Render) -> None:
    job = one(render(), "CronJob")["spec"]["jobTemplate"]["spec"]
    assert 0 < job["ttlSecondsAfterFinished"] < 15 * 60, "KubeJobFailed waits 15 m (kube-prometheus-stack)"


def test_extra_volumes_priority_and_migration_env_reach_every_tenrusl_pod(render: Render) -> None:
    ca = [{"name": "db-ca", "secret": {"secretName": "payments-db-ca"}}]
    mount = [{"name": "db-ca", "mountPath": "/etc/tenrusl/db-ca", "readOnly": True}]
    objects = render(sets={"extraVolumes": ca, "extraVolumeMounts": mount, "priorityClassName": "payments-critical",
                           "migrations.lockTimeoutSeconds": 2, "migrations.lockRetries": 4,
                           "migrations.extraEnv": [{"name": "TENRUSL_LOG_LEVEL", "value": "DEBUG"}]})  # fmt: skip
    for name, pod in pod_specs(objects):
        assert pod.get("priorityClassName") == "payments-critical", name
    for name in (f"Deployment/{RELEASE}-receiver", f"CronJob/{RELEASE}-retry"):
        pod = dict(pod_specs(objects))[name]
        assert ca[0] in pod["volumes"], name
        for container in [*pod["initContainers"], *pod["containers"]]:
            assert mount[0] in container["volumeMounts"], f"{name} {container['name']}"
        migrate = pod["initContainers"][0]
        env = {e["name"]: e.get("value") for e in migrate["env"]}
        assert env["TENRUSL_MIGRATE_LOCK_TIMEOUT_MS"] == "2000" and env["TENRUSL_MIGRATE_LOCK_RETRIES"] == "4"
        assert env["TENRUSL_MIGRATE_STATEMENT_TIMEOUT_MS"] == "0" and env["TENRUSL_LOG_LEVEL"] == "DEBUG"
    for obj in objects:
        if obj["kind"] in ("Deployment", "CronJob"):
            kubernetes_validate.validate(obj, KUBE_VERSIONS[0], strict=True)


def test_two_releases_share_a_namespace_without_a_name_in_common(helm: str) -> None:
    def names(release: str, *extra: str) -> set[tuple[str, str]]:
        done = run_helm(helm, "template", release, str(CHART), "--namespace", NAMESPACE,
                        "--api-versions", SERVES_POLICIES, *extra)  # fmt: skip
        return {(d["kind"], d["metadata"]["name"]) for d in yaml.safe_load_all(done.stdout) if d}

    first = names("shop")
    second = names("billing", "--set", "crds.install=false")  # one release per cluster owns the CRD
    assert first & second == set()
    assert ("WebhookRetryPolicy", "shop-tenrusl") in first and (
        "WebhookRetryPolicy",
        "billing-tenrusl",
    ) in second
    assert ("ConfigMap", "shop-tenrusl") in first


def test_helm_test_passes_through_the_production_network_policies(render: Render) -> None:
    """The test pod reaches the receiver's Service on the webhook port: the receiver's policy admits it."""
    objects = render("production")
    test_pod = one(objects, "Pod")
    service = one(objects, "Service", f"{RELEASE}-receiver")
    assert (
        f"http://{service['metadata']['name']}:{service['spec']['ports'][0]['port']}"
        in test_pod["spec"]["containers"][0]["args"][0]
    )
    rule = next(r for r in one(objects, "NetworkPolicy", f"{RELEASE}-receiver")["spec"]["ingress"]
                if r["ports"][0]["port"] == service["spec"]["ports"][0]["targetPort"])  # fmt: skip
    labels = test_pod["metadata"]["labels"]
    admitted = [peer for peer in rule["from"] if "podSelector" in peer and "namespaceSelector" not in peer
                and all(labels.get(k) == v for k, v in peer["podSelector"]["matchLabels"].items())]  # fmt: skip
    assert admitted, f"no peer of {rule['from']} selects the test pod {labels}"
