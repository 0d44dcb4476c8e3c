"""Idempotency-Key resolution and request hashing (docs/design-notes.md), as pure functions."""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from tenrusl.constants import MAX_IDEMPOTENCY_KEY
from tenrusl.storable import is_storable_text


def canonical_json(value: Any) -> str:
    """Sorted keys, no whitespace, unescaped unicode: equal documents hash equally."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def resolve_key(headers: Mapping[str, str], method: str, path_qs: str, body: bytes) -> str:
    """The header key (``Idempotency-Key``, else ``X-Idempotency-Key``), else a request fingerprint.

    A key with control characters, non-UTF-8 bytes or over 255 bytes is hashed (``h_``); a
    request without a key gets ``fp_`` + sha256 of method, URI, content type, accept and the
    canonical body, so an accidental double submit within the key TTL replays instead of creating
    a second payment. Header text may hold lone surrogates (undecodable bytes): they are hashed as
    themselves (``surrogatepass``), never an error.
    """
    raw = (headers.get("Idempotency-Key") or headers.get("X-Idempotency-Key") or "").strip()
    if raw:
        encoded = raw.encode("utf-8", "surrogatepass")
        if (
            len(encoded) > MAX_IDEMPOTENCY_KEY
            or not is_storable_text(raw)
            or any(ord(c) < 0x20 or ord(c) == 0x7F for c in raw)
        ):
            return "h_" + hashlib.sha256(encoded).hexdigest()
        return raw
    content_type = headers.get("Content-Type", "").lower()
    canonical = body.decode("utf-8", "replace")
    if "application/json" in content_type:
        with contextlib.suppress(ValueError, RecursionError):
            canonical = canonical_json(json.loads(body))
    parts = [
        method.upper(),
        path_qs if path_qs.startswith("/") else "/" + path_qs,
        content_type,
        headers.get("Accept", "").lower(),
        canonical,
    ]
    return "fp_" + hashlib.sha256("\n".join(parts).encode("utf-8", "surrogatepass")).hexdigest()


def request_hash(command: Mapping[str, Any]) -> str:
    """sha256 of the normalised create command; independent of JSON key order."""
    return hashlib.sha256(canonical_json(dict(command)).encode()).hexdigest()
