"""Payment-status inference from a webhook payload, as pure functions.

The generic rule (docs/design-notes.md, "Reading a notification"): the first status field that is
present decides, through the word lists below; ``paid: true`` also means succeeded; anything else
is pending. Providers with their own codes or event-type maps refine it in their module.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tenrusl.constants import PAYMENT_FAILED, PAYMENT_PENDING, PAYMENT_SUCCEEDED
from tenrusl.providers.fields import dig

SUCCEEDED_WORDS = frozenset(
    {
        "paid",
        "succeeded",
        "success",
        "completed",
        "captured",
        "charge.succeeded",
        "payment_intent.succeeded",
        "paid_out",
        "settled",
        "settlement",
        "capture",
    }
)
FAILED_WORDS = frozenset(
    {
        "failed",
        "fail",
        "canceled",
        "cancelled",
        "void",
        "expired",
        "denied",
        "rejected",
        "charge.failed",
        "payment_intent.canceled",
        "payment_intent.payment_failed",
    }
)
STATUS_FIELDS = ("status", "payment_status", "transaction_status", "data.status", "resource.status")


def classify(word: Any) -> str | None:
    """Map one status word to a payment status, or None when the word means nothing to us."""
    if not isinstance(word, str):
        return None
    lowered = word.strip().lower()
    if lowered in SUCCEEDED_WORDS:
        return PAYMENT_SUCCEEDED
    if lowered in FAILED_WORDS:
        return PAYMENT_FAILED
    return None


def infer_status(payload: Mapping[str, Any], fields: tuple[str, ...] = STATUS_FIELDS) -> str:
    """The first status field present decides; ``paid: true`` also means succeeded."""
    for path in fields:
        value = dig(payload, path)
        if value is None:
            continue
        return classify(value) or PAYMENT_PENDING
    if payload.get("paid") is True:
        return PAYMENT_SUCCEEDED
    return PAYMENT_PENDING
