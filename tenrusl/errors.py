"""The core's exception tree. Each class's docstring is its default message."""

from __future__ import annotations


class TenruslError(Exception):
    """TenRusl failed."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())


class DatabaseUnavailable(TenruslError):
    """The database is unreachable; try again later."""


class UnstorableText(TenruslError, ValueError):
    """A text parameter holds a NUL or an unpaired surrogate, which PostgreSQL cannot store.

    Raised by the store before the statement is sent. Inputs are checked (or repaired) where they
    enter, with a precise answer; this is the net under that, so such text is a 400, never a 500.
    """

    def __init__(self, query: str, param: str) -> None:
        super().__init__(f"parameter {param!r} of query {query!r} holds text PostgreSQL cannot store")
        self.query = query
        self.param = param


class DatabaseAuthFailed(DatabaseUnavailable):
    """The database refused our credentials.

    The message carries the server's own words (never the password): a password that no longer
    matches the database's is fixed in the Secret or in the database, not by waiting.
    """


class CodeTooOld(TenruslError):
    """The database was migrated by a newer TenRusl whose schema no longer serves this version."""
