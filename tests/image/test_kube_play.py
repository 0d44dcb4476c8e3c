"""The chart, really run: the pods it renders started by ``podman kube play`` on the real image.

What is changed from ``helm template`` output, and why (nothing else is):
- the image: rendered with ``image.repository=localhost/tenrusl``, ``image.tag=test``;
- the network: ``hostNetwork: true``, the listen address 127.0.0.1 and free ports for the webhook
  and the admin listener (rendered values), and the container ``ports`` dropped (podman 4.3 refuses port mappings on the host
  network); the database and Redis URLs in the rendered Secrets point at the test servers;
- podman 4.3 workarounds: the Secrets go into podman's secret store as their ``data`` (it cannot
  read back Secrets it played itself), the Deployment's pod runs with ``restartPolicy:
  OnFailure`` (under ``Always`` it restarts a finished init container), one replica; the job
  Pod's checksum annotation is dropped (podman 4.3 caps a Pod's annotation values at 63
  characters, a limit Kubernetes puts on label values, not on annotations); and the
  probes are performed by this test, as the kubelet would (podman turns only the liveness probe
  into an in-container curl command, and runs health checks only under systemd).
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import hmac
import json
import os
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
import pytest
import yaml
from tenrusl_operator import reconcile

from tenrusl.embedded import free_port
from tests.chart.conftest import CHART, one, run_helm, value_args
from tests.image.conftest import eventually, http_status, podman
from tests.tools import ensure

pytestmark = pytest.mark.slow


class Play:
    """Objects from ``helm template``, played with ``podman kube play`` and torn down afterwards."""

    def __init__(self, workdir: Path, conf: str) -> None:
        self.workdir = workdir
        self.env = {**os.environ, "CONTAINERS_CONF": conf}
        self.files: list[Path] = []
        self.secrets: list[str] = []

    async def kube(self, *args: str, check: bool = True) -> Any:
        done = await asyncio.to_thread(
            subprocess.run,
            ["podman", "kube", *args],
            capture_output=True,
            text=True,
            timeout=300,
            env=self.env,
        )
        if check:
            assert done.returncode == 0, f"podman kube {' '.join(args)}:\n{done.stderr[-3000:]}"
        return done

    async def play(self, objects: list[dict[str, Any]]) -> None:
        for secret in [o for o in objects if o["kind"] == "Secret"]:
            data = {k: base64.b64encode(v.encode()).decode() for k, v in secret["stringData"].items()}
            name = secret["metadata"]["name"]
            await podman("secret", "rm", name, check=False)
            done = await asyncio.to_thread(
                subprocess.run, ["podman", "secret", "create", name, "-"], input=json.dumps(data).encode(),
                capture_output=True, timeout=60,
            )  # fmt: skip
            assert done.returncode == 0, done.stderr
            self.secrets.append(name)
        path = self.workdir / f"play-{len(self.files)}.yaml"
        path.write_text(yaml.safe_dump_all([o for o in objects if o["kind"] != "Secret"]))
        self.files.append(path)
        await self.kube("play", str(path))

    async def down(self) -> None:
        for path in reversed(self.files):
            await self.kube("down", str(path), check=False)
        for name in self.secrets:
            await podman("secret", "rm", name, check=False)


@pytest.fixture
async def play(image: str, tmp_path: Path) -> AsyncIterator[Play]:
    if not shutil.which("catatonit", path=f"{os.environ.get('PATH', '')}:/usr/libexec/podman"):
        pytest.skip("catatonit is not installed (podman kube play needs it for the pod; .ci/run installs it)")
    player = Play(tmp_path, ensure("podman-conf"))
    yield player
    await player.down()


def render_for_podman(
    helm: str, release: str, port: int, admin_port: int | None = None
) -> list[dict[str, Any]]:
    """A first install's render (the operator would create the policy: no WebhookRetryPolicy)."""
    sets = {
        "image.repository": "localhost/tenrusl", "image.tag": "test", "image.pullPolicy": "Never",
        "receiver.port": port, "receiver.adminPort": admin_port or free_port(),
        "config.extraEnv": {"TENRUSL_HOST": "127.0.0.1"},
    }  # fmt: skip
    done = run_helm(helm, "template", release, str(CHART), "--namespace", "payments", *value_args([], sets))
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def point_at_test_servers(objects: list[dict[str, Any]], release: str, db_url: str, redis_url: str) -> None:
    one(objects, "Secret", f"{release}-postgresql")["stringData"]["url"] = db_url
    one(objects, "Secret", f"{release}-redis")["stringData"]["url"] = redis_url


def on_host_network(pod_spec: dict[str, Any]) -> dict[str, dict[str, int]]:
    """Put the pod on the host network; return each container's named ports (for the probes)."""
    pod_spec["hostNetwork"] = True
    named = {}
    for c in [*pod_spec.get("initContainers", []), *pod_spec["containers"]]:
        named[c["name"]] = {p["name"]: p["containerPort"] for p in c.pop("ports", [])}
    return named


async def probe(container: dict[str, Any], kind: str, ports: dict[str, int]) -> bool:
    """Perform one of the container's rendered probes the way the kubelet does (httpGet on the pod IP)."""
    get = container[kind]["httpGet"]
    port = ports.get(get["port"], get["port"]) if isinstance(get["port"], str) else get["port"]
    status = await http_status(f"http://127.0.0.1:{port}{get['path']}")
    return status is not None and 200 <= status < 400


def operator_policy_configmap(objects: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    """The policy ConfigMap exactly as the operator writes it for the chart's policy with ``spec``
    (the policy the chart hands the operator on a first install, TENRUSL_OPERATOR_POLICY)."""
    operator = one(objects, "Deployment", next(o["metadata"]["name"] for o in objects
                                               if o["metadata"]["name"].endswith("-operator") and o["kind"] == "Deployment"))  # fmt: skip
    env = {e["name"]: e.get("value") for e in operator["spec"]["template"]["spec"]["containers"][0]["env"]}
    wrp = json.loads(env["TENRUSL_OPERATOR_POLICY"])
    meta = {"name": wrp["metadata"]["name"], "namespace": "payments", "uid": "u-1", "generation": 1}
    policy = reconcile.policy_from_spec({**wrp["spec"], **spec}, reconcile.source_of(meta))
    return reconcile.render_configmap(reconcile.configmap_name(meta["name"], wrp["spec"]), meta, policy)


def signed_mock_webhook(secret: str, event_id: str) -> tuple[bytes, dict[str, str]]:
    body = json.dumps({"id": event_id, "type": "payment.succeeded", "status": "succeeded",
                       "provider_ref": "order-kube-play"}).encode()  # fmt: skip
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return body, {"Content-Type": "application/json", "X-Mock-Signature": signature}


async def test_the_rendered_receiver_pod_passes_its_probes_stores_a_signed_webhook_and_reads_the_policy(
    helm: str, play: Play, proxied_empty_db_url: str, empty_db_url: str, redis_url: str
) -> None:
    release, port, admin_port = f"tenrusl-{uuid.uuid4().hex[:6]}", free_port(), free_port()
    objects = render_for_podman(helm, release, port, admin_port)
    point_at_test_servers(objects, release, proxied_empty_db_url, redis_url)
    deployment = one(objects, "Deployment", f"{release}-receiver")
    deployment["spec"]["replicas"] = 1
    pod = deployment["spec"]["template"]["spec"]
    pod["restartPolicy"] = "OnFailure"
    ports = on_host_network(pod)["receiver"]
    assert ports == {"http": port, "admin": admin_port}
    receiver = pod["containers"][0]
    assert receiver["image"] == "localhost/tenrusl:test"
    policy = operator_policy_configmap(objects, limit=7, batchSize=5)
    played = [policy, deployment, one(objects, "ConfigMap", release), one(objects, "Secret", release),
              one(objects, "Secret", f"{release}-postgresql"), one(objects, "Secret", f"{release}-redis")]  # fmt: skip
    await play.play(played)

    # The init container migrates the empty database; then every probe of the manifest passes.
    for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
        await eventually(functools.partial(probe, receiver, kind, ports), 120, f"the {kind} to pass")
    inspect = await podman("inspect", "--format", "{{.Config.User}} {{.HostConfig.ReadonlyRootfs}}",
                           f"{release}-receiver-pod-0-receiver")  # fmt: skip
    assert inspect.stdout.split() == ["10001:10001", "true"], "the pod's securityContext is applied"

    secret = one(objects, "Secret", release)["stringData"]["TENRUSL_MOCK_SECRET"]
    body, headers = signed_mock_webhook(secret, "evt_kube_play_1")
    async with aiohttp.ClientSession() as session:
        url = f"http://127.0.0.1:{port}/api/v1/webhooks/mock"
        async with session.post(url, data=body, headers=headers) as answer:
            assert answer.status == 202, await answer.text()
            result = (await answer.json())["data"]["result"]
        async with session.post(url, data=body, headers={**headers, "X-Mock-Signature": "0" * 64}) as forged:
            assert forged.status == 401
    assert result["persisted"] is True and result["duplicate"] is False
    with psycopg.connect(empty_db_url) as conn:
        row = conn.execute(
            "SELECT provider, payload_raw FROM webhook_events WHERE event_id = 'evt_kube_play_1'"
        ).fetchone()
    assert row is not None and row[0] == "mock" and bytes(row[1]) == body

    # /metrics on the second port (what the admin Service and the ServiceMonitor reach), counting
    # that webhook; never on the webhook port.
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{ports['admin']}/metrics") as scraped:
            assert scraped.status == 200
            text = await scraped.text()
        async with session.get(f"http://127.0.0.1:{port}/metrics") as public:
            assert public.status == 404
    assert 'tenrusl_webhooks_total{outcome="accepted",provider="mock"} 1.0' in text, text[:2000]

    # The install notes' own first-webhook commands, with the port-forward's address.
    notes_answer = await run_notes_webhook(helm, release, port, secret)
    assert '"persisted": true' in notes_answer and '"duplicate": false' in notes_answer, notes_answer
    with psycopg.connect(empty_db_url) as conn:
        assert conn.execute("SELECT 1 FROM webhook_events WHERE event_id = 'evt_first_1'").fetchone()

    # The runbook's `kubectl exec deploy/<release>-receiver -- tenrusl status`: the receiver pod
    # reads the policy file the operator wrote for the CronJob, through the chart's own mount.
    status = await podman("exec", f"{release}-receiver-pod-0-receiver", "tenrusl", "status", "--json")
    report = json.loads(status.stdout)["policy"]
    assert report["file"]["state"] == "read" and report["file"]["source"]["name"] == release, report
    assert (report["effective"]["limit"], report["effective"]["batchSize"]) == (7, 5)
    assert report["sources"]["limit"] == report["sources"]["batchSize"] == "policy file"


async def run_notes_webhook(helm: str, release: str, port: int, secret: str) -> str:
    """Run step 2 of NOTES.txt (BODY, the openssl signature, curl) against the played pod."""
    for tool in ("openssl", "curl"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (the install notes use it)")
    done = run_helm(helm, "install", release, str(CHART), "--namespace", "payments", "--dry-run=client")
    step = done.stdout.split("NOTES:", 1)[1].split("2. ", 1)[1].split("/metrics and the admin API", 1)[0]
    wanted = ("BODY=", "SIG=", "curl", "-H")
    lines = [line.strip() for line in step.splitlines() if line.strip().startswith(wanted)]
    assert len(lines) == 4, step
    script = " ".join(lines[2:]).replace("\\ ", "")  # the curl command and its continuation line
    script = "\n".join([*lines[:2], script]).replace("localhost:8080", f"127.0.0.1:{port}")
    shell = await asyncio.to_thread(
        subprocess.run, ["bash", "-c", script], capture_output=True, text=True, timeout=60,
        env={"PATH": os.environ["PATH"], "SECRET": secret},
    )  # fmt: skip
    assert shell.returncode == 0, shell.stderr
    return shell.stdout


async def test_the_rendered_cronjob_job_runs_as_a_pod_reads_the_operators_policy_and_records_a_run(
    helm: str, play: Play, proxied_empty_db_url: str, empty_db_url: str, redis_url: str
) -> None:
    release = f"tenrusl-{uuid.uuid4().hex[:6]}"
    objects = render_for_podman(helm, release, free_port())
    point_at_test_servers(objects, release, proxied_empty_db_url, redis_url)
    cronjob = one(objects, "CronJob")
    template = cronjob["spec"]["jobTemplate"]["spec"]["template"]
    pod_name = f"{release}-retry-run"
    job_pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {**template["metadata"], "name": pod_name},
               "spec": template["spec"]}  # fmt: skip
    assert set(job_pod["metadata"].pop("annotations")) == {"checksum/config"}
    on_host_network(job_pod["spec"])
    written = operator_policy_configmap(objects, limit=7, maxAttempts=9)
    played = [written, job_pod, one(objects, "ConfigMap", release), one(objects, "Secret", release),
              one(objects, "Secret", f"{release}-postgresql"), one(objects, "Secret", f"{release}-redis")]  # fmt: skip
    await play.play(played)

    name = f"{pod_name}-retry"

    async def finished() -> bool:
        state = json.loads(
            (await podman("inspect", "--format", "{{json .State}}", name, check=False)).stdout or "{}"
        )
        return state.get("Status") == "exited"

    await eventually(finished, 180, "the retry job to finish")
    state = json.loads((await podman("inspect", "--format", "{{json .State}}", name)).stdout)
    logs = (await podman("logs", name)).stderr + (await podman("logs", name)).stdout
    assert state["ExitCode"] == 0, logs
    assert "CLAIMED=0 OK=0 FAIL=0 DEAD=0" in logs
    with psycopg.connect(empty_db_url) as conn:
        runs = conn.execute("SELECT outcome, trigger, policy FROM retry_runs").fetchall()
    assert len(runs) == 1 and runs[0][0] == "completed" and runs[0][1] == "cron"
    assert runs[0][2]["limit"] == 7 and runs[0][2]["maxAttempts"] == 9, (
        "the runner read the mounted policy file"
    )
