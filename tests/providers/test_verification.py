"""Every provider, through a live receiver, with deliveries signed as the provider documents."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tenrusl.db import Connection
from tests.providers.conftest import ReceiverFactory
from tests.providers.vectors import PATH, Case, Signed


async def post(client: Any, case: Case, signed: Signed, body: bytes | None = None) -> Any:
    return await client.post(
        PATH.format(name=case.name), data=signed.body if body is None else body, headers=signed.headers
    )


async def test_documented_signature_is_accepted(case: Case, receiver_for: ReceiverFactory) -> None:
    client = await receiver_for(case, [case.keys[0]])
    response = await post(client, case, case.deliver(case.keys[0], time.time()))
    assert response.status == 202, await response.text()
    data = (await response.json())["data"]
    assert data["event"]["provider"] == case.name
    assert data["result"]["duplicate"] is False


async def test_one_byte_tamper_is_rejected(case: Case, receiver_for: ReceiverFactory) -> None:
    if not case.body_protected:
        pytest.skip(f"{case.name} authenticates with a static token that does not cover the body")
    client = await receiver_for(case, [case.keys[0]])
    signed = case.deliver(case.keys[0], time.time())
    tampered = case.tamper(signed.body)
    assert len(tampered) == len(signed.body) and tampered != signed.body
    assert (await post(client, case, signed, body=tampered)).status == 401


async def test_wrong_secret_is_rejected(case: Case, receiver_for: ReceiverFactory) -> None:
    client = await receiver_for(case, [case.keys[0]])
    response = await post(client, case, case.deliver(case.keys[2], time.time()))
    assert response.status == 401
    assert (await response.json())["error"]["code"] == "invalid_signature"


async def test_stale_timestamp_is_rejected(timestamped_case: Case, receiver_for: ReceiverFactory) -> None:
    case = timestamped_case
    client = await receiver_for(case, [case.keys[0]])
    assert (await post(client, case, case.deliver(case.keys[0], time.time() - 3600))).status == 401
    assert (await post(client, case, case.deliver(case.keys[0], time.time() + 3600))).status == 401


async def test_missing_signature_is_rejected(case: Case, receiver_for: ReceiverFactory) -> None:
    client = await receiver_for(case, [case.keys[0]])
    unsigned = case.unsigned(case.deliver(case.keys[0], time.time()))
    assert (await post(client, case, unsigned)).status == 401


@pytest.mark.parametrize("signer", [0, 1], ids=["old", "new"])
async def test_rotated_secrets_accept_either(case: Case, signer: int, receiver_for: ReceiverFactory) -> None:
    client = await receiver_for(case, [case.keys[0], case.keys[1]])
    response = await post(client, case, case.deliver(case.keys[signer], time.time()))
    assert response.status == 202, await response.text()


async def test_duplicate_delivery_is_stored_once(
    case: Case, receiver_for: ReceiverFactory, db: Connection
) -> None:
    client = await receiver_for(case, [case.keys[0]])
    signed = case.deliver(case.keys[0], time.time())
    first = await post(client, case, signed)
    second = await post(client, case, signed)
    assert first.status == 202 and second.status == 202, await second.text()
    assert (await second.json())["data"]["result"]["duplicate"] is True
    rows = await (
        await db.execute("SELECT event_id, attempts FROM webhook_events WHERE provider = %s", (case.name,))
    ).fetchall()
    assert len(rows) == 1
    assert rows[0]["event_id"] == (await first.json())["data"]["event"]["event_id"]
