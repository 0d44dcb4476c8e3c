"""The core's provider catalogue: how each provider's notifications read, and its settings.

One module per provider (``tenrusl/providers/<name>.py``) exposes ``SPEC``, an instance of a
:class:`ProviderSpec` subclass; the names and their order are ``tenrusl.constants.PROVIDERS``.
Everything here is pure (no secrets in memory beyond a check, no I/O), so the receiver and the
retry runner share it without the runner depending on the receiver.
"""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Iterable
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from typing import TYPE_CHECKING

from tenrusl.constants import PROVIDERS
from tenrusl.providers.base import EventId, ProviderSpec, generated_event_id
from tenrusl.providers.config import check

if TYPE_CHECKING:
    from tenrusl.settings import Settings

__all__ = [
    "EventId",
    "ProviderSpec",
    "check_provider_settings",
    "generated_event_id",
    "provider_spec",
    "rules_fingerprint",
]


@cache
def provider_spec(name: str) -> ProviderSpec:
    """The catalogue entry of ``name``; KeyError for a name outside the catalogue."""
    if name not in PROVIDERS:
        raise KeyError(name)
    spec = importlib.import_module(f"{__name__}.{name}").SPEC
    if not isinstance(spec, ProviderSpec) or spec.name != name:
        raise TypeError(f"tenrusl/providers/{name}.py must define SPEC, a ProviderSpec named {name!r}")
    return spec


def rule_files() -> list[Traversable]:
    """The source of the provider rules: every module of this package, and the core modules they
    read with (constants, and the text repair of ``payment_fields``)."""
    modules = [e for e in resources.files(__name__).iterdir() if e.name.endswith(".py")]
    core = [resources.files("tenrusl").joinpath(name) for name in ("constants.py", "storable.py")]
    return [*sorted(modules, key=lambda e: e.name), *core]


def fingerprint(files: Iterable[Traversable]) -> str:
    """A short digest of these files' names and bytes."""
    digest = hashlib.sha256()
    for entry in files:
        digest.update(entry.name.encode() + b"\0" + entry.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


@cache
def rules_fingerprint() -> str:
    """The fingerprint of the provider rules this process runs (:func:`rule_files`).

    Each stored event carries the fingerprint of the rules that read its payment fields
    (``webhook_events.extracted_with``, migration 0010). The retry runner trusts those stored
    fields only when the fingerprint is its own; otherwise it reads the payload again. Any edit
    to the rules changes it, so after an upgrade every older event is read again once with the
    new rules: a changed rule is never skipped, at worst an unchanged one is re-run.
    """
    return fingerprint(rule_files())


def check_provider_settings(settings: Settings, names: Iterable[str] | None = None) -> None:
    """Read every setting of these providers (default: the allowlist, else all) once, at start-up.

    Raises SettingsError naming the first variable that is not valid (a key that does not parse,
    an unknown mode, a bad leeway), so a process stops before it does any work.
    """
    if names is None:
        names = settings.providers_allowlist or PROVIDERS
    for name in names:
        check(settings, provider_spec(name).all_variables())
