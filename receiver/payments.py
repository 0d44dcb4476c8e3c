"""The simulated payments API: create (idempotent), read, status lookup, admin list."""

from __future__ import annotations

import contextlib
import hmac
import logging
import re
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from receiver.admin import require_admin
from receiver.errors import ApiError, ValidationFailed
from receiver.idempotency import request_hash, resolve_key
from receiver.keys import SETTINGS, STORE
from receiver.media_types import is_json
from receiver.query_params import query_date, query_page, query_text
from receiver.resources import event_summary, payment_resource
from tenrusl.constants import MAX_AMOUNT, MAX_DESCRIPTION, PAYMENT_STATUSES
from tenrusl.errors import DatabaseUnavailable
from tenrusl.ids import new_id, normalise_id
from tenrusl.storable import JsonRejected, ascii_int, has_unstorable_text, is_storable_text, load_json
from tenrusl.store import PaymentFilter

log = logging.getLogger("tenrusl.payments")

_CURRENCY = re.compile(r"[A-Z]{3}")
_ID = re.compile(r"[A-Za-z0-9-]{1,64}")
_REF = re.compile(r"[A-Za-z0-9\-._]{1,191}")
_DIGITS = re.compile(r"[0-9]+")  # ASCII only: str.isdigit() also accepts superscripts, other scripts
AMOUNT_DIGITS = len(str(MAX_AMOUNT))
_UNSTORABLE = "must not contain NUL characters or unpaired surrogates"
# Simulated references use the provider slug, except the two the original abbreviates.
REF_PREFIX = {"lemonsqueezy": "ls", "amazon_bwp": "amzbwp"}


@dataclass(frozen=True)
class CreatePayment:
    provider: str
    amount: int
    currency: str
    description: str | None
    meta: Any

    def as_command(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "amount": self.amount,
            "currency": self.currency,
            "description": self.description,
            "meta": self.meta,
        }


def parse_amount(value: Any) -> Any:
    """A string of ASCII digits is the number it spells (one too long for bigint is out of range,
    MAX_AMOUNT + 1); anything else is returned as it is, for the type check."""
    if isinstance(value, str) and _DIGITS.fullmatch(value.strip()):
        number = ascii_int(value.strip(), max_digits=AMOUNT_DIGITS)
        return MAX_AMOUNT + 1 if number is None else number
    return value


def parse_create(body: Any, allowlist: tuple[str, ...]) -> CreatePayment:
    """Normalise and validate a create request (docs/design-notes.md); 422 lists every bad field."""
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_json", "The request body must be a JSON object.")
    errors: dict[str, list[str]] = {}
    provider = body.get("provider")
    if isinstance(provider, str) and provider.strip().isascii():  # the Kelvin sign lower-cases to k
        provider = provider.strip().lower()
    if not isinstance(provider, str) or not provider:
        errors["provider"] = ["provider is required."]
    elif provider not in allowlist:
        errors["provider"] = [f"provider must be one of: {', '.join(allowlist)}."]
    amount = parse_amount(body.get("amount"))
    if amount is None:
        errors["amount"] = ["amount is required."]
    elif isinstance(amount, bool) or not isinstance(amount, int):
        errors["amount"] = ["amount must be an integer (minor units)."]
    elif not 1 <= amount <= MAX_AMOUNT:
        errors["amount"] = [f"amount must be between 1 and {MAX_AMOUNT}."]
    currency = body.get("currency")
    if currency is None or currency == "":
        currency = "IDR"
    if isinstance(currency, str) and currency.isascii():  # dotless i upper-cases to an ASCII I
        currency = currency.strip().upper()
    if not isinstance(currency, str) or not _CURRENCY.fullmatch(currency):
        errors["currency"] = ["currency must be a 3-letter ISO 4217 code."]
    description = body.get("description")
    if description is not None and (not isinstance(description, str) or len(description) > MAX_DESCRIPTION):
        errors["description"] = [f"description must be a string of at most {MAX_DESCRIPTION} characters."]
    elif description is not None and not is_storable_text(description):
        errors["description"] = [f"description {_UNSTORABLE}."]
    meta = body.get("meta", body.get("metadata"))
    if meta is None:
        meta = {}
    if not isinstance(meta, dict | list):
        errors["meta"] = ["meta must be a JSON object."]
    elif has_unstorable_text(meta):
        errors["meta"] = [f"meta keys and values {_UNSTORABLE}."]
    if errors:
        raise ValidationFailed(errors)
    return CreatePayment(provider, amount, currency, description, meta)  # type: ignore[arg-type]


async def create_payment(request: web.Request) -> web.Response:
    settings, store = request.app[SETTINGS], request.app[STORE]
    if request.body_exists and not is_json(request.content_type):  # a missing type too
        raise ApiError(415, "unsupported_media_type", "Send the payment as application/json.")
    raw = await request.read()
    try:
        body = load_json(raw) if raw.strip() else None
    except JsonRejected as exc:
        raise ApiError(400, exc.code, exc.message) from None
    command = parse_create(body, settings.providers_allowlist)
    key = resolve_key(request.headers, request.method, request.path_qs, raw)
    digest = request_hash(command.as_command())
    echo = {"Idempotency-Key": key}

    if not await store.claim_idempotency_key(
        key, digest, settings.idempotency_lock_s, settings.idempotency_ttl_s
    ):
        record = await store.get_idempotency_key(key)
        if record is None:  # expired between the two statements: treat as a conflict, client retries
            raise ApiError(409, "idempotency_conflict", "Idempotency conflict; retry.", headers=echo)
        if not hmac.compare_digest(record.request_hash, digest):
            log.warning("idempotency key mismatch", extra={"action": "idempotency_mismatch"})
            raise ApiError(
                409,
                "idempotency_mismatch",
                "Idempotency-Key already used with different request parameters.",
                headers=echo,
            )
        if record.state != "done":
            raise ApiError(
                409,
                "idempotency_conflict",
                "A request with this Idempotency-Key is still in progress.",
                headers={**echo, "Retry-After": "1"},
            )
        return web.json_response(
            record.response_body,
            status=record.response_status or 201,
            headers={**echo, "Idempotency-Replayed": "true"},
        )

    prefix = REF_PREFIX.get(command.provider, command.provider)
    try:
        async with store.connection() as conn, conn.transaction():
            payment = await store.insert_payment(
                id=new_id(),
                provider=command.provider,
                provider_ref=f"sim_{prefix}_{new_id()}",
                amount=command.amount,
                currency=command.currency,
                description=command.description,
                metadata=command.meta,
                idempotency_key=key,
                request_hash=digest,
                conn=conn,
            )
            response_body = {"data": payment_resource(payment)}
            await store.complete_idempotency_key(key, 201, response_body, conn=conn)
    except BaseException:
        await _release_quietly(store, key)
        raise
    log.info(
        "payment created",
        extra={"action": "payment_created", "payment_id": payment.id, "provider": payment.provider},
    )
    return web.json_response(response_body, status=201, headers=echo)


async def _release_quietly(store: Any, key: str) -> None:
    # If the database is gone too, the in-flight lock expires by itself (locked_until).
    with contextlib.suppress(DatabaseUnavailable):
        await store.release_idempotency_key(key)


async def get_payment(request: web.Request) -> web.Response:
    store = request.app[STORE]
    payment_id = request.match_info["id"]
    payment = await store.get_payment(normalise_id(payment_id)) if _ID.fullmatch(payment_id) else None
    if payment is None:
        raise ApiError(404, "payment_not_found", "Payment not found.")
    data = payment_resource(payment)
    data["webhook_events"] = [event_summary(r) for r in await store.list_payment_events(payment)]
    return web.json_response({"data": data})


async def get_payment_status(request: web.Request) -> web.Response:
    settings, store = request.app[SETTINGS], request.app[STORE]
    provider, ref = request.match_info["provider"], request.match_info["provider_ref"]
    if provider not in settings.providers_allowlist:
        raise ApiError(404, "not_found", "Endpoint not found.")
    payment = await store.get_payment_by_ref(provider, ref) if _REF.fullmatch(ref) else None
    if payment is None:
        raise ApiError(404, "payment_not_found", "Payment not found.")
    return web.json_response({"data": payment_resource(payment)})


async def admin_list_payments(request: web.Request) -> web.Response:
    require_admin(request)
    errors: dict[str, list[str]] = {}
    page = query_page(request, errors)
    status = query_text(request, "status", errors)
    if status and status.lower() not in PAYMENT_STATUSES:
        errors["status"] = [f"status must be one of: {', '.join(PAYMENT_STATUSES)}."]
    flt = PaymentFilter(
        provider=(query_text(request, "provider", errors) or "").lower() or None,
        status=status.lower() if status else None,
        q=query_text(request, "q", errors),
        created_from=query_date(request, "created_from", errors, end=False),
        created_to=query_date(request, "created_to", errors, end=True),
    )
    if errors:
        raise ValidationFailed(errors)
    payments, total = await request.app[STORE].list_payments(flt, page.per_page, page.offset)
    return web.json_response(page.body([payment_resource(p) for p in payments], total))
