"""The operator's (and the receivers') /metrics in the chart: the port reaches the real CLI, a Service and a
ServiceMonitor lead Prometheus to it, and the NetworkPolicies let Prometheus in.

The alerts TenruslRetryRunnerStale and TenruslRetryPolicyPausedTooLong read the operator's
``tenrusl_retry_policy_*`` series, so a scrape path that does not resolve would silence them.
"""

from __future__ import annotations

from typing import Any

import pytest
from tenrusl_operator import cli as operator_cli

from tenrusl.cli import build_parser
from tenrusl.settings import Settings
from tests.chart.conftest import CHART, RELEASE, Render, by_kind, one, run_helm

MONITORING = {"metrics.serviceMonitor.enabled": True}
PROMETHEUS = [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]
INGRESS = [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}]
# The release's `helm test` pod, always admitted to the webhook port (its probe path).
HELM_TEST = {
    "podSelector": {
        "matchLabels": {"app.kubernetes.io/instance": RELEASE, "app.kubernetes.io/component": "test"}
    }
}


def operator_container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    deploy = one(objects, "Deployment", f"{RELEASE}-operator")
    return next(c for c in deploy["spec"]["template"]["spec"]["containers"] if c["name"] == "operator")


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def scrape_targets(objects: list[dict[str, Any]]) -> dict[str, tuple[str, int]]:
    """For each ServiceMonitor: the container and container port its endpoint reaches, following
    monitor -> Service (labels) -> Service port (by name) -> targetPort (by name) -> pod's port."""
    templates = [d["spec"]["template"] for d in by_kind(objects, "Deployment")]
    reached = {}
    for monitor in by_kind(objects, "ServiceMonitor"):
        name = monitor["metadata"]["name"]
        services = [
            s
            for s in by_kind(objects, "Service")
            if selects(monitor["spec"]["selector"]["matchLabels"], s["metadata"]["labels"])
        ]
        assert len(services) == 1, f"{name} selects {[s['metadata']['name'] for s in services]}"
        service = services[0]
        (endpoint,) = monitor["spec"]["endpoints"]
        assert endpoint["path"] == "/metrics"
        port = next(p for p in service["spec"]["ports"] if p["name"] == endpoint["port"])
        matched = [t for t in templates if selects(service["spec"]["selector"], t["metadata"]["labels"])]
        assert len(matched) == 1, (
            f"Service {service['metadata']['name']} selects {len(matched)} pod templates"
        )
        for container in matched[0]["spec"]["containers"]:
            for container_port in container.get("ports", []):
                if container_port["name"] == port["targetPort"]:
                    reached[name] = (container["name"], container_port["containerPort"])
        assert name in reached, f"{name}: no container port named {port['targetPort']}"
    return reached


def cli_metrics_port(container: dict[str, Any]) -> int:
    """The metrics port `tenrusl operator` really opens with the rendered arguments (its own parser)."""
    args = build_parser().parse_args(container["args"])
    return operator_cli.resolve(args, Settings.from_env({})).operator_metrics_port


@pytest.mark.parametrize("value_set", ["defaults", "production"])
def test_prometheus_reaches_the_port_the_operator_serves_metrics_on(render: Render, value_set: str) -> None:
    objects = render(value_set, sets=MONITORING)
    container = operator_container(objects)
    opened = cli_metrics_port(container)
    assert opened == 8080
    assert scrape_targets(objects) == {
        f"{RELEASE}-receiver": ("receiver", 9090),  # the admin listener, where /metrics is
        f"{RELEASE}-operator": ("operator", opened),
    }
    health = next(p for p in container["ports"] if p["name"] == "health")["containerPort"]
    assert health != opened


def test_a_chosen_metrics_port_reaches_the_cli_the_service_and_the_monitor(render: Render) -> None:
    objects = render(sets={**MONITORING, "operator.metricsPort": 9102})
    assert cli_metrics_port(operator_container(objects)) == 9102
    assert scrape_targets(objects)[f"{RELEASE}-operator"] == ("operator", 9102)
    service = one(objects, "Service", f"{RELEASE}-operator")
    assert service["spec"]["ports"] == [
        {"name": "metrics", "port": 9102, "targetPort": "metrics", "protocol": "TCP"}
    ]


def test_metrics_port_0_turns_the_operators_metrics_off_everywhere(render: Render) -> None:
    objects = render(sets={**MONITORING, "operator.metricsPort": 0, "networkPolicy.enabled": True})
    container = operator_container(objects)
    assert cli_metrics_port(container) == 0
    assert [p["name"] for p in container["ports"]] == ["health"]
    assert [
        s["metadata"]["name"] for s in by_kind(objects, "Service") if "operator" in s["metadata"]["name"]
    ] == []
    assert [m["metadata"]["name"] for m in by_kind(objects, "ServiceMonitor")] == [f"{RELEASE}-receiver"]
    assert one(objects, "NetworkPolicy", f"{RELEASE}-operator")["spec"].get("ingress") is None


def test_without_the_operator_only_the_receiver_is_monitored(render: Render) -> None:
    objects = render("minimal", sets=MONITORING)
    assert list(scrape_targets(objects)) == [f"{RELEASE}-receiver"]


def test_the_metrics_and_liveness_ports_must_differ(helm: str) -> None:
    done = run_helm(helm, "template", RELEASE, str(CHART), "--set", "operator.metricsPort=8081", check=False)
    assert done.returncode != 0
    assert "operator.metricsPort and operator.livenessPort must differ" in done.stderr


def test_network_policies_let_prometheus_scrape_the_operator_and_the_receiver(render: Render) -> None:
    sets = {
        "networkPolicy.enabled": True,
        "networkPolicy.receiverFrom": INGRESS,
        "networkPolicy.metricsFrom": PROMETHEUS,
    }
    objects = render(sets=sets)
    operator = one(objects, "NetworkPolicy", f"{RELEASE}-operator")["spec"]
    assert operator["ingress"] == [{"ports": [{"port": "metrics", "protocol": "TCP"}], "from": PROMETHEUS}]
    receiver = one(objects, "NetworkPolicy", f"{RELEASE}-receiver")["spec"]
    http, admin = [{"port": "http", "protocol": "TCP"}], [{"port": "admin", "protocol": "TCP"}]
    assert receiver["ingress"] == [
        {"ports": http, "from": [*INGRESS, HELM_TEST]},
        {"ports": admin, "from": PROMETHEUS},
    ]
    # The named ports exist on the pods the policies select.
    assert "metrics" in [p["name"] for p in operator_container(objects)["ports"]]


def test_without_metrics_from_nothing_in_the_cluster_reaches_the_admin_port(render: Render) -> None:
    objects = render(sets={"networkPolicy.enabled": True, "networkPolicy.receiverFrom": INGRESS})
    receiver = one(objects, "NetworkPolicy", f"{RELEASE}-receiver")["spec"]
    assert receiver["ingress"] == [
        {"ports": [{"port": "http", "protocol": "TCP"}], "from": [*INGRESS, HELM_TEST]}
    ]


def test_admin_from_opens_the_admin_port_beside_prometheus(render: Render) -> None:
    tool = [{"podSelector": {"matchLabels": {"app": "ops-console"}}}]
    objects = render(sets={"networkPolicy.enabled": True, "networkPolicy.metricsFrom": PROMETHEUS,
                           "networkPolicy.adminFrom": tool})  # fmt: skip
    rules = one(objects, "NetworkPolicy", f"{RELEASE}-receiver")["spec"]["ingress"]
    assert rules[1] == {"ports": [{"port": "admin", "protocol": "TCP"}], "from": [*PROMETHEUS, *tool]}


def test_the_notes_warn_when_the_network_policy_would_keep_prometheus_out(helm: str) -> None:
    def notes(*sets: str) -> str:
        args = [a for s in sets for a in ("--set", s)]
        done = run_helm(helm, "install", RELEASE, str(CHART), "--dry-run=client", *args)
        return done.stdout.split("NOTES:", 1)[1]

    closed = ("networkPolicy.enabled=true", "metrics.serviceMonitor.enabled=true")
    assert "WARNING: networkPolicy.metricsFrom is empty" in notes(*closed)
    opened = (*closed, "networkPolicy.metricsFrom[0].podSelector.matchLabels.app=prometheus")
    assert "networkPolicy.metricsFrom" not in notes(*opened)
