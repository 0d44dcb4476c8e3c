"""The interface of a provider's verifier and signer, and the helpers the schemes share.

A provider module (``receiver/providers/<name>.py``) subclasses :class:`Provider`: ``verify``
decides on the raw bytes, before anything is parsed, whether a delivery is authentic; ``sign``
produces one as the provider would and ``sample`` a realistic body to sign (for `tenrusl sign`,
`simulate` and `dev`). What a verified
notification says (event id, type, payment status and reference) is read by the core's entry for
the provider (``tenrusl/providers/<name>.py``); the gate in ``receiver/webhooks.py`` calls
``verify`` and then that entry. Nothing else in the receiver knows a provider's wire format.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

from multidict import CIMultiDictProxy

from receiver.providers.samples import Context, Payload
from tenrusl.providers import ProviderSpec, provider_spec
from tenrusl.security import hmac_matches
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
class Delivery:
    """A delivery as the provider would send it: exact body bytes and headers."""

    body: bytes
    headers: dict[str, str]


class Provider:
    """The receiving (``verify``) and sending (``sign``) side of one provider's wire format.

    Reading a verified notification (event id, type, payment status and reference) is the core's
    job: ``self.spec`` is the provider's entry in ``tenrusl/providers/``, which the retry runner
    uses too. The provider's variables are declared there; this class reads them.
    """

    name: ClassVar[str]
    content_kinds: ClassVar[frozenset[str]] = frozenset({JSON})
    # Headers whose values are signatures (not secrets); their fingerprint is stored for audit.
    signature_headers: ClassVar[tuple[str, ...]] = ()
    # The currency the provider typically settles in, for samples and simulated payments.
    currency: ClassVar[str] = "IDR"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.spec: ProviderSpec = provider_spec(self.name)
        # Per-provider clock leeway (e.g. TENRUSL_STRIPE_LEEWAY_SECONDS), else the global one.
        self.leeway_s = self.spec.leeway.read(settings)

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

    @classmethod
    def sample(cls, ctx: Context) -> Payload:
        """A realistic notification of a successful payment (receiver/providers/samples.py)."""
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


def strip_prefix(value: str, prefix: str = "sha256=") -> str:
    return value[len(prefix) :] if value.lower().startswith(prefix) else value


def parse_timestamp(value: str) -> float | None:
    """Unix seconds from ASCII digits; values above 2e10 are milliseconds (as the original read them)."""
    if not (value.isascii() and value.isdigit()) or len(value) > 20:
        return None
    number = int(value)
    return number / 1000.0 if number > 20_000_000_000 else float(number)


def within_window(timestamp: float, now: float, leeway_s: int) -> bool:
    return abs(now - timestamp) <= leeway_s
