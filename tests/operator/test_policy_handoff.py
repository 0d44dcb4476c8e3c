"""The hand-off: the policy.json the operator wrote into the ConfigMap stops (and restarts) the runner.

The runner reads ``TENRUSL_POLICY_FILE`` through :func:`tenrusl.policy.load_policy_file` and layers
it over its environment settings, which is exactly what this test does with the operator's output.
"""

from __future__ import annotations

from pathlib import Path

from tenrusl.policy import RetryPolicy, load_policy_file
from tenrusl.settings import Settings
from tests.operator.conftest import (
    CONFIGMAPS,
    CRONJOBS,
    WRP,
    Cluster,
    StartOperator,
    condition,
    cronjob_body,
    policy_body,
)
from tests.operator.test_reconcile_on_kmock import merge_patch


def runner_policy(cluster: Cluster, tmp_path: Path) -> RetryPolicy:
    """Mount the ConfigMap the way the CronJob does, then resolve the policy the way the runner does."""
    configmap = cluster.get(CONFIGMAPS, "default-policy")
    assert configmap is not None
    path = tmp_path / "policy.json"
    path.write_text(configmap["data"]["policy.json"], encoding="utf-8")
    settings = Settings.from_env({"TENRUSL_SCHEDULER_LIMIT": "500", "TENRUSL_POLICY_FILE": str(path)})
    assert settings.policy_file == str(path)
    return RetryPolicy.from_settings(settings).with_overrides(load_policy_file(settings.policy_file))


async def test_the_operators_policy_file_pauses_and_resumes_the_runner(
    operator: Cluster, tmp_path: Path
) -> None:
    operator.put(CRONJOBS, cronjob_body())
    operator.put(WRP, policy_body(limit=40))
    await operator.wait_for(lambda: condition(operator.get(WRP, "default"), "Ready").get("status") == "True")
    running = runner_policy(operator, tmp_path)
    assert running.paused is False
    assert running.limit == 40, "the policy file overrides the environment's TENRUSL_SCHEDULER_LIMIT"

    await merge_patch(operator, {"spec": {"paused": True}})
    await operator.wait_for(lambda: condition(operator.get(WRP, "default"), "Paused").get("status") == "True")
    assert runner_policy(operator, tmp_path).paused is True

    await merge_patch(operator, {"spec": {"paused": False}})
    await operator.wait_for(
        lambda: condition(operator.get(WRP, "default"), "Paused").get("status") == "False"
    )
    assert runner_policy(operator, tmp_path).paused is False


async def test_the_real_runner_claims_nothing_while_the_operator_says_paused(
    cluster: Cluster, start_operator: StartOperator, tmp_path: Path, db_url: str, db
) -> None:
    """The runner itself, on a real database, with the ConfigMap content the operator produced."""
    from retry_job.runner import Runner, RunOptions
    from tenrusl.db import open_pool
    from tenrusl.store import Store

    await db.execute(
        "INSERT INTO webhook_events (id, provider, event_id, event_id_source, status, payment_status, "
        "payment_provider_ref, next_retry_at, payload_raw, payload) VALUES ('ev1', 'mock', 'e1', 'payload', "
        "'failed', 'succeeded', 'nope', now() - interval '1 minute', '{}'::bytea, '{}'::jsonb)"
    )
    # The objects exist before the operator starts: kmock never bumps resourceVersion, so an object
    # created between kopf's LIST and its WATCH could go unseen (a real API server has no such gap).
    cluster.put(CRONJOBS, cronjob_body())
    cluster.put(WRP, policy_body())
    operator = await start_operator()
    await operator.wait_for(lambda: condition(operator.get(WRP, "default"), "Ready").get("status") == "True")
    await merge_patch(operator, {"spec": {"paused": True}})
    await operator.wait_for(lambda: condition(operator.get(WRP, "default"), "Paused").get("status") == "True")

    path = tmp_path / "policy.json"
    settings = Settings.from_env(
        {
            "TENRUSL_DATABASE_URL": db_url,
            "TENRUSL_POLICY_FILE": str(path),
            "TENRUSL_PROVIDERS_ALLOWLIST": "mock",
            # ev1 fails again: an hour's minimum wait keeps the run from claiming it a second time.
            "TENRUSL_RETRY_MIN_DELAY_MS": "3600000",
        }
    )

    async def run_once() -> tuple[str, int]:
        path.write_text(operator.must(CONFIGMAPS, "default-policy")["data"]["policy.json"], encoding="utf-8")
        async with open_pool(settings) as pool:
            result = await Runner(settings, Store(pool), RunOptions(trigger="test")).run()
        row = await (await db.execute("SELECT attempts FROM webhook_events WHERE id = 'ev1'")).fetchone()
        return result.outcome, row["attempts"]

    assert await run_once() == ("paused", 1)  # nothing claimed: attempts unchanged

    await merge_patch(operator, {"spec": {"paused": False}})
    await operator.wait_for(
        lambda: condition(operator.get(WRP, "default"), "Paused").get("status") == "False"
    )
    assert await run_once() == ("completed", 2)  # resumed: the due event was claimed and retried
