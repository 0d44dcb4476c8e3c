"""The webhook gate: ``POST /api/v1/webhooks/{provider}``.

Order: provider known and allowed (404), rate limit (429), content type (415), size cap on the bytes
actually read (413), empty body (400), signature and timestamp on the raw bytes (401), parse (400),
event id (an id longer than its column is hashed, never refused), the optional event-type allowlist
(422), then one database round trip that stores and applies the event. 202 is sent only after that
statement committed; when the database is unreachable the answer is 503 with Retry-After, so the
provider redelivers.

A delivery whose signature verifies is stored whatever it holds (docs/input-rules.md): only a
body that is not JSON (or a form) at all, or nests deeper than tenrusl.storable.MAX_JSON_DEPTH,
is a 400. Text PostgreSQL cannot store is repaired in the stored copy and listed in
``payload_issues``; the raw bytes are kept exactly; an id that cannot be stored is hashed.
"""

from __future__ import annotations

import hashlib
import logging
import time
from typing import Any, NamedTuple
from urllib.parse import parse_qsl

from aiohttp import web

from receiver.errors import ApiError
from receiver.event_types import check_event_type
from receiver.keys import INGEST, METRICS, PROVIDERS, RATE_LIMITER, SETTINGS
from receiver.media_types import is_json
from receiver.middlewares import REQUEST_ID
from receiver.providers.base import FORM, JSON, Provider, SignedRequest
from tenrusl.constants import MAX_EVENT_ID, MAX_EVENT_TYPE, PAYMENT_PENDING
from tenrusl.errors import DatabaseUnavailable
from tenrusl.ids import new_id
from tenrusl.providers import EventId, generated_event_id
from tenrusl.storable import (
    JSON_TOO_DEEP,
    JsonRejected,
    SignedJson,
    is_storable_text,
    load_signed_json,
    repaired,
    storable_text,
)
from tenrusl.store import IngestResult, NewEvent

log = logging.getLogger("tenrusl.webhooks")

DUPLICATE = web.RequestKey("duplicate", bool)

# Request headers kept with the event for audit; signature and credential headers never are.
AUDIT_HEADERS = (
    "content-type",
    "content-length",
    "user-agent",
    "x-request-id",
    "x-correlation-id",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-real-ip",
    "x-event-id",
    "x-event-type",
    "request-id",
    "webhook-id",
    "x-callback-event",
    "x-event-name",
)
_AUDIT_VALUE_MAX = 512
_FORWARDED_MAX = 64
# Recorded on an event whose provider rules raised on its payload (it is kept, with a body-hash id).
EXTRACTION_FAILED = "extraction_failed"


def content_kind(content_type: str, allowed: frozenset[str]) -> str | None:
    """JSON (``application/json`` or ``*+json``) or FORM, if the provider accepts it."""
    if is_json(content_type):
        kind = JSON
    elif content_type == "application/x-www-form-urlencoded":
        kind = FORM
    else:
        return None
    return kind if kind in allowed else None


async def read_capped(request: web.Request, limit: int) -> bytes:
    """Read the body, refusing more than ``limit`` bytes whatever Content-Length claims."""
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, "payload_too_large", f"The body exceeds {limit} bytes.")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "payload_too_large", f"The body exceeds {limit} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_payload(body: bytes, kind: str) -> SignedJson:
    """The verified body as sent (for the provider's field rules) and as it can be stored."""
    if kind == FORM:
        try:
            fields = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
        except UnicodeDecodeError:
            raise ApiError(400, "invalid_payload", "The form body is not valid UTF-8.") from None
        return repaired(dict(fields))  # %00 decodes to NUL
    try:
        parsed = load_signed_json(body)
    except JsonRejected as exc:
        code = JSON_TOO_DEEP if exc.code == JSON_TOO_DEEP else "invalid_payload"
        raise ApiError(400, code, exc.message) from None
    if not isinstance(parsed.value, dict):
        raise ApiError(400, "invalid_payload", "The JSON payload must be an object.")
    return parsed


def audit_headers(request: web.Request) -> dict[str, str]:
    """The audit subset of the headers; undecodable bytes (lone surrogates) become U+FFFD."""
    kept = {}
    for name in AUDIT_HEADERS:
        value = request.headers.get(name)
        if value is not None:
            value = value if len(value) <= _AUDIT_VALUE_MAX else value[:_AUDIT_VALUE_MAX] + "..."
            kept[name] = storable_text(value)
    return kept


def client_ip(request: web.Request, trusted: tuple[str, ...]) -> str | None:
    """The peer address, or the first X-Forwarded-For hop when the peer is a trusted proxy.

    A hop that could not be an address (too long, or text that cannot be stored) is ignored.
    """
    peer = request.remote
    forwarded = request.headers.get("X-Forwarded-For", "")
    if forwarded and trusted and ("*" in trusted or peer in trusted):
        hop = forwarded.split(",")[0].strip()
        if hop and len(hop) <= _FORWARDED_MAX and is_storable_text(hop):
            return hop
    return peer


def fit_event_id(event: EventId) -> EventId:
    """An id that does not fit its column is hashed, never rejected: a 4xx would make the
    provider give up on the event, and a hash still deduplicates every redelivery of it.

    Too long, or holding text PostgreSQL cannot store (NUL, a lone surrogate): ``h_`` + sha256 of
    its UTF-8 bytes (lone surrogates encoded as themselves, so distinct ids hash distinctly).
    """
    if len(event.value) <= MAX_EVENT_ID and is_storable_text(event.value):
        return event
    digest = hashlib.sha256(event.value.encode("utf-8", "surrogatepass")).hexdigest()
    return EventId("h_" + digest, f"{event.source}:hashed")


def fit_text(value: str | None, limit: int) -> str | None:
    """Informational text (the event type) is repaired and cut to its column; the payload keeps it whole."""
    if value is None:
        return None
    value = storable_text(value)
    return value[:limit] if len(value) > limit else value


def envelope(
    provider: str,
    event: EventId,
    event_type: str | None,
    result: IngestResult,
    issues: tuple[str, ...] = (),
) -> dict[str, Any]:
    next_retry_ms = None
    if result.next_retry_at is not None:
        next_retry_ms = max(0, int((result.next_retry_at.timestamp() - time.time()) * 1000))
    return {
        "data": {
            "event": {
                "provider": provider,
                "event_id": event.value,
                "type": event_type,
                "event_id_source": event.source,
                "event_id_generated": event.generated,
            },
            "result": {
                "duplicate": result.duplicate,
                "persisted": True,
                "applied": result.status == "processed",
                "event_status": result.status,
                "status": result.current_payment_status or result.payment_status or "pending",
                "payment_provider_ref": result.payment_provider_ref,
                "next_retry_ms": next_retry_ms,
                "payload_issues": list(issues),
            },
        }
    }


async def webhook_options(request: web.Request) -> web.Response:
    """``OPTIONS``: 204 with the allowed methods, as the original answered (no body, no signature
    check, no database). An unknown or disabled provider is a 404, as for POST."""
    if request.match_info["provider"] not in request.app[PROVIDERS]:
        raise ApiError(404, "unknown_provider", "Unknown or disabled provider.")
    return web.Response(status=204, headers={"Allow": "OPTIONS, POST"})


async def receive_webhook(request: web.Request) -> web.Response:
    app = request.app
    settings, metrics = app[SETTINGS], app[METRICS]
    name = request.match_info["provider"]
    provider: Provider | None = app[PROVIDERS].get(name)
    if provider is None:
        raise ApiError(404, "unknown_provider", "Unknown or disabled provider.")
    outcome = "rejected"
    quota: dict[str, str] = {}  # X-RateLimit-* headers, on every answer once the limiter ran
    try:
        # Before the signature check, so unsigned floods spend their own quota (docs/providers-ops.md).
        quota = await app[RATE_LIMITER].enforce(name, client_ip(request, settings.trusted_proxies))
        response = await _gate(request, provider, settings)
        response.headers.update(quota)
        outcome = "duplicate" if response.status == 202 and request.get(DUPLICATE) else "accepted"
        return response
    except ApiError as exc:
        outcome = {401: "invalid_signature", 429: "rate_limited"}.get(exc.status, "rejected")
        for header, value in quota.items():
            exc.headers.setdefault(header, value)
        raise
    except DatabaseUnavailable:
        outcome = "error"
        raise
    except Exception:
        outcome = "error"
        raise
    finally:
        metrics.count_webhook(name, outcome)


async def _gate(request: web.Request, provider: Provider, settings: Any) -> web.Response:
    kind = content_kind(request.content_type, provider.content_kinds)
    if kind is None:
        raise ApiError(415, "unsupported_media_type", "Unsupported content type for this provider.")
    body = await read_capped(request, settings.webhook_max_payload_bytes)
    if not body.strip():
        raise ApiError(400, "empty_payload", "The webhook body is empty.")
    signed = SignedRequest(
        method=request.method,
        path=request.path,
        headers=request.headers,
        body=body,
        content_kind=kind,
        remote_ip=client_ip(request, settings.trusted_proxies),
        now=time.time(),
    )
    try:
        verdict = await provider.verify(signed)
    except Exception as exc:  # a verifier bug or an unreachable key server fails closed
        log.warning(
            "webhook signature verification error",
            extra={"action": "verify", "provider": provider.name, "error": exc.__class__.__name__},
        )
        verdict = None
    if verdict is None or not verdict.ok:
        reason = verdict.reason if verdict else "verification_exception"
        request.app[METRICS].count_signature_failure(provider.name, reason)
        log.warning(
            "webhook signature rejected",
            extra={
                "action": "verify",
                "provider": provider.name,
                "result": "failed",
                "reason": reason,
                "ip": signed.remote_ip,
            },
        )
        raise ApiError(401, "invalid_signature", "Invalid signature.")

    started = time.perf_counter()
    parsed = parse_payload(body, kind)
    issues = parsed.issues
    fields = extract(provider, parsed.value, signed, body)
    if fields is None:  # the provider's rules raised: keep the event, found by its body hash
        fields = Extracted(generated_event_id(body), None, PAYMENT_PENDING, None)
        issues = (*issues, EXTRACTION_FAILED)
    event = fit_event_id(fields.event)
    event_type = fit_text(fields.event_type, MAX_EVENT_TYPE)
    strict = settings.signature_strict
    check_event_type(settings.allowed_event_types, provider.name, event_type, strict=strict)
    result = await request.app[INGEST].ingest(
        NewEvent(
            id=new_id(),
            provider=provider.name,
            event_id=event.value,
            event_id_source=event.source,
            event_type=event_type,
            payment_status=fields.payment_status,
            payment_ref=fields.payment_ref,
            payload_raw=body,
            payload=parsed.stored,
            headers=audit_headers(request),
            source_ip=signed.remote_ip,
            request_id=request.get(REQUEST_ID),
            signature_hash=provider.signature_hash(signed),
            payload_issues=issues,
        )
    )
    request[DUPLICATE] = result.duplicate
    request.app[METRICS].observe_processing(provider.name, time.perf_counter() - started)
    log.info(
        "webhook stored",
        extra={
            "action": "webhook",
            "provider": provider.name,
            "event_id": event.value,
            "duplicate": result.duplicate,
            "event_status": result.status,
            "webhook_event_id": result.id,
            "reason": verdict.reason,
            "payload_issues": issues or None,
        },
    )
    return web.json_response(envelope(provider.name, event, event_type, result, issues), status=202)


class Extracted(NamedTuple):
    event: EventId
    event_type: str | None
    payment_status: str
    payment_ref: str | None


def extract(
    provider: Provider, payload: dict[str, Any], signed: SignedRequest, body: bytes
) -> Extracted | None:
    """The provider's field rules on the payload as sent; None when they raise on its shape.

    A verified event is stored even then (with a body-hash id and the issue recorded): answering
    500 would only make the provider redeliver the same bytes until it gives up.
    """
    spec = provider.spec  # what the notification says: the core's reading of this provider
    try:
        payment_status, payment_ref = spec.payment_fields(payload)  # what the retry runner reuses
        return Extracted(
            spec.event_id(payload, signed.headers) or generated_event_id(body),
            spec.event_type(payload, signed.headers),
            payment_status,
            payment_ref,
        )
    except Exception as exc:
        log.warning(
            "provider field rules raised on a verified payload; stored for review",
            extra={"action": "extract", "provider": provider.name, "error": exc.__class__.__name__},
        )
        return None
