"""Running named queries on the pool; every database failure becomes DatabaseUnavailable."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg import AsyncCursor
from psycopg.rows import DictRow

from tenrusl.db import UNAVAILABLE_ERRORS, Connection, Pool, error_kind
from tenrusl.errors import DatabaseUnavailable, UnstorableText
from tenrusl.sql import queries
from tenrusl.storable import is_storable_text

# Called with (query name, seconds) after every statement; the receiver hooks its histogram here.
QueryObserver = Callable[[str, float], None]
# Called with the kind (tenrusl.db.error_kind) of every database error; the receiver counts them.
ErrorObserver = Callable[[str], None]


def check_text_params(name: str, params: dict[str, Any]) -> None:
    """Refuse (UnstorableText) a text parameter PostgreSQL would refuse with a data error.

    Cheap: a scan of each string parameter (lists of strings too); JSON parameters are checked
    where they are built (receiver.webhooks repairs, receiver.payments validates).
    """
    for key, value in params.items():
        if isinstance(value, str):
            if not is_storable_text(value):
                raise UnstorableText(name, key)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, str) and not is_storable_text(item):
                    raise UnstorableText(name, key)


class StoreBase:
    def __init__(
        self,
        pool: Pool,
        observe: QueryObserver | None = None,
        on_error: ErrorObserver | None = None,
    ) -> None:
        self.pool = pool
        self._observe = observe
        self._on_error = on_error

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        """A pooled connection; unavailability (including pool timeouts) is DatabaseUnavailable."""
        try:
            async with self.pool.connection() as conn:
                yield conn
        except UNAVAILABLE_ERRORS as exc:
            self._failed(exc)
            raise DatabaseUnavailable(f"database unavailable: {exc.__class__.__name__}") from exc
        except psycopg.Error as exc:
            self._failed(exc)
            raise

    def _failed(self, exc: BaseException) -> None:
        if self._on_error:
            self._on_error(error_kind(exc))

    async def _run(
        self, conn: Connection, name: str, params: dict[str, Any], checked: bool = False
    ) -> AsyncCursor[DictRow]:
        if not checked:  # checked: the caller ran check_text_params on every value already
            check_text_params(name, params)
        started = time.perf_counter()
        try:
            return await conn.execute(queries[name], params)
        finally:
            if self._observe:
                self._observe(name, time.perf_counter() - started)

    async def fetch_one(
        self, name: str, params: dict[str, Any] | None = None, conn: Connection | None = None
    ) -> DictRow | None:
        if conn is not None:
            return await (await self._run(conn, name, params or {})).fetchone()
        async with self.connection() as own:
            return await (await self._run(own, name, params or {})).fetchone()

    async def fetch_all(
        self,
        name: str,
        params: dict[str, Any] | None = None,
        conn: Connection | None = None,
        checked: bool = False,
    ) -> list[DictRow]:
        if conn is not None:
            return await (await self._run(conn, name, params or {}, checked)).fetchall()
        async with self.connection() as own:
            return await (await self._run(own, name, params or {}, checked)).fetchall()

    async def execute(
        self, name: str, params: dict[str, Any] | None = None, conn: Connection | None = None
    ) -> int:
        """Run a statement; returns the number of rows it touched."""
        if conn is not None:
            return (await self._run(conn, name, params or {})).rowcount
        async with self.connection() as own:
            return (await self._run(own, name, params or {})).rowcount
