"""Schemathesis hooks for tests/receiver/test_schemathesis.py, loaded by the schemathesis CLI
(``SCHEMATHESIS_HOOKS=<this file>``), in its own process.

Webhooks: about half of the generated ``receiveWebhook`` cases become deliveries to the mock
provider signed like a real one (``X-Mock-Signature`` = hex HMAC-SHA256 of the exact bytes sent), so
the fuzzing reaches the path behind the signature check; the rest stay unsigned (401, 404, 415...).
The check ``signed_webhook_is_stored`` then holds the signed-event guarantee: a signed JSON object is
answered 202 and its row is in PostgreSQL with the raw bytes; any other signed body is the 400 that
tests/hostile.py's oracle predicts.

Settings come from the environment the test sets: TENRUSL_FUZZ_MOCK_SECRET,
TENRUSL_FUZZ_DATABASE_URL, and TENRUSL_FUZZ_CALL_LOG (a file that ``after_call`` appends one JSON line
per request to, for the test's summary).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import psycopg
import schemathesis
from hypothesis import strategies as st
from schemathesis.core import NotSet

sys.path.append(str(Path(__file__).resolve().parents[2]))  # after the standard library, for tests.hostile
from tests.hostile import webhook_oracle

WEBHOOK = "receiveWebhook"
SIGN_ME = "sign-me"  # placed by flatmap_case, replaced by the real signature just before the call
SIGNED = "X-Mock-Signature"
REQUEST_ID = re.compile(r"[A-Za-z0-9\-_.:]{1,128}")


def operation_id(case: schemathesis.Case) -> str | None:
    return case.operation.definition.raw.get("operationId")


@schemathesis.hook
def flatmap_case(context: schemathesis.HookContext, case: schemathesis.Case) -> Any:
    """Marks half of the webhook cases to be sent signed (``before_call`` does it)."""
    if context.operation is None or context.operation.definition.raw.get("operationId") != WEBHOOK:
        return st.just(case)

    def mark(sign: bool) -> schemathesis.Case:
        if sign:
            case.headers[SIGNED] = SIGN_ME
        return case

    return st.booleans().map(mark)


def signed_body(case: schemathesis.Case, response: schemathesis.Response) -> bytes | None:
    """The bytes of a webhook delivery this module signed, or None."""
    signature = case.headers.get(SIGNED)
    if operation_id(case) != WEBHOOK or not signature or signature == SIGN_ME:
        return None
    raw = response.request.body
    if isinstance(raw, str):
        return raw.encode()
    return raw if isinstance(raw, bytes) else b""


def body_bytes(body: Any) -> bytes:
    """The bytes the transport would send for a JSON body, fixed here so that they can be signed."""
    if isinstance(body, bytes):
        return body
    if isinstance(body, NotSet):  # a negative case without a body
        return b""
    return json.dumps(body).encode()


@schemathesis.hook
def before_call(context: schemathesis.HookContext, case: schemathesis.Case, kwargs: dict[str, Any]) -> None:
    """A marked case becomes a JSON delivery to the mock provider, signed over the exact bytes sent.

    Done here rather than at generation so that schemathesis re-validates the changed case (a
    negative case whose only invalid part was the provider became a valid one). The bytes go to
    the transport as ``data``, so what is signed is what is sent.
    """
    if operation_id(case) != WEBHOOK or case.headers.get(SIGNED) != SIGN_ME:
        return
    raw = body_bytes(case.body)
    case.path_parameters = {**case.path_parameters, "provider": "mock"}
    case.media_type = "application/json"
    secret = os.environ["TENRUSL_FUZZ_MOCK_SECRET"].encode()
    case.headers["Content-Type"] = "application/json"
    case.headers[SIGNED] = hmac.new(secret, raw, hashlib.sha256).hexdigest()
    kwargs["data"] = raw


@schemathesis.hook
def after_call(
    context: schemathesis.HookContext, case: schemathesis.Case, response: schemathesis.Response
) -> None:
    """One JSON line per request (operation, status, admin key sent, signed) for the test's summary."""
    line = {
        "operation": operation_id(case),
        "status": response.status_code,
        "admin_key": "X-Admin-Key" in response.request.headers,
        "signed": signed_body(case, response) is not None,
    }
    with open(os.environ["TENRUSL_FUZZ_CALL_LOG"], "a", encoding="utf-8") as log:
        log.write(json.dumps(line) + "\n")


@schemathesis.check
def request_id_is_echoed(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case
) -> bool | None:
    """Every answer carries an X-Request-ID of safe characters (the document's description says so)."""
    values = response.headers.get("x-request-id") or [""]
    assert REQUEST_ID.fullmatch(values[0]), f"X-Request-ID missing or unsafe: {values!r}"
    return None


@schemathesis.check
def signed_webhook_is_stored(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case
) -> bool | None:
    """A correctly signed delivery is stored and answered 202, unless the body is not a JSON object."""
    raw = signed_body(case, response)
    if raw is None:
        return None
    status, code, _ = webhook_oracle(raw)
    assert response.status_code == status, (
        f"signed delivery answered {response.status_code}, expected {status}"
    )
    answer = response.json()
    if status != 202:
        assert answer["error"]["code"] == code, answer
        return None
    result, event = answer["data"]["result"], answer["data"]["event"]
    assert result["persisted"] is True, answer
    with psycopg.connect(os.environ["TENRUSL_FUZZ_DATABASE_URL"]) as db:
        row = db.execute(
            "SELECT payload_raw FROM webhook_events WHERE provider = 'mock' AND event_id = %s",
            (event["event_id"],),
        ).fetchone()
    assert row is not None, f"a 202 for event {event['event_id']!r} that is not in webhook_events"
    if not result["duplicate"]:
        assert bytes(row[0]) == raw, "the stored raw body differs from the bytes that were signed"
    return None
