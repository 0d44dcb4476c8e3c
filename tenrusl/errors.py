"""The core's exception tree. Each class's docstring is its default message."""

from __future__ import annotations


class TenruslError(Exception):
    """TenRusl failed."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())


class DatabaseUnavailable(TenruslError):
    """The database is unreachable; try again later."""
