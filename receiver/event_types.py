"""Optional per-provider event-type allowlist (``TENRUSL_WEBHOOK_ALLOWED_EVENT_TYPES_JSON``).

``{"stripe": ["payment_intent.succeeded", "charge.*"], "*": [...]}``: a provider's own list wins,
``"*"`` applies to providers without one, and a provider with neither accepts every type. An
entry ending in ``*`` matches by prefix. A type that is not allowed is rejected with 422 after
verification and before anything is stored: the gate never acknowledges an event it did not
store (docs/providers-ops.md explains the choice).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from receiver.errors import ApiError
from tenrusl.settings import SettingsError

ENV = "TENRUSL_WEBHOOK_ALLOWED_EVENT_TYPES_JSON"


def parse_allowlist(raw: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    """Validate the setting at start-up: each value must be a list of non-empty strings."""
    parsed: dict[str, tuple[str, ...]] = {}
    for name, types in raw.items():
        if not isinstance(types, list) or not all(isinstance(t, str) and t.strip() for t in types):
            raise SettingsError(f"{ENV}[{name!r}] must be a list of event-type strings")
        parsed[str(name).strip().lower()] = tuple(t.strip() for t in types)
    return parsed


def allowed_types(allowlist: Mapping[str, tuple[str, ...]], provider: str) -> tuple[str, ...] | None:
    """The list that applies to ``provider``, or None when its types are not restricted."""
    if provider in allowlist:
        return allowlist[provider]
    return allowlist.get("*")


def type_matches(event_type: str, patterns: tuple[str, ...]) -> bool:
    return any(event_type.startswith(p[:-1]) if p.endswith("*") else event_type == p for p in patterns)


def check_event_type(raw: Mapping[str, Any], provider: str, event_type: str | None, *, strict: bool) -> None:
    """Raise 422 when the allowlist is active for ``provider`` and refuses ``event_type``.

    A missing type passes unless ``strict`` (TENRUSL_SIGNATURE_STRICT, on in production).
    """
    if not raw:
        return
    patterns = allowed_types(parse_allowlist(raw), provider)
    if patterns is None:
        return
    if not event_type:
        if strict:
            raise ApiError(422, "missing_event_type", "The webhook has no event type, which is required.")
        return
    if not type_matches(event_type, patterns):
        raise ApiError(
            422, "event_type_not_allowed", f"Event type {event_type!r} is not accepted for this provider."
        )
