"""Small helpers for receiver tests: signed mock deliveries computed from the documented scheme."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from tests.conftest import MOCK_SECRET


def mock_delivery(payload: dict[str, Any], secret: str = MOCK_SECRET) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload).encode()
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return body, {"Content-Type": "application/json", "X-Mock-Signature": signature}


async def create_payment(
    client: Any, provider: str = "mock", amount: int = 1000, **extra: Any
) -> dict[str, Any]:
    resp = await client.post("/api/v1/payments", json={"provider": provider, "amount": amount, **extra})
    assert resp.status == 201, await resp.text()
    return (await resp.json())["data"]
