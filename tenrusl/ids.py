"""Identifiers: lower-case ULIDs, sortable by creation time (original-spec 1.2)."""

from __future__ import annotations

from ulid import ULID


def new_id() -> str:
    return str(ULID()).lower()


def new_ulid_upper() -> str:
    """Upper-case ULID, as the original uses inside simulated provider references."""
    return str(ULID())
