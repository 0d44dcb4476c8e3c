"""Admin authentication: a key by header or Bearer token, compared in constant time."""

from __future__ import annotations

from aiohttp import web

from receiver.errors import ApiError
from receiver.keys import SETTINGS
from tenrusl.security import matches_any


def accepted_keys(request: web.Request) -> list[str]:
    s = request.app[SETTINGS]
    keys = [s.admin_key] if s.admin_key else []
    if s.admin_demo_key and (not s.production or s.admin_accept_demo_in_prod):
        keys.append(s.admin_demo_key)
    return keys


def presented_key(request: web.Request) -> str:
    header = request.app[SETTINGS].admin_header
    value = request.headers.get(header, "").strip() or request.headers.get("X-Admin-Key", "").strip()
    if value:
        return value
    auth = request.headers.get("Authorization", "").strip()
    return auth[7:].strip() if auth[:7].lower() == "bearer " else ""


def require_admin(request: web.Request) -> None:
    """503 when no key is configured (fail closed), 401 on a missing or wrong key."""
    keys = accepted_keys(request)
    if not keys:
        raise ApiError(503, "admin_not_configured", "Admin key is not configured.")
    given = presented_key(request)
    if not given or not matches_any(keys, [given]):
        raise ApiError(401, "unauthorized", "Unauthorized.", headers={"WWW-Authenticate": "Bearer"})
