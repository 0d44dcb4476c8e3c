"""Pure parts of the simulator: plan, tampering, classification, percentiles, summary."""

from __future__ import annotations

import io
import json
import math
import random
from collections import Counter
from urllib.parse import parse_qsl

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from receiver.providers import provider_class
from receiver.simulate.client import (
    DUPLICATE,
    FRESH,
    TAMPERED,
    Delivery,
    Progress,
    Redelivery,
    Result,
    Summary,
    classify,
    flip_char,
    parse_retry_after,
    percentile,
    plan_counts,
    render_progress,
    render_summary,
    send_all,
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
        Result(FRESH, 202, False, 0.020, redeliveries=2, waited_s=3.0),  # 429 twice, then stored
        Result(DUPLICATE, 202, True, 0.030),
        Result(TAMPERED, 401, False, 0.005),
        Result(TAMPERED, 400, False, 0.005),
        Result(TAMPERED, 401, False, 0.005, redeliveries=1, waited_s=1.0),
    ):
        s.add(result)
    assert s.outcomes == {"accepted": 2, "duplicate": 1, "rejected": 3}
    assert s.tampered == {"rejected_401": 2, "rejected_other": 1}
    assert (s.delayed, s.redeliveries, s.waited_s, s.gave_up) == (2, 3, 4.0, 0)
    assert s.ok  # a 429 that a redelivery got past is how providers work, not a failure
    text = render_summary(s)
    assert "accepted" in text and "p50 7.5" in text and "2 rejected as expected (401)" in text
    assert (
        "redelivered after 429/503: 2 deliveries delayed (3 redeliveries, 4.0 s waited in all), 0 gave up"
        in text
    )
    s.add(Result(TAMPERED, 202, False, 0.001))
    assert not s.ok
    errored = Summary("mock")
    errored.add(Result(FRESH, None, False, 1.0))
    assert not errored.ok and errored.latencies_ms == []  # no answer, no latency
    for status in (429, 503):  # still refused when the redeliveries ran out: the event is not stored
        refused = Summary("mock")
        refused.add(Result(TAMPERED, status, False, 0.005, redeliveries=5, waited_s=10.0))
        assert refused.gave_up == 1 and not refused.ok
        assert refused.tampered["unjudged"] == 1


def test_parse_retry_after() -> None:
    now = 1_700_000_000.0
    assert parse_retry_after("3", now) == 3.0
    assert parse_retry_after(" 0 ", now) == 0.0
    assert parse_retry_after("Tue, 14 Nov 2023 22:13:30 GMT", now) == pytest.approx(10.0)  # now + 10 s
    assert parse_retry_after("Tue, 14 Nov 2023 22:13:00 GMT", now) == 0.0  # in the past: now
    assert parse_retry_after(None, now) is None
    assert parse_retry_after("", now) is None
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after("-1", now) is None


def test_redelivery_delay_honours_retry_after_within_the_cap() -> None:
    policy = Redelivery(max_redeliveries=5, max_wait_s=30.0)
    assert policy.delay("1", 1) == 1.0
    assert policy.delay("40", 1) == 30.0  # capped
    assert [policy.delay(None, n) for n in (1, 2, 3, 6)] == [1.0, 2.0, 4.0, 30.0]  # no header: doubling
    assert Redelivery(max_wait_s=0.5).delay("7", 1) == 0.5


async def test_send_all_redelivers_the_same_bytes_after_503() -> None:
    """A receiver that answers 503 (Retry-After: 0) to each body's first delivery, then 202."""
    seen: Counter[bytes] = Counter()

    async def handler(request: web.Request) -> web.Response:
        body = await request.read()
        seen[body] += 1
        if seen[body] == 1:
            return web.json_response({}, status=503, headers={"Retry-After": "0"})
        return web.json_response({"data": {"result": {"duplicate": False}}}, status=202)

    app = web.Application()
    app.router.add_post("/hook", handler)
    server = TestServer(app)
    await server.start_server()
    results: list[Result] = []
    deliveries = [Delivery(FRESH, f"event-{n}".encode(), {}) for n in range(5)]
    try:
        async with aiohttp.ClientSession() as session:
            url = str(server.make_url("/hook"))
            await send_all(session, url, deliveries, 2, results.append)
            assert seen == {d.body: 2 for d in deliveries}  # the same bytes, twice each
            assert sorted((r.status, r.redeliveries) for r in results) == [(202, 1)] * 5
            seen.clear()
            results.clear()
            await send_all(session, url, deliveries[:2], 2, results.append, Redelivery(max_redeliveries=0))
            assert [r.status for r in results] == [503, 503] and seen == {d.body: 1 for d in deliveries[:2]}
    finally:
        await server.close()


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
