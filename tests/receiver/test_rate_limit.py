"""Per-provider webhook rate limit: window math (fake clock), Redis sharing, fallback, gate order."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from receiver.keys import METRICS, RATE_LIMITER
from receiver.providers.mock import MockProvider
from receiver.ratelimit import (
    MAX_LEASE,
    Lease,
    Limits,
    LocalCounter,
    RateLimiter,
    Window,
    bucket_key,
    decide,
    parse_limits,
    redis_keys,
)
from tenrusl.embedded import free_port, start_redis
from tenrusl.settings import Settings, SettingsError
from tests.conftest import MOCK_SECRET, STATE_DIR

URL = "/api/v1/webhooks/mock"
PINNED = 1_700_000_000.25  # a fixed clock: every request of a test falls in the same windows


def signed(n: int) -> tuple[bytes, dict[str, str]]:
    body = json.dumps({"id": f"evt_rl_{n}", "type": "payment.paid", "status": "paid"}).encode()
    delivery = MockProvider.sign(body, {"secret": MOCK_SECRET}, now=PINNED, path=URL)
    return delivery.body, delivery.headers


async def post(client: TestClient, n: int, **headers: str) -> Any:
    body, signed_headers = signed(n)
    return await client.post(URL, data=body, headers={**signed_headers, **headers})


def pin(client: TestClient, now: float = PINNED) -> RateLimiter:
    assert isinstance(client.server, TestServer)
    limiter = client.server.app[RATE_LIMITER]
    limiter.clock = lambda: now
    return limiter


def backend_gauge(client: TestClient, backend: str) -> float | None:
    assert isinstance(client.server, TestServer)
    return client.server.app[METRICS].registry.get_sample_value(
        "tenrusl_rate_limit_backend", {"backend": backend}
    )


# --- pure window math -------------------------------------------------------------------------


def test_decide_reports_the_window_closest_to_exhaustion() -> None:
    windows = Limits(10, 600).windows
    allowed = decide(windows, [1, 1], now=100.5)
    assert allowed.allowed and (allowed.limit, allowed.remaining) == (10, 9)
    assert allowed.headers() == {"X-RateLimit-Limit": "10", "X-RateLimit-Remaining": "9"}
    minute_tighter = decide(windows, [1, 595], now=100.5)
    assert (minute_tighter.limit, minute_tighter.remaining) == (600, 5)


def test_decide_rejects_with_retry_after_of_the_exceeded_window() -> None:
    windows = Limits(10, 600).windows
    second = decide(windows, [11, 11], now=100.25)
    assert not second.allowed
    assert second.headers() == {
        "X-RateLimit-Limit": "10",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": "101",
        "Retry-After": "1",
    }
    minute = decide(windows, [3, 601], now=130.5)
    assert (minute.limit, minute.reset_at, minute.retry_after_s) == (600, 180, 50)
    both = decide(windows, [11, 601], now=130.5)
    assert both.retry_after_s == 50  # the later of the two resets, so a retry is not refused again


def test_local_counter_windows_start_over_at_their_boundaries() -> None:
    counter = LocalCounter()
    windows = (Window("s", 1, 2), Window("m", 60, 5))
    assert [counter.hit("b", windows, 59.1) for _ in range(3)] == [[1, 1], [2, 2], [3, 3]]
    assert counter.hit("b", windows, 59.999) == [4, 4]
    assert counter.hit("b", windows, 60.0) == [1, 1]  # both windows roll over at a minute boundary
    assert counter.hit("b", windows, 61.0) == [1, 2]  # a new second, same minute
    assert counter.hit("other", windows, 61.0) == [1, 1]  # buckets are independent


def test_local_counter_prunes_stale_buckets() -> None:
    counter = LocalCounter()
    counter.MAX_KEYS = 4
    windows = Limits(1, 1).windows
    for i in range(3):
        counter.hit(f"old{i}", windows, 10.0)
    counter.hit("new", windows, 500.0)
    assert {k[0] for k in counter._counts} == {"new"}


def test_bucket_keys_and_redis_keys() -> None:
    assert bucket_key("provider", "stripe", "1.2.3.4") == "provider:stripe"
    assert bucket_key("ip", "stripe", "1.2.3.4") == "ip:1.2.3.4"
    assert bucket_key("ip", "stripe", None) == "provider:stripe"
    assert bucket_key("ip_provider", "stripe", "1.2.3.4") == "provider:stripe|ip:1.2.3.4"
    assert bucket_key("provider_ip", "stripe", None) == "provider:stripe|ip:-"
    keys = redis_keys("provider:stripe", Limits(1, 1).windows, 125.5)
    assert keys == ["tenrusl:rl:{provider:stripe}:s:125", "tenrusl:rl:{provider:stripe}:m:2"]


def test_overrides_are_parsed_and_validated() -> None:
    settings = Settings.from_env(
        {
            "TENRUSL_WEBHOOK_RATE_LIMIT_PROVIDERS_JSON": '{"Stripe":{"per_second":25},"paypal":{"per_minute":0}}'
        }
    )
    default, overrides = parse_limits(settings)
    assert default == Limits(100, 3000)  # the defaults (docs/configuration.md, "Webhook rate limits")
    assert overrides == {"stripe": Limits(25, 3000), "paypal": Limits(100, 1)}
    for bad in ('{"stripe": 5}', '{"stripe": {"per_second": "many"}}'):
        with pytest.raises(SettingsError, match="PROVIDERS_JSON"):
            parse_limits(Settings.from_env({"TENRUSL_WEBHOOK_RATE_LIMIT_PROVIDERS_JSON": bad}))


# --- the gate, on the real Redis ----------------------------------------------------------------


@pytest.fixture
def mock_only(make_settings: Any, redis_client: Any) -> Any:
    """Settings for these tests: only the mock provider, the default limits, a clean Redis database."""
    defaults = {
        "TENRUSL_PROVIDERS_ALLOWLIST": "mock",
        "TENRUSL_RATE_WEBHOOKS_PER_SECOND": "10",
        "TENRUSL_RATE_WEBHOOKS_PER_MINUTE": "600",
    }

    def factory(**env: str) -> Settings:
        return make_settings(**{**defaults, **env})

    return factory


async def test_eleventh_request_in_a_second_is_429_with_headers(mock_only: Any, make_client: Any) -> None:
    client = await make_client(mock_only())
    pin(client)
    for n in range(10):
        resp = await post(client, n)
        assert resp.status == 202, await resp.text()
        assert resp.headers["X-RateLimit-Limit"] == "10"
        assert resp.headers["X-RateLimit-Remaining"] == str(9 - n)
    resp = await post(client, 10)
    assert resp.status == 429
    assert (await resp.json())["error"]["code"] == "rate_limited"
    assert resp.headers["Retry-After"] == "1"
    assert resp.headers["X-RateLimit-Limit"] == "10"
    assert resp.headers["X-RateLimit-Remaining"] == "0"
    assert resp.headers["X-RateLimit-Reset"] == str(int(PINNED) + 1)
    assert backend_gauge(client, "redis") == 1
    metrics = await (await client.admin.get("/metrics")).text()
    assert 'tenrusl_webhooks_total{outcome="rate_limited",provider="mock"} 1.0' in metrics


async def test_per_provider_override_is_honoured(mock_only: Any, make_client: Any) -> None:
    client = await make_client(
        mock_only(TENRUSL_WEBHOOK_RATE_LIMIT_PROVIDERS_JSON='{"mock":{"per_second":3,"per_minute":100}}')
    )
    pin(client)
    statuses = [(await post(client, n)).status for n in range(4)]
    assert statuses == [202, 202, 202, 429]


async def test_per_minute_window_limits_too(mock_only: Any, make_client: Any) -> None:
    client = await make_client(mock_only(TENRUSL_RATE_WEBHOOKS_PER_MINUTE="2"))
    limiter = pin(client, 120.5)
    assert [(await post(client, n)).status for n in range(2)] == [202, 202]
    limiter.clock = lambda: 121.5  # a new second, the same minute
    resp = await post(client, 2)
    assert resp.status == 429
    assert resp.headers["Retry-After"] == "59"
    assert resp.headers["X-RateLimit-Limit"] == "2"


async def test_limit_is_shared_by_replicas_on_one_redis(mock_only: Any, make_client: Any) -> None:
    settings = mock_only(TENRUSL_RATE_WEBHOOKS_PER_SECOND="4")
    a, b = await make_client(settings), await make_client(settings)
    pin(a), pin(b)
    statuses = [(await post(client, n)).status for n, client in enumerate([a, b, a, b, a, b])]
    assert statuses == [202, 202, 202, 202, 429, 429]


async def test_ip_keys_use_forwarded_for_only_from_trusted_proxies(mock_only: Any, make_client: Any) -> None:
    client = await make_client(
        mock_only(
            TENRUSL_RATE_WEBHOOKS_PER_SECOND="1",
            TENRUSL_WEBHOOK_RATE_LIMIT_KEY_BY="ip",
            TENRUSL_TRUSTED_PROXIES="127.0.0.1",
        )
    )
    pin(client)
    assert (await post(client, 1, **{"X-Forwarded-For": "203.0.113.1"})).status == 202
    assert (await post(client, 2, **{"X-Forwarded-For": "203.0.113.2"})).status == 202
    assert (await post(client, 3, **{"X-Forwarded-For": "203.0.113.1"})).status == 429

    untrusted = await make_client(
        mock_only(TENRUSL_RATE_WEBHOOKS_PER_SECOND="1", TENRUSL_WEBHOOK_RATE_LIMIT_KEY_BY="ip")
    )
    pin(untrusted, PINNED + 10)
    assert (await post(untrusted, 4, **{"X-Forwarded-For": "203.0.113.3"})).status == 202
    # the header is ignored: both requests are the loopback peer's
    assert (await post(untrusted, 5, **{"X-Forwarded-For": "203.0.113.4"})).status == 429


async def test_limiter_runs_before_signature_verification(mock_only: Any, make_client: Any) -> None:
    client = await make_client(mock_only(TENRUSL_RATE_WEBHOOKS_PER_SECOND="2"))
    pin(client)
    unsigned = {"Content-Type": "application/json"}
    first = await client.post(URL, data=b'{"id":"x"}', headers=unsigned)
    assert first.status == 401
    assert first.headers["X-RateLimit-Remaining"] == "1"  # a rejected request carries the quota too
    assert (await client.post(URL, data=b"x", headers={"Content-Type": "text/plain"})).status == 415
    over = await client.post(URL, data=b'{"id":"x"}', headers=unsigned)
    assert over.status == 429  # not 401: the signature was never looked at
    assert (await post(client, 1)).status == 429  # and the flood spent the legitimate sender's quota


async def test_redis_unreachable_falls_back_to_in_process_limits(
    mock_only: Any, make_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    client = await make_client(mock_only(TENRUSL_REDIS_URL=dead, TENRUSL_RATE_WEBHOOKS_PER_SECOND="3"))
    pin(client)
    with caplog.at_level(logging.WARNING, logger="tenrusl.ratelimit"):
        statuses = [(await post(client, n)).status for n in range(4)]
    assert statuses == [202, 202, 202, 429]
    assert backend_gauge(client, "local") == 1 and backend_gauge(client, "redis") == 0
    fallbacks = [r for r in caplog.records if r.getMessage().startswith("rate limiter falling back")]
    assert len(fallbacks) == 1  # logged once, not per request
    assert "127.0.0.1" not in fallbacks[0].getMessage()


async def test_limiter_recovers_when_redis_returns(mock_only: Any, make_client: Any) -> None:
    port = free_port()
    data = Path(STATE_DIR) / f"rl-recover-{port}"
    server = start_redis(data, port=port)
    try:
        client = await make_client(
            mock_only(TENRUSL_REDIS_URL=server.url, TENRUSL_RATE_WEBHOOKS_PER_SECOND="100")
        )
        limiter = pin(client)
        limiter.breaker_open_s = 0.0  # try Redis again on the next request
        assert (await post(client, 1)).status == 202
        assert backend_gauge(client, "redis") == 1
        server.stop()
        assert (await post(client, 2)).status == 202  # webhooks keep working without Redis
        assert backend_gauge(client, "local") == 1
        server = start_redis(data, port=port)
        assert (await post(client, 3)).status == 202
        assert backend_gauge(client, "redis") == 1
    finally:
        server.stop()


async def test_without_redis_url_the_local_limiter_is_used(
    base_env: dict[str, str], make_client: Any
) -> None:
    env = {k: v for k, v in base_env.items() if k != "TENRUSL_REDIS_URL"}
    settings = Settings.from_env(
        {**env, "TENRUSL_PROVIDERS_ALLOWLIST": "mock", "TENRUSL_RATE_WEBHOOKS_PER_SECOND": "1"}
    )
    client = await make_client(settings)
    pin(client)
    assert [(await post(client, n)).status for n in range(2)] == [202, 429]
    assert backend_gauge(client, "local") == 1


# --- leases: Redis counts every admitted request first, without a round trip per request -------


def test_lease_spends_its_tokens_then_asks_again() -> None:
    lease = Lease()
    assert lease.take((5, 0)) is None  # nothing leased yet
    assert lease.next_size(now=5.0) == 1
    lease.renew((5, 0), 3, [3, 3], now=5.0)  # Redis counted 3 (ours); the counts include them
    assert [lease.take((5, 0)) for _ in range(3)] == [[1, 1], [2, 2], [3, 3]]
    assert lease.take((5, 0)) is None
    assert lease.next_size(now=5.1) == 2  # used up fast: the next lease is twice as large
    lease.renew((5, 0), 2, [5, 5], now=5.1)
    assert lease.take((6, 0)) is None  # a new second: the lease no longer applies
    assert lease.refunds((6, 0)) == [0, 2]  # its unused tokens go back to the minute only
    assert lease.refunds((60, 1)) == [0, 0]  # nothing goes back to a window that has ended
    assert lease.next_size(now=9.0) == 1  # not used up (or slowly): halved


@pytest.fixture
async def limiter(make_settings: Any, redis_client: Any) -> Any:
    """A limiter on the test Redis database (emptied by redis_client), with its own client."""

    async def factory(per_second: int, per_minute: int = 100_000) -> RateLimiter:
        settings = make_settings(
            TENRUSL_RATE_WEBHOOKS_PER_SECOND=str(per_second),
            TENRUSL_RATE_WEBHOOKS_PER_MINUTE=str(per_minute),
            TENRUSL_WEBHOOK_RATE_LIMIT_KEY_BY="provider",
        )
        made = RateLimiter(settings)
        made.attach(redis_client)
        return made

    return factory


async def test_leases_cut_redis_calls_and_count_every_request(limiter: Any, redis_client: Any) -> None:
    one = await limiter(100_000)
    calls = 0
    script = one._script

    async def counting(**kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        return await script(**kwargs)

    one._script = counting
    decisions = [await one.check("mock", None, now=PINNED) for _ in range(500)]
    assert all(d.allowed for d in decisions)
    assert [d.remaining for d in decisions] == [100_000 - n for n in range(1, 501)]  # exact
    assert calls < 30  # 1, 2, 4, ... 64, 64, ...: not one per request
    second, minute = [
        int(await redis_client.get(k)) for k in redis_keys("provider:mock", Limits(1, 1).windows, PINNED)
    ]
    assert 500 <= second <= 500 + MAX_LEASE and second == minute  # counted before admitted


async def test_unused_tokens_go_back_to_the_minute_when_the_second_ends(
    limiter: Any, redis_client: Any
) -> None:
    one = await limiter(100_000)
    for _ in range(40):
        await one.check("mock", None, now=PINNED)
    await one.check("mock", None, now=PINNED + 1)  # the next second, the same minute
    lease = one.leases["provider:mock"]
    minute_key = redis_keys("provider:mock", Limits(1, 1).windows, PINNED)[1]
    assert int(await redis_client.get(minute_key)) == 41 + lease.tokens  # 41 admitted, the rest leased


async def test_replicas_together_never_admit_more_than_the_limit(limiter: Any) -> None:
    a, b = await limiter(50), await limiter(50)

    async def burst(replica: RateLimiter) -> list[bool]:
        decisions = await asyncio.gather(*(replica.check("mock", None, now=PINNED) for _ in range(80)))
        return [d.allowed for d in decisions]

    got_a, got_b = await asyncio.gather(burst(a), burst(b))
    assert sum(got_a) + sum(got_b) == 50  # not one more; and none lost while both had requests
    refused = await a.check("mock", None, now=PINNED)
    assert not refused.allowed and refused.headers()["Retry-After"] == "1"
