"""What PostgreSQL can store, decided in one place: text, JSON and integers from outside.

PostgreSQL's ``text`` and ``jsonb`` refuse NUL (U+0000) and unpaired UTF-16 surrogates, ``jsonb``
refuses NaN and Infinity, and ``bigint`` holds 19 digits. Python accepts all of them: ``json``
reads ``NaN``, ``Infinity``, ``\\ud800`` and ``\\u0000``, turns ``1e400`` into ``inf``, and
undecodable header bytes become lone surrogates. Every value from a client that is bound for SQL
goes through one of these functions first, so none of it can turn into a database error (a 500):

- :func:`is_storable_text` / :func:`storable_text`: check one string, or repair it (each NUL and
  unpaired surrogate becomes U+FFFD, the Unicode replacement character).
- :func:`load_json`: an API body, strictly: only JSON that can be stored is accepted.
- :func:`load_signed_json`: a verified webhook body, tolerantly: whatever Python's ``json`` reads
  is kept, as the provider sent it (for field extraction) and as a storable copy, with the repairs
  listed (``payload_issues`` on the event).
- :func:`ascii_int`: ASCII digits only (superscripts, Arabic-Indic or fullwidth digits are not
  numbers, though ``str.isdigit`` says so), with a bound checked before any conversion (a
  5,000-digit string is refused without being converted).

Both JSON loaders refuse nesting deeper than :data:`MAX_JSON_DEPTH`. All functions are pure.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, NamedTuple

# Deeper than any payment payload (they nest under ten levels) and far below the interpreter's
# recursion limit, which json.loads, json.dumps (psycopg's jsonb dumper) and PostgreSQL's jsonb
# parser all walk into.
MAX_JSON_DEPTH = 256
# Python refuses to convert longer digit strings (sys.int_info.default_max_str_digits); jsonb
# would store them, but neither json.loads nor json.dumps can carry them.
MAX_INT_DIGITS = 4300

# Issue codes recorded on a stored event (webhook_events.payload_issues).
NUL_CHARACTER = "nul_character"  # U+0000 in a string or key: replaced by U+FFFD
UNPAIRED_SURROGATE = "unpaired_surrogate"  # a lone \ud800-\udfff: replaced by U+FFFD
NON_FINITE_NUMBER = "non_finite_number"  # NaN, Infinity, -Infinity, or a float beyond 1.8e308
NUMBER_TOO_LONG = "number_too_long"  # an integer of more than MAX_INT_DIGITS digits
ISSUES = (NUL_CHARACTER, UNPAIRED_SURROGATE, NON_FINITE_NUMBER, NUMBER_TOO_LONG)

REPLACEMENT = "\ufffd"
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_SURROGATE = re.compile("[\ud800-\udfff]")
# In raw JSON bytes: an escaped NUL or surrogate (a valid escaped pair also matches: harmless).
_RISKY_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")


class JsonRejected(ValueError):
    """A body that is not JSON we accept; ``code`` is the stable error code for the client."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


INVALID_JSON = "invalid_json"
JSON_TOO_DEEP = "json_too_deep"


# -- text ------------------------------------------------------------------------------------------


def is_storable_text(value: str) -> bool:
    """No NUL and no unpaired surrogate: PostgreSQL text and jsonb accept it."""
    if value.isascii():
        return "\x00" not in value
    return _UNSTORABLE.search(value) is None


def storable_text(value: str) -> str:
    """``value`` with each NUL and unpaired surrogate replaced by U+FFFD (unchanged when storable)."""
    return value if is_storable_text(value) else _UNSTORABLE.sub(REPLACEMENT, value)


def text_issues(value: str) -> set[str]:
    """Which repairs :func:`storable_text` makes to ``value``."""
    issues = set()
    if "\x00" in value:
        issues.add(NUL_CHARACTER)
    if not value.isascii() and _SURROGATE.search(value):
        issues.add(UNPAIRED_SURROGATE)
    return issues


# -- integers --------------------------------------------------------------------------------------


def ascii_int(raw: str, *, max_digits: int = 19) -> int | None:
    """``raw`` as a non-negative integer when it is 1 to ``max_digits`` ASCII digits, else None.

    ``str.isdigit`` accepts superscripts and other scripts' digits, and ``int`` accepts most of
    them too (Arabic-Indic one-two-three is 123); a protocol number is ASCII. The length is
    checked first, so a huge string is refused without being converted.
    """
    if not 0 < len(raw) <= max_digits or not raw.isascii() or not raw.isdigit():
        return None
    return int(raw)


# -- JSON ------------------------------------------------------------------------------------------


class Unrepresentable:
    """A number JSON allows (or Python reads) that PostgreSQL cannot store: NaN, Infinity, 1e400,
    a 5,000-digit integer. It stands in the as-sent view of a payload, where, like any number, it
    is never taken for a string, an object or a boolean; the stored copy holds its text."""

    __slots__ = ("issue", "text")

    def __init__(self, text: str, issue: str) -> None:
        self.text = text
        self.issue = issue

    def __repr__(self) -> str:
        return f"Unrepresentable({self.text[:40]!r})"


def _constant(name: str) -> Unrepresentable:
    return Unrepresentable(name, NON_FINITE_NUMBER)


def _float(text: str) -> float | Unrepresentable:
    value = float(text)
    return Unrepresentable(text, NON_FINITE_NUMBER) if math.isinf(value) else value


def _int(text: str) -> int | Unrepresentable:
    digits = len(text) - (text[0] == "-")
    return Unrepresentable(text, NUMBER_TOO_LONG) if digits > MAX_INT_DIGITS else int(text)


class _NeedsRepair(Exception):
    """The fast parse met a number it cannot keep; the careful parse takes over."""


def _refuse_constant(name: str) -> Any:
    raise _NeedsRepair


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise _NeedsRepair
    return value


# The fast decoder gives up (``_NeedsRepair``) on the first number that needs care; the careful
# one keeps such numbers as Unrepresentable. Both are shared: their hooks keep no state.
_FAST = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite_float)
_CAREFUL = json.JSONDecoder(parse_constant=_constant, parse_float=_float, parse_int=_int)


def _decode_text(body: bytes) -> str:
    """What ``json.loads`` does with bytes: detect UTF-8/16/32, keep escaped surrogates as such."""
    try:
        return body.decode(json.detect_encoding(body), "surrogatepass")
    except UnicodeDecodeError:
        raise JsonRejected(INVALID_JSON, "The body is not valid UTF-8 JSON.") from None


def _parse(decoder: json.JSONDecoder, text: str) -> Any:
    try:
        return decoder.decode(text)
    except RecursionError:
        raise JsonRejected(JSON_TOO_DEEP, f"JSON nests deeper than {MAX_JSON_DEPTH} levels.") from None


def _check_depth(body: bytes, value: Any) -> None:
    # Cheap bound first: nesting can be no deeper than the number of opening brackets. Past it,
    # one pass per level over the containers (faster than a stack of (node, depth) pairs).
    if body.count(b"{") + body.count(b"[") <= MAX_JSON_DEPTH or type(value) not in (dict, list):
        return
    level, depth = [value], 0
    while level:
        depth += 1
        if depth > MAX_JSON_DEPTH:
            raise JsonRejected(JSON_TOO_DEEP, f"JSON nests deeper than {MAX_JSON_DEPTH} levels.")
        deeper = []
        for node in level:
            for child in node.values() if type(node) is dict else node:
                kind = type(child)
                if kind is dict or kind is list:
                    deeper.append(child)
        level = deeper


def _nodes(value: Any) -> Any:
    """Every value, key and container in parsed JSON, without recursion."""
    stack = [value]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def load_json(body: bytes) -> Any:
    """An API body: JSON (RFC 8259), at most MAX_JSON_DEPTH deep, every number storable.

    NaN and Infinity are not JSON; a number that overflows a double or has more than
    MAX_INT_DIGITS digits cannot be stored. Each is a ``JsonRejected`` naming the problem. Text
    is not checked here: which field holds a NUL is the caller's message to give (a 422).
    """
    try:
        value = _parse(_CAREFUL, _decode_text(body))
    except JsonRejected:
        raise
    except ValueError:
        raise JsonRejected(INVALID_JSON, "The body is not valid JSON.") from None
    _check_depth(body, value)
    for node in _nodes(value):
        if isinstance(node, Unrepresentable):
            if node.issue == NUMBER_TOO_LONG:
                message = f"Numbers longer than {MAX_INT_DIGITS} digits are not accepted."
            else:
                message = "NaN, Infinity and numbers beyond the range of a double are not JSON we accept."
            raise JsonRejected(INVALID_JSON, message)
    return value


class SignedJson(NamedTuple):
    """A verified body, parsed: as sent (``value``, for extraction) and as stored (``stored``).

    They are the same object unless something had to be repaired; ``issues`` lists what.
    """

    value: Any
    stored: Any
    issues: tuple[str, ...] = ()


def load_signed_json(body: bytes) -> SignedJson:
    """A verified webhook body: anything Python's json reads is kept; only non-JSON is refused.

    The common case costs one parse and a few byte scans. A body with an escaped NUL or surrogate,
    a raw surrogate, NaN/Infinity, an overflowing float or an over-long integer is parsed again
    with care and walked once to build the storable copy.
    """
    text = _decode_text(body)
    try:
        value = _parse(_FAST, text)
        risky = b"\xed" in body or b"\x00" in body or (b"\\u" in body and bool(_RISKY_ESCAPE.search(body)))
    except JsonRejected:
        raise
    except (_NeedsRepair, ValueError):  # NaN, inf, a too-long integer: or simply not JSON
        try:
            value = _parse(_CAREFUL, text)
        except JsonRejected:
            raise
        except ValueError:
            raise JsonRejected(INVALID_JSON, "Invalid JSON payload.") from None
        risky = True
    _check_depth(body, value)
    if not risky:
        return SignedJson(value, value)
    return repaired(value)


def repaired(value: Any) -> SignedJson:
    """``value`` (parsed JSON or a parsed form) and its storable copy, with the repairs made."""
    issues: set[str] = set()
    stored = _repair(value, issues)
    if not issues:
        return SignedJson(value, value)
    return SignedJson(value, stored, tuple(sorted(issues)))


def _repair(node: Any, issues: set[str]) -> Any:
    if isinstance(node, str):
        if is_storable_text(node):
            return node
        issues.update(text_issues(node))
        return _UNSTORABLE.sub(REPLACEMENT, node)
    if isinstance(node, dict):
        return {_repair(key, issues): _repair(child, issues) for key, child in node.items()}
    if isinstance(node, list):
        return [_repair(child, issues) for child in node]
    if isinstance(node, Unrepresentable):
        issues.add(node.issue)
        return node.text
    if isinstance(node, float) and not math.isfinite(node):  # only from callers' own values
        issues.add(NON_FINITE_NUMBER)
        return repr(node)
    return node


def has_unstorable_text(value: Any) -> bool:
    """Does any string or key in parsed JSON hold a NUL or an unpaired surrogate?"""
    return any(isinstance(node, str) and not is_storable_text(node) for node in _nodes(value))
