"""Constant-time comparisons, shared by admin authentication and the providers' verifiers.

Every helper compares every pair (no early exit on a match), so the time taken does not tell an
attacker which secret, which candidate, or how much of a value matched.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable


def hmac_sha256_hex(secret: str | bytes, message: bytes) -> str:
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def matches_any(expected: Iterable[str], provided: Iterable[str], *, fold_case: bool = False) -> bool:
    """Does any provided value equal any expected one? Constant-time over all pairs."""
    candidates = list(provided)
    found = False
    for exp in expected:
        for got in candidates:
            a, b = (exp.lower(), got.lower()) if fold_case else (exp, got)
            found |= hmac.compare_digest(a.encode(), b.encode())
    return found


def hmac_matches(secrets: Iterable[str], message: bytes, provided: Iterable[str]) -> bool:
    """Does any provided hex digest equal HMAC-SHA256(secret, message) for any of the secrets?"""
    return matches_any([hmac_sha256_hex(secret, message) for secret in secrets], provided, fold_case=True)
