"""The webhook gate: ``POST /api/v1/webhooks/{provider}``.

Order: provider known and allowed (404), rate limit (429), content type (415), size cap on the bytes
actually read (413), empty body (400), signature and timestamp on the raw bytes (401), parse (400),
event id (an id longer than its column is hashed, never refused), the optional event-type allowlist
(422), then one database round trip that stores and applies the event. 202 is sent only after that
statement committed; when the database is unreachable the answer is 503 with Retry-After, so the
provider redelivers.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from receiver.errors import ApiError
from receiver.event_types import check_event_type
from receiver.keys import METRICS, PROVIDERS, RATE_LIMITER, SETTINGS, STORE
from receiver.media_types import is_json
from receiver.middlewares import REQUEST_ID
from receiver.providers.base import FORM, JSON, Provider, SignedRequest
from tenrusl.constants import MAX_EVENT_ID, MAX_EVENT_TYPE
from tenrusl.errors import DatabaseUnavailable
from tenrusl.ids import new_id
from tenrusl.providers import EventId, generated_event_id
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


def parse_payload(body: bytes, kind: str) -> dict[str, Any]:
    if kind == FORM:
        try:
            return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False))
        except UnicodeDecodeError:
            raise ApiError(400, "invalid_payload", "The form body is not valid UTF-8.") from None
    try:
        payload = json.loads(body)
    except ValueError:
        raise ApiError(400, "invalid_payload", "Invalid JSON payload.") from None
    if not isinstance(payload, dict):
        raise ApiError(400, "invalid_payload", "The JSON payload must be an object.")
    return payload


def audit_headers(request: web.Request) -> dict[str, str]:
    kept = {}
    for name in AUDIT_HEADERS:
        value = request.headers.get(name)
        if value is not None:
            kept[name] = value if len(value) <= _AUDIT_VALUE_MAX else value[:_AUDIT_VALUE_MAX] + "..."
    return kept


def client_ip(request: web.Request, trusted: tuple[str, ...]) -> str | None:
    """The peer address, or the first X-Forwarded-For hop when the peer is a trusted proxy."""
    peer = request.remote
    forwarded = request.headers.get("X-Forwarded-For", "")
    if forwarded and trusted and ("*" in trusted or peer in trusted):
        return forwarded.split(",")[0].strip() or peer
    return peer


def fit_event_id(event: EventId) -> EventId:
    """An id longer than the column is hashed, never rejected: a 4xx would make the provider give
    up on the event, and a hash still deduplicates every redelivery of it."""
    if len(event.value) <= MAX_EVENT_ID:
        return event
    return EventId("h_" + hashlib.sha256(event.value.encode()).hexdigest(), f"{event.source}:hashed")


def fit_text(value: str | None, limit: int) -> str | None:
    """Informational text (the event type) is cut to its column; the payload keeps it whole."""
    return value[:limit] if value is not None and len(value) > limit else value


def envelope(provider: str, event: EventId, event_type: str | None, result: IngestResult) -> dict[str, Any]:
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
            },
        }
    }


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
        metrics.webhooks.labels(name, outcome).inc()


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
    payload = parse_payload(body, kind)
    spec = provider.spec  # what the notification says: the core's reading of this provider
    event = spec.event_id(payload, signed.headers) or generated_event_id(body)
    event_type = spec.event_type(payload, signed.headers)
    payment_status, payment_ref = spec.payment_fields(payload)
    event = fit_event_id(event)
    event_type = fit_text(event_type, MAX_EVENT_TYPE)
    strict = settings.signature_strict
    check_event_type(settings.allowed_event_types, provider.name, event_type, strict=strict)
    result = await request.app[STORE].ingest_event(
        NewEvent(
            id=new_id(),
            provider=provider.name,
            event_id=event.value,
            event_id_source=event.source,
            event_type=event_type,
            payment_status=payment_status,
            payment_ref=payment_ref,
            payload_raw=body,
            payload=payload,
            headers=audit_headers(request),
            source_ip=signed.remote_ip,
            request_id=request.get(REQUEST_ID),
            signature_hash=provider.signature_hash(signed),
        ),
        retry_delay_ms=0,
        max_attempts=settings.max_retry_attempts,
    )
    request[DUPLICATE] = result.duplicate
    request.app[METRICS].webhook_processing.labels(provider.name).observe(time.perf_counter() - started)
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
        },
    )
    return web.json_response(envelope(provider.name, event, event_type, result), status=202)
