"""The provider registry: one module per provider, composed here and nowhere else.

Each ``receiver/providers/<name>.py`` exposes ``PROVIDER``, a :class:`Provider` subclass.
"""

from __future__ import annotations

import importlib

from receiver.providers.base import Provider
from tenrusl.constants import PROVIDERS
from tenrusl.settings import Settings, SettingsError


def provider_class(name: str) -> type[Provider]:
    if name not in PROVIDERS:
        raise KeyError(name)
    module = importlib.import_module(f"{__name__}.{name}")
    return module.PROVIDER


def load_providers(settings: Settings) -> dict[str, Provider]:
    """Instantiate the allowed providers; a bad provider setting stops start-up (SettingsError)."""
    if not settings.providers_allowlist:
        raise SettingsError(
            "TENRUSL_PROVIDERS_ALLOWLIST is required in production (deny by default); "
            f"accepted values: a comma-separated subset of {', '.join(PROVIDERS)}"
        )
    return {name: provider_class(name)(settings) for name in settings.providers_allowlist}
