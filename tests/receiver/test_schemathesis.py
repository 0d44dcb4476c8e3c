"""Schemathesis against the OpenAPI documents the live receiver serves: every operation, bounded and
deterministic; no 5xx, and every answer as documented (status code, content type, headers, body).

The schemathesis CLI runs in its own process against a real receiver (``make_client``, real
PostgreSQL and Redis), once per listener (the main port, and the admin port with ``/metrics`` and
the admin API), each time loading that listener's document from its ``/api/openapi.yaml``. Its settings are in
tests/receiver/schemathesis.toml (seed, examples per operation, checks, the admin key); its hooks
(tests/receiver/schemathesis_hooks.py) sign half of the webhook cases for the mock provider and
check that every signed event is answered 202 and stored. docs/testing.md says how to run it by
hand and what each check means.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import yaml
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from receiver.keys import RATE_LIMITER
from receiver.openapi import ADMIN, MAIN, document_text
from tests.conftest import ADMIN_KEY, MOCK_SECRET
from tests.receiver.helpers import mock_delivery
from tests.tcp_proxy import TcpProxy

HERE = Path(__file__).parent
HOOKS = HERE / "schemathesis_hooks.py"
CONFIG = HERE / "schemathesis.toml"
# Fewer requests than this for an operation with inputs means the run did not really exercise it
# (one without inputs has only a few distinct cases: itself, and the methods it does not allow).
MIN_CALLS = 20
MIN_SIGNED_STORED = 30
RUN_TIMEOUT_S = 300  # a hung run fails instead of hanging the suite (it takes about 15 s)


def operations(listener: str | None = None) -> dict[str, bool]:
    """Every documented operation id (of one listener, or of both), and whether it takes inputs."""
    found: dict[str, bool] = {}
    for served in (listener,) if listener else (MAIN, ADMIN):
        doc = yaml.safe_load(document_text(served))
        found.update(
            {
                op["operationId"]: bool(op.get("parameters") or op.get("requestBody"))
                for item in doc["paths"].values()
                for op in item.values()
                if isinstance(op, dict) and "operationId" in op
            }
        )
    return found


def summary(calls: list[dict[str, Any]]) -> str:
    """Requests per operation and the statuses they got, printed with ``-s`` (and on failure)."""
    lines = []
    for op in sorted({c["operation"] for c in calls}):
        mine = [c for c in calls if c["operation"] == op]
        statuses = Counter(c["status"] for c in mine)
        lines.append(
            f"{op:26} {len(mine):4} requests  " + " ".join(f"{s}x{n}" for s, n in sorted(statuses.items()))
        )
    return "\n".join(lines)


@pytest.mark.slow
async def test_every_answer_matches_the_served_document(make_client, make_settings, db, db_url, tmp_path):
    client = await make_client(make_settings())
    call_log = tmp_path / "calls.ndjson"
    env = {
        **os.environ,
        "TENRUSL_FUZZ_HOOKS": str(HOOKS),
        "TENRUSL_FUZZ_ADMIN_KEY": ADMIN_KEY,
        "TENRUSL_FUZZ_MOCK_SECRET": MOCK_SECRET,
        "TENRUSL_FUZZ_DATABASE_URL": db_url,
        "TENRUSL_FUZZ_CALL_LOG": str(call_log),
    }
    outputs, codes = [], []
    for served in (client, client.admin):  # the main listener's document, then the admin one's
        origin = str(served.make_url("")).rstrip("/")
        proc = await asyncio.create_subprocess_exec(
            str(Path(sys.executable).with_name("schemathesis")),
            "--config-file",
            str(CONFIG),
            "run",
            f"{origin}/api/openapi.yaml",
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            output, _ = await asyncio.wait_for(proc.communicate(), RUN_TIMEOUT_S)
        except TimeoutError:
            proc.kill()
            raise
        outputs.append(output.decode(errors="replace"))
        codes.append(proc.returncode)
    calls = [json.loads(line) for line in call_log.read_text().splitlines()] if call_log.exists() else []
    report = "\n".join(outputs) + f"\n{summary(calls)}"
    print(report)  # shown with -s, and under "Captured stdout" when the test fails
    assert codes == [0, 0], "schemathesis found answers that do not match the documents (report above)"

    per_operation = Counter(c["operation"] for c in calls)
    documented = operations()
    assert set(per_operation) == set(documented), per_operation
    for op, has_inputs in documented.items():
        assert per_operation[op] >= (MIN_CALLS if has_inputs else 1), (op, per_operation)
    admin = [c for c in calls if c["operation"].startswith("admin")]
    assert {c["admin_key"] for c in admin} == {True, False}, "admin routes fuzzed with and without the key"
    without_key = {c["status"] for c in admin if not c["admin_key"]}
    assert 401 in without_key and without_key <= {401, 405}, without_key  # 405: a method not allowed
    signed = [c for c in calls if c["signed"]]
    assert any(c["status"] == 202 for c in signed) and any(c["status"] == 401 for c in calls)
    stored = await (
        await db.execute("SELECT count(*) AS n FROM webhook_events WHERE provider = 'mock'")
    ).fetchone()
    assert stored is not None and stored["n"] >= MIN_SIGNED_STORED, stored


# --- answers the fuzzing cannot reach, checked against the same document ---------------------------

DOCUMENT_CHECKS = [
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
PINNED = 1_700_000_000.25  # the rate limiter's clock: both requests fall in the same windows
EXAMPLE_PATH_PARAMETERS = {"id": "01abc", "provider": "mock", "provider_ref": "sim_x"}


class Answers:
    """Sends one request described by the document's path and method, and checks the answer
    against the document as served (schemathesis' own checks, in this process)."""

    def __init__(self, schema: Any, origin: str) -> None:
        self.schema, self.origin = schema, origin

    async def __call__(
        self, method: str, path: str, *, data: bytes | None = None, base: str = "/api/v1", **case: Any
    ) -> Any:
        operation = self.schema[path][method]
        made = operation.Case(**case)
        extra = {} if data is None else {"data": data}
        response = await asyncio.to_thread(made.call, base_url=self.origin + base, **extra)
        made.validate_response(response, checks=DOCUMENT_CHECKS)
        return response


async def served_answers(client: Any) -> Answers:
    """Answers checked against the document ``client``'s listener serves."""
    origin = str(client.make_url("")).rstrip("/")
    schema = await asyncio.to_thread(schemathesis.openapi.from_url, f"{origin}/api/openapi.yaml")
    return Answers(schema, origin)


def header(response: Any, name: str) -> str:
    """A header of a schemathesis response (names lower-case, values in lists)."""
    return response.headers[name.lower()][0]


def signed(payload: dict[str, Any]) -> dict[str, Any]:
    body, headers = mock_delivery(payload)
    return {"data": body, "headers": headers, "media_type": "application/json"}


async def test_limits_answer_as_documented(make_client, make_settings, redis_client):
    client = await make_client(
        make_settings(
            TENRUSL_WEBHOOK_MAX_PAYLOAD_BYTES="1024",
            TENRUSL_WEBHOOK_RATE_LIMIT_PROVIDERS_JSON=json.dumps({"stripe": {"per_minute": 1}}),
            TENRUSL_WEBHOOK_ALLOWED_EVENT_TYPES_JSON=json.dumps({"mock": ["payment.*"]}),
        )
    )
    client.server.app[RATE_LIMITER].clock = lambda: PINNED
    answer = await served_answers(client)
    webhook = "/webhooks/{provider}"

    big = await answer("POST", webhook, path_parameters={"provider": "mock"}, **signed({"pad": "x" * 2000}))
    assert big.status_code == 413 and big.json()["error"]["code"] == "payload_too_large"
    payment = await answer(
        "POST",
        "/payments",
        body={"provider": "mock", "amount": 1, "description": "x" * 255, "meta": {"pad": "x" * 2000}},
        media_type="application/json",
    )
    assert payment.status_code == 413

    first = await answer(
        "POST", webhook, path_parameters={"provider": "stripe"}, body={}, media_type="application/json"
    )
    limited = await answer(
        "POST", webhook, path_parameters={"provider": "stripe"}, body={}, media_type="application/json"
    )
    assert first.status_code == 401 and limited.status_code == 429
    assert header(limited, "Retry-After").isdigit() and header(limited, "X-RateLimit-Remaining") == "0"

    refused = await answer(
        "POST",
        webhook,
        path_parameters={"provider": "mock"},
        **signed({"id": "evt_t", "type": "refund.created"}),
    )
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "event_type_not_allowed"


async def test_admin_without_a_configured_key_answers_as_documented(make_client, make_settings):
    client = await make_client(make_settings(TENRUSL_ADMIN_KEY=""))
    answer = await served_answers(client.admin)
    headers = {"X-Admin-Key": ADMIN_KEY}
    for method, path, params in (
        ("GET", "/admin/payments", {}),
        ("GET", "/admin/webhook-events", {}),
        ("POST", "/admin/webhook-events/{id}/retry", {"id": "01abc"}),
    ):
        resp = await answer(method, path, path_parameters=params, headers=headers)
        assert resp.status_code == 503 and resp.json()["error"]["code"] == "admin_not_configured"


async def test_a_processed_event_is_not_retried_as_documented(make_client, make_settings):
    client = await make_client(make_settings())
    answer, admin_answer = await served_answers(client), await served_answers(client.admin)
    created = await answer(
        "POST", "/payments", body={"provider": "mock", "amount": 5}, media_type="application/json"
    )
    ref = created.json()["data"]["provider_ref"]
    event = {"id": "evt_done", "type": "payment.succeeded", "status": "succeeded", "provider_ref": ref}
    stored = await answer(
        "POST", "/webhooks/{provider}", path_parameters={"provider": "mock"}, **signed(event)
    )
    assert stored.json()["data"]["result"]["event_status"] == "processed"
    listed = await admin_answer(
        "GET", "/admin/webhook-events", headers={"X-Admin-Key": ADMIN_KEY}, query={"q": "evt_done"}
    )
    event_id = listed.json()["data"][0]["id"]
    again = await admin_answer(
        "POST",
        "/admin/webhook-events/{id}/retry",
        path_parameters={"id": event_id},
        headers={"X-Admin-Key": ADMIN_KEY},
    )
    assert again.status_code == 409 and again.json()["error"]["code"] == "not_retryable"


async def test_database_outage_answers_as_documented(make_client, make_settings, db_url):
    proxy = TcpProxy(db_url)
    await proxy.start()
    client = await make_client(make_settings(TENRUSL_DATABASE_URL=proxy.url))
    answer, admin_answer = await served_answers(client), await served_answers(client.admin)
    admin = {"X-Admin-Key": ADMIN_KEY}
    await proxy.stop()
    try:
        answers = [
            await answer(
                "POST",
                "/webhooks/{provider}",
                path_parameters={"provider": "mock"},
                **signed({"id": "evt_down"}),
            ),
            await answer(
                "POST", "/payments", body={"provider": "mock", "amount": 1}, media_type="application/json"
            ),
            await answer("GET", "/payments/{id}", path_parameters={"id": "01abc"}),
            await answer(
                "GET",
                "/payments/{provider}/{provider_ref}/status",
                path_parameters={"provider": "mock", "provider_ref": "sim_x"},
            ),
            await admin_answer("GET", "/admin/payments", headers=admin),
            await admin_answer("GET", "/admin/webhook-events", headers=admin),
            await admin_answer(
                "POST", "/admin/webhook-events/{id}/retry", path_parameters={"id": "01abc"}, headers=admin
            ),
        ]
        assert {r.status_code for r in answers} == {503}
        assert {r.json()["error"]["code"] for r in answers} == {"database_unavailable"}
        assert all(header(r, "Retry-After").isdigit() for r in answers)
        ready = await answer("GET", "/ready", base="")
        assert ready.status_code == 503 and ready.json()["error"]["code"] == "database_unavailable"
        assert (await answer("GET", "/up", base="")).status_code == 200
        assert (await admin_answer("GET", "/metrics", base="")).status_code == 200
    finally:
        await proxy.stop()


async def test_a_request_that_is_not_http_gets_the_documented_400_on_every_operation(
    make_client, make_settings
):
    client = await make_client(make_settings())
    checked = set()
    for served in (client, client.admin):  # each listener, its own document
        answer = await served_answers(served)
        raw = answer.schema.raw_schema
        for result in answer.schema.get_all_operations():
            operation = result.ok()
            servers = raw["paths"][operation.path].get("servers") or raw["servers"]
            params = {p.name: EXAMPLE_PATH_PARAMETERS[p.name] for p in operation.path_parameters}
            resp = await answer(
                operation.method.upper(),
                operation.path,
                base=servers[0]["url"].rstrip("/"),
                path_parameters=params,
                headers={"X-Odd": "a\x01b"},  # a control character in a header: aiohttp's parser refuses it
            )
            assert resp.status_code == 400 and resp.json()["error"]["code"] == "malformed_request", (
                operation.label
            )
            checked.add(operation.definition.raw["operationId"])
    assert checked == set(operations())
