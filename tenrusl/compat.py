"""Whether this code may run on a database's schema: the schema records the oldest code it serves.

Migrations only expand within a release, so the previous release's code keeps working after an
upgrade and after a rollback (docs/design-notes.md, "Schema compatibility"). When a later release
contracts (drops what an older one used), its migration raises ``oldest_code_version``; code
older than that refuses to start instead of failing one call at a time.
"""

from __future__ import annotations

from dataclasses import dataclass

from tenrusl import __version__
from tenrusl.errors import CodeTooOld
from tenrusl.version import release


@dataclass(frozen=True)
class Compatibility:
    """What the schema says (None: a schema from before migration 0013, which serves everyone)."""

    oldest_code_version: str | None
    set_by: str | None = None


def too_old(code: str, compat: Compatibility) -> bool:
    oldest = compat.oldest_code_version
    return oldest is not None and release(code) < release(oldest)


def refusal(code: str, compat: Compatibility) -> str:
    """The one sentence every refusing process prints (and /ready answers)."""
    return (
        f"this is TenRusl {code}, but the database schema serves TenRusl {compat.oldest_code_version} "
        f"and newer (raised by migration {compat.set_by}): a newer release migrated it and removed what "
        f"this version uses. Run {compat.oldest_code_version} or newer (helm rollback by one release at "
        'most; docs/RUNBOOK.md, "Rollback")'
    )


def require_compatible(compat: Compatibility, code: str = __version__) -> None:
    """Raise :class:`CodeTooOld` when ``code`` is older than the schema serves."""
    if too_old(code, compat):
        raise CodeTooOld(refusal(code, compat))
