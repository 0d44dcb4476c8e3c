"""Optional event-type allowlist: 422 for a refused type, nothing stored, strict mode for a missing one."""

from __future__ import annotations

import json
from typing import Any

import pytest

from receiver.app import create_app
from receiver.errors import ApiError
from receiver.event_types import allowed_types, check_event_type, parse_allowlist, type_matches
from receiver.providers.mock import MockProvider
from tenrusl.settings import SettingsError
from tests.conftest import MOCK_SECRET

URL = "/api/v1/webhooks/mock"
ENV = "TENRUSL_WEBHOOK_ALLOWED_EVENT_TYPES_JSON"


def delivery(payload: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    signed = MockProvider.sign(json.dumps(payload).encode(), {"secret": MOCK_SECRET}, now=0, path=URL)
    return signed.body, signed.headers


async def send(client: Any, payload: dict[str, Any]) -> Any:
    body, headers = delivery(payload)
    return await client.post(URL, data=body, headers=headers)


async def stored(db: Any) -> int:
    row = await (await db.execute("SELECT count(*) AS n FROM webhook_events")).fetchone()
    return row["n"]


def test_pure_rules() -> None:
    allowlist = parse_allowlist({"Stripe": ["payment_intent.succeeded", "charge.*"], "*": ["paid"]})
    assert allowed_types(allowlist, "stripe") == ("payment_intent.succeeded", "charge.*")
    assert allowed_types(allowlist, "xendit") == ("paid",)
    assert allowed_types(parse_allowlist({"stripe": ["x"]}), "xendit") is None
    assert type_matches("charge.refunded", ("charge.*",))
    assert not type_matches("charges", ("charge.*",))
    assert not type_matches("payment_intent.succeeded.extra", ("payment_intent.succeeded",))
    check_event_type({}, "mock", None, strict=True)  # no allowlist: nothing is checked
    check_event_type({"stripe": ["a"]}, "mock", "zzz", strict=True)  # not restricted for mock
    with pytest.raises(ApiError) as refused:
        check_event_type({"*": ["a"]}, "mock", "b", strict=False)
    assert (refused.value.status, refused.value.code) == (422, "event_type_not_allowed")


@pytest.mark.parametrize("bad", ['{"stripe": "payment_intent.succeeded"}', '{"stripe": [1]}', '{"x": [""]}'])
def test_malformed_allowlist_stops_start_up(make_settings: Any, bad: str) -> None:
    with pytest.raises(SettingsError, match=ENV):
        create_app(make_settings(TENRUSL_PROVIDERS_ALLOWLIST="mock", **{ENV: bad}))


async def test_allowed_type_is_accepted_and_other_types_are_422(
    make_settings: Any, make_client: Any, db: Any
) -> None:
    settings = make_settings(TENRUSL_PROVIDERS_ALLOWLIST="mock", **{ENV: '{"mock":["payment.paid"]}'})
    client = await make_client(settings)
    ok = await send(client, {"id": "evt_ok", "type": "payment.paid"})
    assert ok.status == 202
    refused = await send(client, {"id": "evt_no", "type": "payment.refunded"})
    assert refused.status == 422
    assert (await refused.json())["error"]["code"] == "event_type_not_allowed"
    assert "X-RateLimit-Limit" in refused.headers
    assert await stored(db) == 1  # the refused event was not stored
    metrics = await (await client.admin.get("/metrics")).text()
    assert 'tenrusl_webhooks_total{outcome="rejected",provider="mock"} 1.0' in metrics


async def test_star_list_applies_and_provider_list_wins(make_settings: Any, make_client: Any) -> None:
    star = await make_client(make_settings(TENRUSL_PROVIDERS_ALLOWLIST="mock", **{ENV: '{"*":["a.*"]}'}))
    assert (await send(star, {"id": "e1", "type": "a.b"})).status == 202
    assert (await send(star, {"id": "e2", "type": "b"})).status == 422
    own = await make_client(
        make_settings(TENRUSL_PROVIDERS_ALLOWLIST="mock", **{ENV: '{"*":["a.*"],"mock":["b"]}'})
    )
    assert (await send(own, {"id": "e3", "type": "b"})).status == 202
    assert (await send(own, {"id": "e4", "type": "a.b"})).status == 422


async def test_missing_type_passes_unless_strict(make_settings: Any, make_client: Any) -> None:
    env = {"TENRUSL_PROVIDERS_ALLOWLIST": "mock", ENV: '{"mock":["payment.paid"]}'}
    lenient = await make_client(make_settings(**env))
    assert (await send(lenient, {"id": "evt_untyped"})).status == 202
    strict = await make_client(make_settings(TENRUSL_SIGNATURE_STRICT="true", **env))
    resp = await send(strict, {"id": "evt_untyped_2"})
    assert resp.status == 422
    assert (await resp.json())["error"]["code"] == "missing_event_type"


async def test_forged_event_is_401_not_422(make_settings: Any, make_client: Any) -> None:
    """The allowlist runs after verification: an unsigned caller learns nothing about it."""
    client = await make_client(
        make_settings(TENRUSL_PROVIDERS_ALLOWLIST="mock", **{ENV: '{"mock":["payment.paid"]}'})
    )
    resp = await client.post(
        URL, data=b'{"id":"x","type":"nope"}', headers={"Content-Type": "application/json"}
    )
    assert resp.status == 401
