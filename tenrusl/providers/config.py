"""Provider settings, declared once: each provider module lists its variables with these types.

A declaration names the variable (then its legacy fallbacks) and says how its value is read and
checked. The receiver's verifiers read their secrets and keys through the same declarations, and
:func:`tenrusl.providers.check_provider_settings` reads every one of them at start-up, so a bad
value (a public key that does not parse, an unknown mode) stops every process that needs it
with a message naming the variable, instead of failing events one by one later.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from tenrusl.settings import Settings

T = TypeVar("T")


class Setting(ABC):
    """One provider variable: ``names[0]`` is its name, the rest are legacy fallbacks."""

    names: tuple[str, ...]
    # Read only by the sending side (`tenrusl sign`, `simulate`, `dev`), never by a receiver.
    sign_only: bool
    # Its value is a credential: never logged, never shown.
    secret: bool

    @abstractmethod
    def read(self, settings: Settings) -> object:
        """The value in ``settings``; SettingsError naming the variable when it is not valid."""


@dataclass(frozen=True)
class Values(Setting):
    """Comma-separated values, every one accepted: secrets rotate by listing old and new."""

    names: tuple[str, ...]
    dev_default: str = ""  # used outside production when the variable is unset
    secret: bool = True
    sign_only: bool = False

    def read(self, settings: Settings) -> tuple[str, ...]:
        return settings.secrets(*self.names, default="" if settings.production else self.dev_default)

    def newest(self, settings: Settings) -> str:
        """The first value: the sending side signs with the newest of a rotated secret."""
        values = self.read(settings)
        return values[0] if values else ""


@dataclass(frozen=True)
class Text(Setting):
    """A plain string (a path, a URL, a name)."""

    names: tuple[str, ...]
    default: str = ""
    secret: bool = False
    sign_only: bool = False

    def read(self, settings: Settings) -> str:
        return settings.value(*self.names, default=self.default)


@dataclass(frozen=True)
class Choice(Setting):
    """One of a few lower-case words (a compatibility mode, an environment)."""

    names: tuple[str, ...]
    choices: tuple[str, ...]
    default: str
    production_default: str | None = None
    secret: bool = False
    sign_only: bool = False

    def read(self, settings: Settings) -> str:
        default = self.production_default if settings.production and self.production_default else self.default
        return settings.parsed(self._choose, *self.names, default=default)

    def _choose(self, value: str) -> str:
        if value.lower() not in self.choices:
            raise ValueError(f"accepted values: {', '.join(self.choices)}")
        return value.lower()


@dataclass(frozen=True)
class Parsed(Setting, Generic[T]):
    """A value run through ``parse`` (keys, numbers); ``parse`` raises ValueError when it is bad."""

    names: tuple[str, ...]
    parse: Callable[[str], T]
    default: T
    secret: bool = False
    sign_only: bool = False

    def read(self, settings: Settings) -> T:
        return settings.parsed(self.parse, *self.names, default=self.default)


@dataclass(frozen=True)
class Leeway(Setting):
    """A provider's own clock leeway in seconds; the global ``TENRUSL_SIG_TS_LEEWAY_SECONDS`` else."""

    names: tuple[str, ...]
    secret: bool = False
    sign_only: bool = False

    @classmethod
    def of(cls, provider: str) -> Leeway:
        return cls((f"TENRUSL_{provider.upper()}_LEEWAY_SECONDS",))

    def read(self, settings: Settings) -> int:
        return settings.parsed(_positive_int, *self.names, default=settings.signature_leeway_s)


def _positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise ValueError("must be a positive number of seconds")
    return number


def check(settings: Settings, declared: tuple[Setting, ...]) -> None:
    """Read every declaration that a receiver reads; the first bad one raises SettingsError."""
    for setting in declared:
        if not setting.sign_only:
            setting.read(settings)
