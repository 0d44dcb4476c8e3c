"""Query-string parameters of the list endpoints: typed values, per-field errors, pagination.

Strict where the OpenAPI document is: integers are ASCII digits (Arabic-Indic or fullwidth digits
are not numbers), checked against their bounds before any SQL sees them; dates must be real dates
whose end of day still exists; booleans are true/false (or 1/0, yes/no); text must be storable
(no NUL). Every problem is a 422 naming the field.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from aiohttp import web

from tenrusl.storable import ascii_int, is_storable_text

MAX_PER_PAGE = 100
DEFAULT_PER_PAGE = 20
# Deeper than anyone pages (10^9 rows at 100 a page); keeps OFFSET well inside bigint.
MAX_PAGE = 10_000_000
_TRUE = ("1", "true", "yes")
_FALSE = ("0", "false", "no")


def query_int(
    request: web.Request, name: str, default: int, errors: dict[str, list[str]], *, maximum: int
) -> int:
    """A positive integer of ASCII digits up to ``maximum``; else the field's error and ``default``."""
    raw = request.query.get(name, "").strip()
    if not raw:
        return default
    number = ascii_int(raw, max_digits=len(str(maximum)))
    if number is None or not 1 <= number <= maximum:
        errors[name] = [f"{name} must be an integer from 1 to {maximum}."]
        return default
    return number


def query_date(request: web.Request, name: str, errors: dict[str, list[str]], end: bool) -> datetime | None:
    """A date (YYYY-MM-DD: the whole day) or an ISO-8601 timestamp (UTC unless it says otherwise)."""
    raw = request.query.get(name, "").strip()
    if not raw:
        return None
    try:
        if not raw.isascii():
            raise ValueError(raw)
        if len(raw) == 10:  # a date: the whole day counts, so an end date is exclusive of the next day
            day = datetime.combine(date.fromisoformat(raw), datetime.min.time(), UTC)
            return day + timedelta(days=1) if end else day
        stamp = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)
    except OverflowError:  # 9999-12-31 as an end date: the day after does not exist
        errors[name] = [f"{name} must be a date before 9999-12-31."]
        return None
    except ValueError:
        errors[name] = [f"{name} must be a date (YYYY-MM-DD) or an ISO-8601 timestamp."]
        return None


def query_text(request: web.Request, name: str, errors: dict[str, list[str]]) -> str | None:
    """Free text; one PostgreSQL cannot store (NUL) is the field's error."""
    value = request.query.get(name, "").strip()
    if value and not is_storable_text(value):
        errors[name] = [f"{name} must not contain NUL characters."]
        return None
    return value or None


def query_bool(request: web.Request, name: str, errors: dict[str, list[str]]) -> bool | None:
    """true/false (also 1/0, yes/no, any case); absent is None; anything else is the field's error."""
    value = request.query.get(name, "").strip().lower()
    if not value:
        return None
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    errors[name] = [f"{name} must be true or false."]
    return None


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


def query_per_page(request: web.Request, errors: dict[str, list[str]]) -> int:
    """A positive integer of ASCII digits; any value above MAX_PER_PAGE means MAX_PER_PAGE (the
    OpenAPI document says so, and ``meta.per_page`` shows the size used)."""
    raw = request.query.get("per_page", "").strip()
    if not raw:
        return DEFAULT_PER_PAGE
    significant = raw.lstrip("0")
    if not (raw.isascii() and raw.isdigit()) or not significant:
        errors["per_page"] = [f"per_page must be a positive integer (above {MAX_PER_PAGE}: {MAX_PER_PAGE})."]
        return DEFAULT_PER_PAGE
    return MAX_PER_PAGE if len(significant) > len(str(MAX_PER_PAGE)) else min(int(significant), MAX_PER_PAGE)


def query_page(request: web.Request, errors: dict[str, list[str]]) -> Page:
    """``page`` (1 to MAX_PAGE) and ``per_page`` (from 1; above 100 means 100)."""
    return Page(query_int(request, "page", 1, errors, maximum=MAX_PAGE), query_per_page(request, errors))
