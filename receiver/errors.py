"""The one error envelope: ``{"error": {"code", "message", ...}}`` with a stable ``code``.

Handlers raise :class:`ApiError`; the error middleware renders it (and every other failure) as
JSON, so no client ever sees an HTML page or a traceback.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
        fields: Mapping[str, list[str]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})
        self.fields = dict(fields) if fields else None


def error_body(code: str, message: str, fields: Mapping[str, list[str]] | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if fields:
        error["fields"] = dict(fields)
    return {"error": error}


def error_response(
    status: int,
    code: str,
    message: str,
    headers: Mapping[str, str] | None = None,
    fields: Mapping[str, list[str]] | None = None,
) -> web.Response:
    return web.json_response(error_body(code, message, fields), status=status, headers=headers)


class ValidationFailed(ApiError):
    """422 with a message per field."""

    def __init__(self, fields: Mapping[str, list[str]]) -> None:
        super().__init__(422, "validation_failed", "The request has invalid fields.", fields=fields)
