"""Every metric the alert rules and the dashboard use is served by a live receiver's /metrics,
with the database gauges populated by real traffic and a real retry run, or by the operator's
/metrics (the effective retry policy; the operator on kmock with a paused policy); every metric
family served is documented in docs/RUNBOOK.md."""

from __future__ import annotations

from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from retry_job.runner import Runner
from tenrusl.db import open_pool
from tenrusl.settings import Settings
from tenrusl.store import Store
from tests.observability.promql import RUNBOOK, dashboard_exprs, load_dashboard, load_rules, metric_names
from tests.operator.conftest import (
    CRONJOBS,
    WRP,
    Cluster,
    StartOperator,
    condition,
    cronjob_body,
    metrics_memo,
    metrics_text,
    policy_body,
)
from tests.receiver.helpers import create_payment, mock_delivery


async def _live_metrics(client: Any, settings: Settings) -> str:
    payment = await create_payment(client)
    for event_id, ref in (("evt_ok", payment["provider_ref"]), ("evt_unmatched", "no-such-payment")):
        body, headers = mock_delivery({"id": event_id, "status": "succeeded", "provider_ref": ref})
        assert (await client.post("/api/v1/webhooks/mock", data=body, headers=headers)).status == 202
    body, headers = mock_delivery({"id": "evt_forged"})
    forged = {**headers, "X-Mock-Signature": "f" * 64}
    assert (await client.post("/api/v1/webhooks/mock", data=body, headers=forged)).status == 401
    async with open_pool(settings) as pool:
        # evt_unmatched fails again; an hour's minimum wait keeps the drain from claiming it twice.
        result = await Runner(settings.replace(retry_min_delay_ms=3_600_000), Store(pool)).run()
    assert result.outcome == "completed" and result.claimed == 1
    resp = await client.admin.get("/metrics")
    assert resp.status == 200
    return await resp.text()


async def _operator_metrics(cluster: Cluster, start_operator: StartOperator) -> str:
    """The operator's /metrics while it governs a paused policy."""
    cluster.put(CRONJOBS, cronjob_body())
    cluster.put(WRP, policy_body(paused=True))
    memo = metrics_memo()
    await start_operator(None, memo)
    await cluster.wait_for(lambda: condition(cluster.get(WRP, "default"), "Paused").get("status") == "True")
    return await metrics_text(memo)


def _served(text: str) -> tuple[set[str], set[str]]:
    """(sample names, family names) of Prometheus text."""
    samples: set[str] = set()
    families: set[str] = set()
    for family in text_string_to_metric_families(text):
        families.add(family.name)
        samples.update(sample.name for sample in family.samples)
    return samples, families


async def test_rules_and_dashboard_use_only_served_metrics(
    make_client: Any, settings: Settings, cluster: Cluster, start_operator: StartOperator
) -> None:
    client = await make_client(settings)
    samples, families = _served(await _live_metrics(client, settings))
    assert "tenrusl_retry_last_success_timestamp_seconds" in samples  # the database gauges are there
    operator_samples, operator_families = _served(await _operator_metrics(cluster, start_operator))
    assert "tenrusl_retry_policy_paused" in operator_samples  # the effective policy is there
    samples |= operator_samples
    families |= operator_families

    recorded = {rule["record"] for rule in load_rules() if "record" in rule}
    used: dict[str, str] = {}
    for rule in load_rules():
        for name in metric_names(rule["expr"]):
            used.setdefault(name, f"rule {rule.get('alert') or rule.get('record')}")
    for expr in dashboard_exprs(load_dashboard()):
        for name in metric_names(expr):
            used.setdefault(name, f"dashboard query {expr[:60]}")
    assert len(used) > 15
    missing = {name: where for name, where in used.items() if name not in samples and name not in recorded}
    assert not missing, missing

    # And the other way round: what /metrics serves is documented for the person on call.
    runbook = RUNBOOK.read_text()
    ours = {f for f in families if f.startswith("tenrusl_") and not f.endswith("_created")}  # client's own
    assert len(ours) >= 20
    undocumented = sorted(f for f in ours if f"`{f}" not in runbook)
    assert not undocumented, undocumented
