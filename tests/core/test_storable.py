"""tenrusl.storable: what it accepts, refuses and repairs, and that PostgreSQL stores the result."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.types.json import Jsonb

from tenrusl.storable import (
    MAX_JSON_DEPTH,
    JsonRejected,
    Unrepresentable,
    ascii_int,
    has_unstorable_text,
    is_storable_text,
    load_json,
    load_signed_json,
    repaired,
    storable_text,
)
from tests.hostile import hostile_text, same_json


@pytest.mark.parametrize(
    ("text", "storable", "repaired_text"),
    [
        ("plain", True, "plain"),
        ("", True, ""),
        ("caf\u00e9 \U0001f600", True, "caf\u00e9 \U0001f600"),
        ("a\x00b", False, "a\ufffdb"),
        ("\ud800", False, "\ufffd"),
        ("x\udc80y\udfff", False, "x\ufffdy\ufffd"),
        ("\ud83d\ude00", False, "\ufffd\ufffd"),  # a pair as two code points is still not UTF-8
        ("\ufffd\uffff\x01", True, "\ufffd\uffff\x01"),
    ],
)
def test_text_is_checked_and_repaired(text, storable, repaired_text):
    assert is_storable_text(text) is storable
    assert storable_text(text) == repaired_text


@pytest.mark.parametrize(
    ("raw", "number"),
    [
        ("0", 0),
        ("150000", 150000),
        ("0042", 42),
        ("9" * 19, int("9" * 19)),
        ("9" * 20, None),
        ("9" * 5000, None),
        ("", None),
        ("-1", None),
        ("+1", None),
        ("1.0", None),
        ("1 ", None),
        ("\u00b2", None),
        ("1\u2460", None),
        ("\uff11\uff12\uff13", None),
        ("\u0661", None),
        ("\u0967", None),
    ],
)
def test_ascii_int_takes_ascii_digits_within_the_bound(raw, number):
    assert ascii_int(raw) == number


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"NaN", "invalid_json"),
        (b'{"a":Infinity}', "invalid_json"),
        (b"[-Infinity]", "invalid_json"),
        (b'{"a":1e400}', "invalid_json"),
        (b"9" * 4301, "invalid_json"),
        (b"{", "invalid_json"),
        (b'"\xff"', "invalid_json"),
        (b'"a\x01"', "invalid_json"),
        (nested(MAX_JSON_DEPTH + 1), "json_too_deep"),
        (nested(10_000), "json_too_deep"),
        (b'{"a":' + nested(MAX_JSON_DEPTH) + b"}", "json_too_deep"),
    ],
)
def test_load_json_refuses_what_cannot_be_stored_or_is_not_json(body, code):
    with pytest.raises(JsonRejected) as caught:
        load_json(body)
    assert caught.value.code == code and caught.value.message


def test_load_json_accepts_json_up_to_the_limits():
    assert load_json(nested(MAX_JSON_DEPTH)) == json.loads(nested(MAX_JSON_DEPTH))
    assert load_json(b"9" * 4300) == int("9" * 4300)
    assert load_json(b"1.7976931348623157e308") == 1.7976931348623157e308
    assert load_json('\ufeff{"a":"\u00e9"}'.encode()) == {"a": "\u00e9"}  # a UTF-8 BOM
    assert load_json('{"a":1}'.encode("utf-16")) == {"a": 1}
    assert load_json(b'["\\u0000","\\ud800"]') == ["\x00", "\ud800"]  # text is the caller's to check


def test_an_ordinary_signed_body_costs_no_copy():
    body = b'{"id":"evt_1","amount":150000,"rate":1.5,"note":"caf\\u00e9 \\ud83d\\ude00"}'
    parsed = load_signed_json(body)
    assert parsed.issues == () and parsed.stored is parsed.value and parsed.value == json.loads(body)


def test_a_signed_body_keeps_every_value_as_sent_and_stores_a_repaired_copy():
    body = (
        b'{"id":"a\\u0000","\\ud800":[NaN,Infinity,-Infinity,1e400,' + b"9" * 5000 + b',1.5,"\xed\xa0\x80"]}'
    )
    parsed = load_signed_json(body)
    assert parsed.issues == ("non_finite_number", "nul_character", "number_too_long", "unpaired_surrogate")
    assert parsed.value["id"] == "a\x00"  # as sent: the provider's rules see the real text
    numbers = parsed.value["\ud800"]
    assert all(isinstance(n, Unrepresentable) for n in numbers[:5]) and numbers[5] == 1.5
    assert parsed.stored == {
        "id": "a\ufffd",
        "\ufffd": ["NaN", "Infinity", "-Infinity", "1e400", "9" * 5000, 1.5, "\ufffd"],
    }


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{not json", "invalid_json"),
        (nested(10_000), "json_too_deep"),
        (nested(MAX_JSON_DEPTH + 1), "json_too_deep"),
    ],
)
def test_a_signed_body_is_refused_only_when_it_is_not_json_or_too_deep(body, code):
    with pytest.raises(JsonRejected) as caught:
        load_signed_json(body)
    assert caught.value.code == code


def test_repaired_forms_and_unstorable_detection():
    assert repaired({"a": "x\x00"}).stored == {"a": "x\ufffd"}
    assert repaired({"a": [float("nan")]}).stored == {"a": ["nan"]}
    assert has_unstorable_text({"k": [{"\x00": 1}]}) and not has_unstorable_text({"k": ["\ufffd", 1]})


# -- against PostgreSQL: whatever these functions let through, it stores ----------------------------

json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(10**40), 10**40),
        st.floats(),  # NaN and infinities included
        hostile_text(12),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(hostile_text(6), children, max_size=4)
    ),
    max_leaves=12,
)
PG = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@PG
@given(value=json_values, ensure_ascii=st.booleans())
async def test_whatever_a_signed_body_holds_its_stored_copy_fits_jsonb(db, value, ensure_ascii):
    body = json.dumps({"v": value}, ensure_ascii=ensure_ascii).encode("utf-8", "surrogatepass")
    parsed = load_signed_json(body)
    row = await (await db.execute("SELECT %s::jsonb AS doc", [Jsonb(parsed.stored)])).fetchone()
    assert row is not None and set(row["doc"]) == {"v"}
    if not parsed.issues:
        assert same_json(row["doc"], json.loads(body))


@PG
@given(text=hostile_text(40))
async def test_storable_text_fits_a_text_column(db, text):
    row = await (await db.execute("SELECT %s::text AS t", [storable_text(text)])).fetchone()
    assert row is not None and row["t"] == storable_text(text)
    assert (row["t"] == text) is is_storable_text(text)


def test_unrepresentable_numbers_read_as_numbers_not_text():
    """A provider's field rules take strings and objects only: NaN must not look like "NaN"."""
    number = load_signed_json(b'{"status":NaN}').value["status"]
    assert isinstance(number, Unrepresentable) and number.text == "NaN"
    assert not isinstance(number, str | dict | list | bool | int | float)
