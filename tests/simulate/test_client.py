"""Pure parts of the simulator: plan, tampering, classification, percentiles, summary."""

from __future__ import annotations

import io
import json
import math
import random
from urllib.parse import parse_qsl

import pytest

from receiver.providers import provider_class
from receiver.simulate.client import (
    DUPLICATE,
    FRESH,
    TAMPERED,
    Progress,
    Result,
    Summary,
    classify,
    flip_char,
    percentile,
    plan_counts,
    render_progress,
    render_summary,
    tamper,
    tamper_header,
)
from receiver.simulate.payloads import build
from tenrusl.constants import PROVIDERS


def test_percentile_interpolates_between_ranks() -> None:
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 95) == pytest.approx(95.05)
    assert percentile(values, 99) == pytest.approx(99.01)
    assert percentile(values, 0) == 1.0 and percentile(values, 100) == 100.0
    assert percentile([7.0], 99) == 7.0
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0  # order does not matter
    assert math.isnan(percentile([], 50))


def test_plan_counts_are_exact() -> None:
    assert plan_counts(50, 0.1, 0.1) == (40, 5, 5)
    assert plan_counts(20, 0.0, 0.0) == (20, 0, 0)
    assert plan_counts(3, 0.1, 0.1) == (3, 0, 0)
    with pytest.raises(ValueError):
        plan_counts(4, 0.5, 0.5)


def test_classify() -> None:
    assert classify(202, False) == "accepted"
    assert classify(202, True) == "duplicate"
    assert classify(401, False) == "rejected"
    assert classify(422, False) == "rejected"
    assert classify(429, False) == "rate_limited"
    assert classify(503, False) == "error"
    assert classify(None, False) == "error"


def test_flip_char_keeps_the_class() -> None:
    assert [flip_char(c) for c in "09azAZ"] == ["1", "0", "b", "a", "B", "A"]


def test_tamper_changes_exactly_one_byte() -> None:
    body = b'{"id":"evt_1","amount":1000}'
    out = tamper(body, random.Random(1))
    assert len(out) == len(body)
    assert sum(a != b for a, b in zip(body, out, strict=True)) == 1


def test_tamper_targets_the_signed_field() -> None:
    rng = random.Random(3)
    json_body = b'{"order_id":"o1","status_code":"200","gross_amount":"150000.00","note":"x"}'
    for _ in range(20):
        changed = json.loads(tamper(json_body, rng, "gross_amount"))
        assert changed["gross_amount"] != "150000.00"
        assert changed["order_id"] == "o1" and changed["note"] == "x"
    form = b"merchant_id=1&mb_amount=12.50&mb_currency=EUR&status=2"
    changed_form = dict(parse_qsl(tamper(form, rng, "mb_amount").decode()))
    assert changed_form["mb_amount"] != "12.50" and changed_form["mb_currency"] == "EUR"


def test_tamper_header_forges_the_token() -> None:
    assert tamper_header({"x-callback-token": "abc"}, "x-callback-token") == {"x-callback-token": "abd"}


def test_summary_judges_tampered_deliveries_and_errors() -> None:
    s = Summary("mock")
    s.planned.update({FRESH: 2, DUPLICATE: 1, TAMPERED: 3})
    for result in (
        Result(FRESH, 202, False, 0.010),
        Result(FRESH, 202, False, 0.020),
        Result(DUPLICATE, 202, True, 0.030),
        Result(TAMPERED, 401, False, 0.005),
        Result(TAMPERED, 400, False, 0.005),
        Result(TAMPERED, 429, False, 0.005),
    ):
        s.add(result)
    assert s.outcomes == {"accepted": 2, "duplicate": 1, "rejected": 2, "rate_limited": 1}
    assert s.tampered == {"rejected_401": 1, "rejected_other": 1, "unjudged": 1}
    assert s.ok
    text = render_summary(s)
    assert "accepted" in text and "p50 7.5" in text and "1 rejected as expected (401)" in text
    s.add(Result(TAMPERED, 202, False, 0.001))
    assert not s.ok
    errored = Summary("mock")
    errored.add(Result(FRESH, None, False, 1.0))
    assert not errored.ok and errored.latencies_ms == []  # no answer, no latency


def test_progress_bar() -> None:
    assert render_progress(0, 4, width=4) == "[....] 0/4"
    assert render_progress(2, 4, width=4) == "[##..] 2/4"
    stream = io.StringIO()
    bar = Progress(2, stream)
    bar.step()
    bar.step()
    assert stream.getvalue().endswith("[" + "#" * 30 + "] 2/2\n")


@pytest.mark.parametrize("provider", PROVIDERS)
def test_builders_are_deterministic_and_carry_the_reference(provider: str) -> None:
    a = build(provider, random.Random(7), "sim_ref_123", 1_700_000_000.0)
    b = build(provider, random.Random(7), "sim_ref_123", 1_700_000_000.0)
    assert a == b
    assert b"sim_ref_123" in a.body
    assert a != build(provider, random.Random(8), "sim_ref_123", 1_700_000_000.0)


def test_one_builder_per_provider() -> None:
    assert all("sample" in vars(provider_class(name)) for name in PROVIDERS)  # one each
