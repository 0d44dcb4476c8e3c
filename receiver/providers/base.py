"""The provider interface that every payment provider implements.

A provider module (``receiver/providers/<name>.py``) subclasses :class:`Provider` and answers
four questions about a delivery: is it authentic (``verify``, on the raw bytes, before anything
is parsed), which event is it (``event_id``, ``event_type``), and what does it say about which
payment (``payment_status``, ``payment_ref``). The gate in ``receiver/webhooks.py`` calls them in
that order; nothing else in the receiver knows a provider's wire format.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from multidict import CIMultiDictProxy

from receiver.payload import first_string
from receiver.status import infer_status
from tenrusl.settings import Settings

JSON = "json"
FORM = "form"


@dataclass(frozen=True)
class SignedRequest:
    """Everything a verifier may look at: the exact bytes, headers, path, and the clock."""

    method: str
    path: str
    headers: CIMultiDictProxy[str]
    body: bytes
    content_kind: str  # JSON or FORM, already checked against the provider's policy
    remote_ip: str | None
    now: float  # Unix seconds, injected so verifiers are pure and testable

    def header(self, name: str) -> str:
        return self.headers.get(name, "").strip()


@dataclass(frozen=True)
class Verification:
    """A verifier's verdict. ``reason`` is logged, never returned to the client."""

    ok: bool
    reason: str

    @classmethod
    def accept(cls, reason: str = "ok") -> Verification:
        return cls(True, reason)

    @classmethod
    def reject(cls, reason: str) -> Verification:
        return cls(False, reason)


@dataclass(frozen=True)
class EventId:
    value: str
    source: str  # "payload", "payload_nested", "header:<name>" or "generated_body_hash"

    @property
    def generated(self) -> bool:
        return self.source == "generated_body_hash"


@dataclass(frozen=True)
class Delivery:
    """A delivery as the provider would send it: exact body bytes and headers."""

    body: bytes
    headers: dict[str, str]


class Provider:
    """Base class: generic extraction rules (original-spec 3.3 and 3.5) that providers refine."""

    name: ClassVar[str]
    content_kinds: ClassVar[frozenset[str]] = frozenset({JSON})
    # Payload fields that hold the provider's event id, in order (strings only).
    event_id_fields: ClassVar[tuple[str, ...]] = ("id", "event_id")
    event_type_fields: ClassVar[tuple[str, ...]] = ("type", "event_type", "event")
    # Payload fields that hold *our* payment reference. Never the event id: that was the
    # original's defect 7 (Stripe `evt_...` never matched a payment).
    payment_ref_fields: ClassVar[tuple[str, ...]] = (
        "provider_ref",
        "payment_provider_ref",
        "reference",
        "payment_id",
        "order_id",
        "external_id",
        "invoice_id",
        "reference_id",
        "merchant_reference",
        "data.provider_ref",
        "data.reference",
        "data.payment_id",
        "data.object.id",
        "data.id",
    )

    # Headers whose values are signatures (not secrets); their fingerprint is stored for audit.
    signature_headers: ClassVar[tuple[str, ...]] = ()

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # Per-provider clock leeway (e.g. TENRUSL_STRIPE_LEEWAY_SECONDS), else the global one.
        self.leeway_s = settings.parsed(
            _positive_int, f"TENRUSL_{self.name.upper()}_LEEWAY_SECONDS", default=settings.signature_leeway_s
        )

    async def verify(self, request: SignedRequest) -> Verification:
        raise NotImplementedError

    @classmethod
    def signing_credentials(cls, settings: Settings) -> dict[str, str]:
        """The sending side's credentials for ``sign`` (for `tenrusl sign`/`simulate`/`dev`)."""
        raise NotImplementedError

    @classmethod
    def sign(cls, body: bytes, credentials: dict[str, str], *, now: float, path: str) -> Delivery:
        """Sign ``body`` exactly as the provider does (may add fields to the body, e.g. Midtrans)."""
        raise NotImplementedError

    async def close(self) -> None:
        """Release clients (HTTP sessions, caches); called when the app stops."""

    def signature_hash(self, request: SignedRequest) -> str:
        """sha256 fingerprint of the signature material, to trace a delivery without storing it.

        Bearer tokens and static tokens are secrets, so they are never part of it; without a
        signature header the body is fingerprinted instead.
        """
        lines = [f"provider:{self.name}"]
        lines += [f"{h.lower()}:{request.header(h)}" for h in self.signature_headers if request.header(h)]
        if len(lines) == 1:
            lines.append("body-sha256:" + hashlib.sha256(request.body).hexdigest())
        # Header values may hold lone surrogates (aiohttp decodes undecodable bytes that way).
        return hashlib.sha256("\n".join(lines).encode("utf-8", "surrogatepass")).hexdigest()

    def event_id(self, payload: Mapping[str, Any], request: SignedRequest) -> EventId | None:
        value = first_string(payload, self.event_id_fields)
        if value:
            return EventId(value, "payload")
        value = first_string(
            payload, ("data.id", "resource.id", "object.id", "data.object.id", "data.event_id")
        )
        if value:
            return EventId(value, "payload_nested")
        # A provider's own delivery-id header is a fine dedup key; our X-Request-ID never is
        # (original defect 5: it made every redelivery look new).
        value = request.header("X-Event-Id")
        if value:
            return EventId(value, "header:x-event-id")
        return None

    def event_type(self, payload: Mapping[str, Any], request: SignedRequest) -> str | None:
        return first_string(payload, self.event_type_fields) or request.header("X-Event-Type") or None

    def payment_status(self, payload: Mapping[str, Any]) -> str:
        return infer_status(payload)

    def payment_ref(self, payload: Mapping[str, Any]) -> str | None:
        return first_string(payload, self.payment_ref_fields)


def _positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise ValueError("must be a positive number of seconds")
    return number


def generated_event_id(body: bytes) -> EventId:
    """Deterministic id for id-less payloads, so a redelivery of the same bytes deduplicates."""
    return EventId("gen_" + hashlib.sha256(body).hexdigest()[:32], "generated_body_hash")


def hmac_sha256_hex(secret: str | bytes, message: bytes) -> str:
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def matches_any(expected: Iterable[str], provided: Iterable[str], *, fold_case: bool = False) -> bool:
    """Constant-time: does any provided value equal any expected one?

    Every pair is compared (no early exit on a match), so the time does not depend on which
    secret or which candidate matched.
    """
    found = False
    for exp in expected:
        for got in provided:
            a, b = (exp.lower(), got.lower()) if fold_case else (exp, got)
            found |= hmac.compare_digest(a.encode(), b.encode())
    return found


def hmac_matches(secrets: Iterable[str], message: bytes, provided: Iterable[str]) -> bool:
    """Constant-time: does any provided hex digest equal HMAC-SHA256(secret, message) for any secret?"""
    return matches_any([hmac_sha256_hex(secret, message) for secret in secrets], provided, fold_case=True)


def verify_body_hmac(
    secrets: Iterable[str], request: SignedRequest, header: str, *, missing_secret: str = "missing_secret"
) -> Verification:
    """The common scheme: ``header`` is hex(HMAC-SHA256(secret, raw body)), optional ``sha256=``."""
    if not secrets:
        return Verification.reject(missing_secret)
    signature = strip_prefix(request.header(header))
    if not signature:
        return Verification.reject("missing_signature_header")
    if hmac_matches(secrets, request.body, [signature]):
        return Verification.accept()
    return Verification.reject("invalid_signature")


def first_secret(settings: Settings, env_names: Iterable[str]) -> str:
    """The sending side signs with the first (newest) of a rotated secret's values."""
    values = settings.secrets(*env_names)
    return values[0] if values else ""


def strip_prefix(value: str, prefix: str = "sha256=") -> str:
    return value[len(prefix) :] if value.lower().startswith(prefix) else value


def parse_timestamp(value: str) -> float | None:
    """Unix seconds from ASCII digits; values above 2e10 are milliseconds (original-spec 3.1)."""
    if not (value.isascii() and value.isdigit()) or len(value) > 20:
        return None
    number = int(value)
    return number / 1000.0 if number > 20_000_000_000 else float(number)


def within_window(timestamp: float, now: float, leeway_s: int) -> bool:
    return abs(now - timestamp) <= leeway_s
