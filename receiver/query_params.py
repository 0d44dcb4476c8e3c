"""Query-string parameters of the list endpoints: typed values, per-field errors, pagination."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from aiohttp import web

MAX_PER_PAGE = 100
DEFAULT_PER_PAGE = 20


def query_int(request: web.Request, name: str, default: int, errors: dict[str, list[str]]) -> int:
    raw = request.query.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        errors[name] = [f"{name} must be an integer."]
        return default


def query_date(request: web.Request, name: str, errors: dict[str, list[str]], end: bool) -> datetime | None:
    raw = request.query.get(name, "").strip()
    if not raw:
        return None
    try:
        if len(raw) == 10:  # a date: the whole day counts, so an end date is exclusive of the next day
            day = datetime.combine(date.fromisoformat(raw), datetime.min.time(), UTC)
            return day + timedelta(days=1) if end else day
        stamp = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)
    except ValueError:
        errors[name] = [f"{name} must be a date (YYYY-MM-DD) or an ISO-8601 timestamp."]
        return None


def query_text(request: web.Request, name: str) -> str | None:
    value = request.query.get(name, "").strip()
    return value or None


@dataclass(frozen=True)
class Page:
    number: int
    per_page: int

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.per_page

    def body(self, data: list[Any], total: int) -> dict[str, Any]:
        """``{"data": [...], "meta": {current_page, per_page, total, last_page}}``."""
        return {
            "data": data,
            "meta": {
                "current_page": self.number,
                "per_page": self.per_page,
                "total": total,
                "last_page": max(1, -(-total // self.per_page)),
            },
        }


def query_page(request: web.Request, errors: dict[str, list[str]]) -> Page:
    """``page`` (from 1) and ``per_page`` (non-positive means the default; capped at 100)."""
    per_page = query_int(request, "per_page", DEFAULT_PER_PAGE, errors)
    per_page = DEFAULT_PER_PAGE if per_page <= 0 else min(per_page, MAX_PER_PAGE)
    return Page(max(1, query_int(request, "page", 1, errors)), per_page)
