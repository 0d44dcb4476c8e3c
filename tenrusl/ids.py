"""Identifiers: ULIDs (sortable by creation time), always printed in lower case.

One form everywhere: row ids (payments, webhook events, retry runs) and the ULID inside a
simulated payment's ``provider_ref`` (``sim_<provider>_<ulid>``). ULIDs are case-insensitive, so
an id given in upper case is looked up lower-cased; a reference stored before this rule (with an
upper-case ULID) stays exactly as stored and is still found by its exact value.
"""

from __future__ import annotations

from ulid import ULID


def new_id() -> str:
    return str(ULID()).lower()


def normalise_id(value: str) -> str:
    """An id as we store it: a ULID given in upper case (as some clients print them) is lowered."""
    return value.lower()
