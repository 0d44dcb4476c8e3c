"""The receiver's provider registry: one verifier and signer per provider, composed here only.

Each ``receiver/providers/<name>.py`` exposes ``PROVIDER``, a :class:`Provider` subclass. Its
settings are declared, and its notifications read, by the core (``tenrusl/providers/<name>.py``).
"""

from __future__ import annotations

import importlib

from receiver.providers.base import Provider
from tenrusl.constants import PROVIDERS
from tenrusl.providers import check_provider_settings
from tenrusl.settings import Settings, SettingsError


def provider_class(name: str) -> type[Provider]:
    if name not in PROVIDERS:
        raise KeyError(name)
    cls = importlib.import_module(f"{__name__}.{name}").PROVIDER
    if not (isinstance(cls, type) and issubclass(cls, Provider)):
        raise TypeError(f"receiver/providers/{name}.py must define PROVIDER, a Provider subclass")
    return cls


def load_providers(settings: Settings) -> dict[str, Provider]:
    """Instantiate the allowed providers; a bad provider setting stops start-up (SettingsError).

    Every variable of every allowed provider is read first (the same check the retry runner makes),
    so a bad value is reported at start-up whatever the verifier reads lazily.
    """
    if not settings.providers_allowlist:
        raise SettingsError(
            "TENRUSL_PROVIDERS_ALLOWLIST is required in production (deny by default); "
            f"accepted values: a comma-separated subset of {', '.join(PROVIDERS)}"
        )
    check_provider_settings(settings, settings.providers_allowlist)
    return {name: provider_class(name)(settings) for name in settings.providers_allowlist}
