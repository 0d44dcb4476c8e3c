"""Wire-format helpers shared by providers: JSON minify, PHP serialize, form fields, timestamps.

They work on the exact bytes a provider sent, because a signature covers those bytes and a
re-serialised payload (reordered keys, other number formats) would not verify.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

from receiver.providers.base import parse_timestamp
from tenrusl.providers.fields import dig

_JSON_WHITESPACE = frozenset(b" \t\r\n")


def minify_json(raw: bytes) -> bytes:
    """Drop the whitespace outside strings, keeping key order and every value byte as sent.

    This is the SNAP "minify(body)": re-encoding through ``json`` would change number
    formats and escapes, so the bytes are filtered instead.
    """
    out = bytearray()
    in_string = escaped = False
    for byte in raw:
        if in_string:
            out.append(byte)
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # closing quote
                in_string = False
        elif byte not in _JSON_WHITESPACE:
            out.append(byte)
            in_string = byte == 0x22
    return bytes(out)


def json_as_sent(raw: bytes) -> Any:
    """Decode JSON keeping every number as its source text ("24145.00" stays "24145.00")."""
    return json.loads(raw, parse_float=str, parse_int=str)


def form_fields(raw: bytes) -> list[tuple[str, str]]:
    """The form's fields in order (duplicates kept), decoded as UTF-8; ValueError when not."""
    return parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=False)


def _php_string(value: str) -> str:
    return f's:{len(value.encode())}:"{value}";'


def _php_key(key: str) -> str:
    # PHP turns decimal-integer string keys into integer keys ("10" -> i:10;, "010" stays a string).
    if key.isdigit() and (key == "0" or not key.startswith("0")):
        return f"i:{int(key)};"
    return _php_string(key)


def php_serialize(fields: dict[str, str]) -> str:
    """PHP ``serialize()`` of a flat array of strings, in the given key order."""
    body = "".join(_php_key(k) + _php_string(v) for k, v in fields.items())
    return f"a:{len(fields)}:{{{body}}}"


def parse_time(value: str) -> float | None:
    """Unix seconds from epoch digits (seconds or milliseconds) or an ISO 8601 date-time."""
    value = value.strip()
    if not value:
        return None
    if value.isascii() and value.isdigit():
        return parse_timestamp(value)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:  # a date-time without an offset is ambiguous: refuse it
        return None
    return moment.timestamp()


def json_field(raw: bytes, path: str) -> str | None:
    """One string field of a JSON body (for ``sign``, which adds headers the body implies)."""
    try:
        value = dig(json.loads(raw), path)
    except (ValueError, RecursionError):  # not JSON, or nested too deep to read
        return None
    return value if isinstance(value, str) and value else None
