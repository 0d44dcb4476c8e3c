"""docs/RUNBOOK.md and the chart agree: every object, port, label and namespace the runbook's
kubectl commands name exists in the default render for release `tenrusl` in namespace `payments`
(the runbook's conventions), and what its commands run inside those pods works there.

tests/observability/test_runbook.py checks that the commands and flags exist; this checks that
what they point at does.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from tenrusl_operator import reconcile

from tests.chart.conftest import NAMESPACE, RELEASE, Render, by_kind, one
from tests.observability.promql import RUNBOOK
from tests.observability.test_runbook import command_lines, invocations

KINDS = {
    "Deployment": ("deploy", "deployment", "deployments"),
    "Service": ("svc", "service", "services"),
    "CronJob": ("cj", "cronjob", "cronjobs"),
    "Job": ("job", "jobs"),
    "StatefulSet": ("sts", "statefulset", "statefulsets"),
    "Pod": ("po", "pod", "pods"),
    "ConfigMap": ("cm", "configmap", "configmaps"),
    "Secret": ("secret", "secrets"),
    "WebhookRetryPolicy": ("wrp", "webhookretrypolicy", "webhookretrypolicies"),
    "Event": ("ev", "event", "events"),
}
KIND = {alias: kind for kind, aliases in KINDS.items() for alias in aliases}
# kubectl flags whose value is the next word (the others are boolean or written --flag=value).
VALUE_FLAGS = {"-n", "--namespace", "-o", "--output", "-l", "--selector", "--field-selector", "--type",
               "-p", "--patch", "-c", "--container", "--context", "--kubeconfig", "--since"}  # fmt: skip
NAMED_VERBS = {"get", "describe", "edit", "patch", "delete", "scale", "label", "annotate"}
KIND_SLASH_NAME = re.compile(r"^(?:--from=)?([a-z]+)/([a-z0-9][-a-z0-9.]*)$")
SERVICE_URL = re.compile(r"https?://([a-z0-9-]+)\.([a-z0-9-]+)\.svc(?:\.cluster\.local)?(?::(\d+))?")
# kubectl's subcommands that take a subcommand of their own (their second word is not a kind).
NESTED = {"rollout", "create", "config"}


class Call:
    """One kubectl call of the runbook, split into what it names."""

    def __init__(self, args: list[str], line: str) -> None:
        self.line = line
        inside = args.index("--") if "--" in args else len(args)
        self.command = args[inside + 1 :]  # what runs in the container (exec)
        self.flags: dict[str, str] = {}
        self.words: list[str] = []
        rest = args[:inside]
        while rest:
            word = rest.pop(0)
            if word.startswith("-") and "=" in word:
                key, value = word.split("=", 1)
                self.flags[key] = value
                self.words.append(word)  # --from=cronjob/NAME names an object
            elif word in VALUE_FLAGS and rest:
                self.flags[word] = rest.pop(0)
            elif word.startswith("-"):
                self.flags[word] = ""
            else:
                self.words.append(word)
        self.verb = [w for w in self.words if not w.startswith("-")][:1]

    @property
    def namespace(self) -> str | None:
        return self.flags.get("-n", self.flags.get("--namespace"))

    @property
    def selector(self) -> str | None:
        return self.flags.get("-l", self.flags.get("--selector"))

    def objects(self) -> list[tuple[str, str]]:
        """(kind, name) of every object the call names: KIND/NAME anywhere, or `VERB KIND NAME`."""
        found = []
        for word in self.words:
            match = KIND_SLASH_NAME.match(word)
            if match:
                found.append((self.kind(match[1]), match[2]))
        positional = [w for w in self.words if not w.startswith("-")]
        if (
            positional[:1]
            and positional[0] in NAMED_VERBS
            and len(positional) >= 3
            and "/" not in positional[1]
        ):
            found.append((self.kind(positional[1]), positional[2]))
        return found

    def created_job(self) -> str | None:
        positional = [w for w in self.words if not w.startswith("-")]
        if positional[:2] == ["create", "job"] and len(positional) == 3:
            return positional[2]
        return None

    def kind(self, alias: str) -> str:
        assert alias in KIND, f"{self.line!r}: unknown kind {alias!r}"
        return KIND[alias]


def kubectl_calls() -> list[Call]:
    calls = []
    for line in command_lines(RUNBOOK.read_text()):
        for tool, args in invocations(line):
            if tool == "kubectl":
                calls.append(Call(args, line))
    return calls


def pod_templates(objects: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """(kind, name) -> pod template of every workload."""
    found = {}
    for obj in objects:
        key = (obj["kind"], obj["metadata"]["name"])
        if obj["kind"] in ("Deployment", "StatefulSet"):
            found[key] = obj["spec"]["template"]
        elif obj["kind"] == "CronJob":
            found[key] = obj["spec"]["jobTemplate"]["spec"]["template"]
    return found


def known_objects(objects: list[dict[str, Any]], calls: list[Call]) -> set[tuple[str, str]]:
    """What the default render creates, what the operator writes for its policy, and the Jobs the
    runbook's own `kubectl create job` lines make."""
    known = {(o["kind"], o["metadata"]["name"]) for o in objects}
    for policy in by_kind(objects, "WebhookRetryPolicy"):
        known.add(("ConfigMap", reconcile.configmap_name(policy["metadata"]["name"], policy["spec"])))
    known |= {("Job", name) for call in calls if (name := call.created_job())}
    return known


@pytest.fixture(scope="module")
def objects(render: Render) -> list[dict[str, Any]]:
    return render()


def test_the_runbook_has_kubectl_calls_to_check() -> None:
    calls = kubectl_calls()
    assert len(calls) >= 40
    assert sum(bool(c.objects()) for c in calls) >= 30


def test_every_object_the_runbooks_kubectl_calls_name_is_rendered(objects: list[dict[str, Any]]) -> None:
    calls = kubectl_calls()
    known = known_objects(objects, calls)
    missing = sorted({f"{kind}/{name}  ({call.line})" for call in calls for kind, name in call.objects()
                      if (kind, name) not in known})  # fmt: skip
    assert missing == []


def test_every_kubectl_call_uses_the_release_namespace() -> None:
    for call in kubectl_calls():
        assert call.namespace == NAMESPACE or "-A" in call.flags or "--all-namespaces" in call.flags, (
            call.line
        )


def test_every_label_selector_selects_rendered_pods(objects: list[dict[str, Any]]) -> None:
    selectors = [(c.selector, c.line) for c in kubectl_calls() if c.selector]
    assert selectors
    templates = pod_templates(objects)
    for selector, line in selectors:
        terms = dict(term.split("=", 1) for term in selector.split(","))
        assert all(re.fullmatch(r"[\w./-]+", k) for k in terms), f"{line!r}: only k=v selectors are checked"
        matched = [key for key, t in templates.items() if all(t["metadata"]["labels"].get(k) == v for k, v in terms.items())]  # fmt: skip
        assert matched, f"{line!r}: no rendered pod has {selector}"


def test_every_port_forward_and_service_url_reaches_a_service_port(objects: list[dict[str, Any]]) -> None:
    services = {s["metadata"]["name"]: s for s in by_kind(objects, "Service")}
    checked = 0
    for call in kubectl_calls():
        if call.verb == ["port-forward"]:
            (target,) = [w for w in call.words if "/" in w]
            kind, name = KIND_SLASH_NAME.match(target).groups()  # type: ignore[union-attr]
            assert KIND[kind] == "Service", call.line
            remote = int(next(w for w in call.words if ":" in w).split(":")[1])
            assert remote in [p["port"] for p in services[name]["spec"]["ports"]], call.line
            checked += 1
    for name, namespace, port in SERVICE_URL.findall(RUNBOOK.read_text()):
        assert namespace == NAMESPACE
        assert int(port or 80) in [p["port"] for p in services[name]["spec"]["ports"]], name
        checked += 1
    assert checked >= 5


def test_the_conventions_table_names_rendered_objects_and_ports(objects: list[dict[str, Any]]) -> None:
    """Each row of the runbook's "Conventions" table: the kinds its first cell names exist under each
    name of its second cell (a port it names is one of the Service's)."""
    table = RUNBOOK.read_text().split("## Conventions", 1)[1].split("| Object | Name |\n|---|---|\n", 1)[1]
    rows = table.split("\n\n", 1)[0].splitlines()
    assert len(rows) >= 6
    known = known_objects(objects, kubectl_calls())
    words = {"Deployment": "Deployment", "Service": "Service", "CronJob": "CronJob", "StatefulSet": "StatefulSet",
             "WebhookRetryPolicy": "WebhookRetryPolicy", "ConfigMap": "ConfigMap"}  # fmt: skip
    for row in rows:
        what, names = row.strip("|").split("|")[:2]
        kinds = [kind for word, kind in words.items() if word in what]
        assert kinds, row
        for name in re.findall(r"`([^`]+)`", names):
            for kind in kinds:
                assert (kind, name) in known, f"{row}: no {kind} {name}"
            for port in re.findall(r"port (\d+)", what):
                ports = [p["port"] for p in one(objects, "Service", name)["spec"]["ports"]]
                assert int(port) in ports, f"{row}: Service {name} has ports {ports}"


def _container(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    return pod_templates(objects)[kind, name]["spec"]["containers"][0]


def _exec_calls(target: str) -> list[Call]:
    return [c for c in kubectl_calls() if c.verb == ["exec"] and target in c.words and c.command]


def test_psql_in_the_bundled_postgresql_uses_its_user_and_database(objects: list[dict[str, Any]]) -> None:
    calls = _exec_calls(f"statefulset/{RELEASE}-postgresql")
    assert calls
    env = {
        e["name"]: e.get("value") for e in _container(objects, "StatefulSet", f"{RELEASE}-postgresql")["env"]
    }
    for call in calls:
        command = call.command
        assert command[0] == "psql", call.line
        assert command[command.index("-U") + 1] == env["POSTGRES_USER"], f"{call.line!r}: no such role"
        assert command[command.index("-d") + 1] == env["POSTGRES_DB"], call.line


def test_redis_cli_in_the_bundled_redis_authenticates(objects: list[dict[str, Any]]) -> None:
    calls = _exec_calls(f"statefulset/{RELEASE}-redis")
    assert [c.command[0] for c in calls] == ["redis-cli"] * len(calls) and calls
    redis = _container(objects, "StatefulSet", f"{RELEASE}-redis")
    assert "--requirepass" in redis["args"]
    env = {e["name"]: e for e in redis["env"]}
    # redis-cli reads REDISCLI_AUTH; it must be the password the server requires.
    assert env["REDISCLI_AUTH"]["valueFrom"] == env["REDIS_PASSWORD"]["valueFrom"]


def test_tenrusl_run_in_a_receiver_pod_reads_the_cronjobs_policy_file(objects: list[dict[str, Any]]) -> None:
    calls = _exec_calls(f"deploy/{RELEASE}-receiver")
    policy_commands = [c for c in calls if c.command[:2] in (["tenrusl", "status"], ["tenrusl", "retry"])]
    assert len(policy_commands) >= 10
    receiver = _container(objects, "Deployment", f"{RELEASE}-receiver")
    runner = _container(objects, "CronJob", f"{RELEASE}-retry")

    def policy_file(container: dict[str, Any]) -> tuple[Any, ...]:
        env = {e["name"]: e.get("value") for e in container["env"]}
        mounts = [m["mountPath"] for m in container["volumeMounts"] if m["name"] == "policy"]
        return env.get("TENRUSL_POLICY_FILE"), mounts

    assert policy_file(receiver) == policy_file(runner) != (None, [])
