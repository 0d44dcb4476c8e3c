"""Hypothesis generators of hostile input: what a careless or malicious client (or a provider with
a bug) may send. Each generator says which class of input it covers; the property tests in
tests/receiver/test_hostile_properties.py combine them for every route.

Classes: NUL and other control characters; lone surrogates (escaped, and raw in UTF-8 bytes);
NaN, Infinity, floats that overflow a double, integers longer than Python converts; deep nesting
(up to 10,000 levels, and both sides of the 256 limit); digits that ``str.isdigit`` accepts but
are not ASCII (superscripts, circled, fullwidth, Arabic-Indic, Devanagari...); huge integers;
very long strings; wrong JSON types; dates at and beyond the calendar's ends; percent-encoded
bytes that are not UTF-8; header bytes that are not UTF-8.
"""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import strategies as st

# Characters that broke something somewhere: NUL, lone surrogates, replacement and BOM, bidi
# override, zero width, controls, quoting and LIKE metacharacters, non-ASCII digits, characters
# whose case mapping lands in ASCII (Kelvin sign, dotless i), astral and non-characters.
NASTY_CHARS = (
    "\x00",
    "\ud800",
    "\udbff",
    "\udc00",
    "\udfff",
    "\ufffd",
    "\ufeff",
    "\u202e",
    "\u200b",
    "\x01",
    "\x1b",
    "\x7f",
    "\t",
    "\n",
    "\r",
    '"',
    "\\",
    "'",
    "%",
    "_",
    ";",
    "\u00b2",
    "\u0661",
    "\uff11",
    "\u2460",
    "\u0967",
    "\u212a",
    "\u0131",
    "\U0001f600",
    "\U0010ffff",
    "\uffff",
)
nasty_char = st.sampled_from(NASTY_CHARS)

# Digits by Python's definition that are not ASCII digits.
unicode_digits = st.text(
    alphabet=st.characters(categories=["Nd", "No"], exclude_characters="0123456789"), min_size=1, max_size=6
)

MAGIC_TEXT = (
    "",
    " ",
    "NaN",
    "Infinity",
    "-Infinity",
    "null",
    "true",
    "0",
    "-1",
    "1e400",
    "9" * 30,
    "%00",
    "\\u0000",
    "9999-12-31",
    "0001-01-01",
    "2025-W01-1",
    "2025-02-30",
)


def hostile_text(max_size: int = 30) -> st.SearchStrategy[str]:
    """Any str Python can hold, weighted towards the characters that break storage and parsing."""
    return st.one_of(
        st.text(max_size=max_size),
        st.lists(st.one_of(nasty_char, st.characters()), max_size=max_size).map("".join),
        st.sampled_from(MAGIC_TEXT),
        unicode_digits,
        st.builds(
            lambda c, n: c * n,
            st.sampled_from(("a", "\x00", "\ud800", "9", "\U0001f600")),
            st.integers(200, 20_000),
        ),
    )


_CONTROLS = {c: None for c in [*range(0x20), 0x7F] if c != 0x09}


def printable_header_text(max_size: int = 40) -> st.SearchStrategy[str]:
    """Header values an HTTP client library sends: no control character but tab (aiohttp's
    client refuses them), UTF-8, at most 2,000 characters (a header may have 8 KB). Control
    characters and bytes that are not UTF-8 go over a raw socket instead
    (test_header_bytes_that_are_not_text_never_cost_a_signed_event)."""
    return hostile_text(max_size).map(
        lambda s: s.translate(_CONTROLS).encode("utf-8", "replace").decode("utf-8")[:2000]
    )


# -- JSON as text, so that what json.dumps would refuse or normalise can be sent -------------------

json_number_text = st.one_of(
    st.integers(-(10**30), 10**30).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.sampled_from(("NaN", "Infinity", "-Infinity", "1e400", "-1e400", "1e-400", "0e999999", "1E309", "-0")),
    st.integers(1, 6000).map(lambda n: "9" * n),  # past 4300 digits Python refuses to convert
    st.integers(200, 400).map(lambda n: "1" * n + ".5"),  # a double overflows past 308 digits
)


def json_string_text(text: st.SearchStrategy[str] | None = None) -> st.SearchStrategy[str]:
    """A JSON string literal: escaped (\\u0000, \\ud800) or raw (surrogates sent as UTF-8 bytes)."""
    return st.builds(
        lambda s, ascii_: json.dumps(s, ensure_ascii=ascii_), text or hostile_text(), st.booleans()
    )


def json_value_text(max_leaves: int = 10) -> st.SearchStrategy[str]:
    scalars = st.one_of(st.sampled_from(("null", "true", "false")), json_number_text, json_string_text())
    return st.recursive(
        scalars,
        lambda children: st.one_of(
            st.lists(children, max_size=4).map(lambda xs: "[" + ",".join(xs) + "]"),
            st.lists(st.tuples(json_string_text(), children), max_size=4).map(
                lambda kv: "{" + ",".join(f"{k}:{v}" for k, v in kv) + "}"
            ),
        ),
        max_leaves=max_leaves,
    )


# Nesting around one member value: most bodies are shallow; some sit on either side of 256.
nesting = st.one_of(st.just(0), st.sampled_from((1, 50, 254, 255, 256, 300, 1000, 10_000)))


@st.composite
def webhook_body(draw: st.DrawFn) -> bytes:
    """A webhook body: usually a JSON object with the fields providers read (id, type, status,
    references) holding hostile values, sometimes nested deep, sometimes corrupted."""
    members = []
    for key in ("id", "event_id", "type", "status", "provider_ref", "order_id", "data"):
        if draw(st.booleans()):
            members.append((json.dumps(key), draw(json_value_text(6))))
    members += draw(st.lists(st.tuples(json_string_text(), json_value_text(8)), max_size=4))
    depth = draw(nesting)
    if depth:
        members.append(('"deep"', "[" * depth + draw(json_value_text(2)) + "]" * depth))
    text = "{" + ",".join(f"{k}:{v}" for k, v in draw(st.permutations(members))) + "}"
    if draw(st.integers(0, 9)) == 0:  # not an object, or not JSON at all
        text = draw(st.one_of(json_value_text(4), st.just(text[: len(text) // 2]), hostile_text(20)))
    body = text.encode("utf-8", "surrogatepass")
    if draw(st.integers(0, 19)) == 0:  # a stray byte that is not UTF-8
        at = draw(st.integers(0, len(body)))
        body = body[:at] + draw(st.sampled_from((b"\xff", b"\xc3", b"\x00", b"\xed\xa0\x80"))) + body[at:]
    return body


# -- an independent oracle for what the receiver must do with a signed body -------------------------

MAX_DEPTH = 256


def json_depth(value: Any) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in (node.values() if isinstance(node, dict) else node))
    return deepest


def webhook_oracle(body: bytes) -> tuple[int, str | None, set[str]]:
    """(status, error code, repairs) the receiver must answer for a correctly signed JSON body:
    202 for every JSON object Python reads (at most 256 deep), else 400 — computed with plain
    json.loads and hooks, apart from the receiver's own parser."""
    if not body.strip():
        return 400, "empty_payload", set()

    class Odd:  # a number the oracle saw that cannot be stored (duplicate keys may drop it again)
        def __init__(self, issue: str) -> None:
            self.issue = issue

    def number(text: str) -> Any:
        return Odd("non_finite_number") if math.isinf(float(text)) else 0.0

    def integer(text: str) -> Any:
        return Odd("number_too_long") if len(text.lstrip("-")) > 4300 else 0

    try:
        value = json.loads(
            body, parse_constant=lambda _: Odd("non_finite_number"), parse_float=number, parse_int=integer
        )
    except RecursionError:
        return 400, "json_too_deep", set()
    except ValueError:
        return 400, "invalid_payload", set()
    if json_depth(value) > MAX_DEPTH:
        return 400, "json_too_deep", set()
    if not isinstance(value, dict):
        return 400, "invalid_payload", set()
    issues: set[str] = set()
    stack: list[Any] = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, Odd):
            issues.add(node.issue)
        elif isinstance(node, str):
            if "\x00" in node:
                issues.add("nul_character")
            if any(0xD800 <= ord(c) <= 0xDFFF for c in node):
                issues.add("unpaired_surrogate")
        elif isinstance(node, dict):
            stack.extend([*node.keys(), *node.values()])
        elif isinstance(node, list):
            stack.extend(node)
    return 202, None, issues


def same_json(a: Any, b: Any) -> bool:
    """Equal as JSON documents (numbers compared as numbers: jsonb keeps decimal text, not floats)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_json(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b, strict=True))
    numbers = (int, float)
    if (
        isinstance(a, numbers)
        and isinstance(b, numbers)
        and not isinstance(a, bool)
        and not isinstance(b, bool)
    ):
        return a == b or math.isclose(float(a), float(b), rel_tol=1e-15)
    return a == b


# -- query strings, paths, headers -----------------------------------------------------------------

percent_bytes = st.binary(min_size=1, max_size=12).map(lambda b: "".join(f"%{x:02X}" for x in b))

query_value = st.one_of(
    hostile_text(20).map(lambda s: s.encode("utf-8", "surrogatepass").decode("utf-8", "replace")),
    unicode_digits,
    percent_bytes,
    st.integers(-(10**25), 10**25).map(str),
    st.integers(1, 5000).map(lambda n: "9" * n),
    st.sampled_from(
        ("9999-12-31", "9999-12-31T23:59:59-14:00", "0001-01-01", "0001-01-01T00:00:00+14:00", "2025-01-01")
    ),
    st.sampled_from(("true", "false", "null", "1", "0", "yes", "no", "TRUE", "maybe")),
)

path_segment = st.one_of(
    percent_bytes,
    hostile_text(30).map(lambda s: s.encode("utf-8", "surrogatepass").decode("utf-8", "replace")),
    st.sampled_from(("%00", "a%00b", "x%0A", "..", "%2F", "01JEXAMPLE")),
)
