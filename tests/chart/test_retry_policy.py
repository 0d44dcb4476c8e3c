"""The chart's default WebhookRetryPolicy and where its policy file is mounted.

The default policy states no tuning field: the CRD's defaults fill them in, and they stay with
whoever tunes them live (values.yaml explains why). The policy file is mounted, the same way, in
the CronJob's pods and in the receiver pods, so `tenrusl status` there shows what the runs use.
"""

from __future__ import annotations

from typing import Any

import pytest
from tenrusl_operator import crd, reconcile

from tenrusl.policy import RetryPolicy
from tenrusl.settings import Settings
from tests.chart.conftest import CHART, RELEASE, VALUE_SETS, Render, one, run_helm
from tests.tools import ROOT

CRONJOB_FIELDS = {"cronJobName": f"{RELEASE}-retry"}


def test_the_default_policy_states_no_tuning_and_gets_the_crds_defaults(render: Render) -> None:
    spec = one(render(), "WebhookRetryPolicy")["spec"]
    assert spec == CRONJOB_FIELDS, "tuning fields in the chart would be Helm's, not kubectl's"
    defaulted = crd.validate_spec(spec)  # what the API server stores on create
    policy = reconcile.policy_from_spec(defaulted, {})
    assert (policy.limit, policy.batch_size, policy.ramp_minutes, policy.ramp_floor) == (
        RetryPolicy().limit,
        RetryPolicy().batch_size,
        RetryPolicy().ramp_minutes,
        RetryPolicy().ramp_floor,
    )
    assert defaulted["resume"] == {"rampMinutes": policy.ramp_minutes, "floor": policy.ramp_floor}
    # values.yaml states these defaults in its comment on retryPolicy.
    comment = (CHART / "values.yaml").read_text().split("retryPolicy:", 1)[0]
    for said in (f"limit {policy.limit}", f"batchSize {policy.batch_size}",
                 f"rampMinutes {policy.ramp_minutes}", f"floor {policy.ramp_floor}"):  # fmt: skip
        assert said in " ".join(comment.replace("#", " ").split()), said


def test_the_production_policy_states_batch_size_and_resume_and_validates(render: Render) -> None:
    spec = one(render("production"), "WebhookRetryPolicy")["spec"]
    assert {"limit", "batchSize", "resume"} <= set(spec)
    policy = reconcile.policy_from_spec(crd.validate_spec(spec), {})
    assert (policy.limit, policy.batch_size, policy.ramp_minutes, policy.ramp_floor) == (2000, 100, 30, 100)


@pytest.mark.parametrize(
    ("spec", "where"),
    [
        ({"batchSize": 0}, "spec.batchSize"),
        ({"batchSize": "200"}, "spec.batchSize"),
        ({"resume": {"rampMinute": 5}}, "rampMinute"),
        ({"resume": {"floor": 0}}, "spec.resume.floor"),
        ({"resume": {"rampMinutes": -1}}, "spec.resume.rampMinutes"),
        ({"limit": 0}, "spec.limit"),
    ],
)
def test_the_crd_schema_check_rejects_bad_batch_size_and_resume_values(
    render: Render, spec: dict[str, Any], where: str
) -> None:
    rendered = one(render(sets={"retryPolicy.spec": spec}), "WebhookRetryPolicy")["spec"]
    with pytest.raises(crd.SpecError, match=where.replace(".", r"\.")):
        crd.validate_spec(rendered)


def _policy_wiring(pod: dict[str, Any], container: str) -> tuple[Any, ...]:
    """(TENRUSL_POLICY_FILE, the policy volume's mount, the policy volume) of one container."""
    c = next(c for c in pod["containers"] if c["name"] == container)
    env = {e["name"]: e.get("value") for e in c.get("env", [])}.get("TENRUSL_POLICY_FILE")
    mount = [m for m in c.get("volumeMounts", []) if m["name"] == "policy"]
    volume = [v for v in pod.get("volumes", []) if v["name"] == "policy"]
    return env, mount, volume


@pytest.mark.parametrize("value_set", list(VALUE_SETS))
def test_receiver_pods_read_the_policy_file_the_cronjobs_pods_read(render: Render, value_set: str) -> None:
    objects = render(value_set)
    receiver = _policy_wiring(
        one(objects, "Deployment", f"{RELEASE}-receiver")["spec"]["template"]["spec"], "receiver"
    )
    runner = _policy_wiring(
        one(objects, "CronJob")["spec"]["jobTemplate"]["spec"]["template"]["spec"], "retry"
    )
    assert receiver == runner
    path, (mount,), (volume,) = receiver
    assert path == f"{mount['mountPath']}/{reconcile.POLICY_KEY}" and mount["readOnly"] is True
    assert volume["configMap"] == {"name": f"{RELEASE}-policy", "optional": True}
    # The core reads that variable as the policy file (retry_job.policy layers it over the env).
    assert Settings.from_env({"TENRUSL_POLICY_FILE": path}).policy_file == path


def test_mount_in_receiver_false_leaves_the_receiver_without_the_policy_file(render: Render) -> None:
    objects = render(sets={"retryPolicy.mountInReceiver": False})
    pod = one(objects, "Deployment", f"{RELEASE}-receiver")["spec"]["template"]["spec"]
    assert _policy_wiring(pod, "receiver") == (None, [], [])
    cron = one(objects, "CronJob")["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert _policy_wiring(cron, "retry")[0] is not None, "the CronJob always mounts it"


def test_the_chart_readme_says_why_the_default_policy_has_no_tuning(render: Render) -> None:
    readme = " ".join((CHART / "README.md").read_text().split())
    assert "the default policy renders only `spec.cronJobName`" in readme
    assert set(one(render(), "WebhookRetryPolicy")["spec"]) == {"cronJobName"}


STALE = "kubectl apply -f charts/tenrusl/crds/"
FROM_0_1 = "--take-ownership"


@pytest.mark.parametrize("doc", ["README.md", "charts/tenrusl/README.md", "docs/operator.md", "CHANGELOG.md"])
def test_no_upgrade_note_applies_a_crds_folder_the_chart_no_longer_has(doc: str) -> None:
    """The chart installs and upgrades the CRD itself (templates/crds/); upgrading from 0.1.0, whose
    CRD Helm did not own, takes `helm upgrade --take-ownership` once, and each upgrade note says so."""
    text = " ".join((ROOT / doc).read_text().split())
    assert STALE not in text, doc
    assert FROM_0_1 in text, f"{doc}: say how a release of 0.1.0 hands its CRD to Helm"


def test_the_install_notes_say_the_chart_upgrades_and_keeps_the_crd(helm: str) -> None:
    done = run_helm(helm, "install", RELEASE, str(CHART), "--dry-run=client")
    notes = " ".join(done.stdout.split("NOTES:", 1)[1].split())
    assert "The chart installs and upgrades the WebhookRetryPolicy CRD and keeps it" in notes
    assert STALE not in notes
