"""Scheme details beyond the common table: compatibility modes, allowlists, caches, formats."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from typing import Any
from urllib.parse import urlencode

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from receiver.providers import load_providers, provider_class
from receiver.providers.formats import minify_json, php_serialize
from tenrusl.settings import SettingsError
from tests.providers.conftest import FAST_RATE, ReceiverFactory, ThirdParties
from tests.providers.vectors import CASES, FORM_TYPE, JSON_TYPE, PATH, Context, hmac_hex, public_pem, rsa_key


async def post(client: Any, name: str, body: bytes, headers: dict[str, str]) -> int:
    return (await client.post(PATH.format(name=name), data=body, headers=headers)).status


# -- formats --------------------------------------------------------------------------------


def test_php_serialize_matches_php() -> None:
    # php -r 'echo serialize(["a" => "1", "10" => "x", "n" => "é"]);'
    expected = 'a:3:{s:1:"a";s:1:"1";i:10;s:1:"x";s:1:"n";s:2:"é";}'
    assert php_serialize({"a": "1", "10": "x", "n": "é"}) == expected


def test_minify_keeps_strings_and_order() -> None:
    raw = b'{ "b" : "x y",\n  "a" : [1, 2.50],  "c": "q\\" z" }'
    assert minify_json(raw) == b'{"b":"x y","a":[1,2.50],"c":"q\\" z"}'


# -- Paddle Classic -------------------------------------------------------------------------


def _php_string_map(fields: dict[str, str]) -> str:
    """An independent PHP serialize of string keys and values (Paddle's documented recipe)."""
    items = "".join(f's:{len(k.encode())}:"{k}";s:{len(v.encode())}:"{v}";' for k, v in fields.items())
    return f"a:{len(fields)}:{{{items}}}"


def _paddle_classic_body(key_index: int) -> bytes:
    fields = {
        "alert_name": "payment_succeeded",
        "alert_id": "123",
        "passthrough": "sim_1",
        "sale_gross": "10000",
    }
    message = _php_string_map(dict(sorted(fields.items()))).encode()
    signature = rsa_key(key_index).sign(message, padding.PKCS1v15(), hashes.SHA1())
    return urlencode({**fields, "p_signature": base64.b64encode(signature).decode()}).encode()


async def test_paddle_classic_rsa_sha1(make_settings: Any, make_client: Any) -> None:
    keys = public_pem(rsa_key(3)) + public_pem(rsa_key(4))  # rotation: two PEM blocks
    client = await make_client(make_settings(**FAST_RATE, TENRUSL_PADDLE_PUBLIC_KEY=keys))
    headers = {"Content-Type": FORM_TYPE}
    assert await post(client, "paddle", _paddle_classic_body(3), headers) == 202
    assert await post(client, "paddle", _paddle_classic_body(4), headers) == 202
    assert await post(client, "paddle", _paddle_classic_body(5), headers) == 401  # unknown key
    tampered = _paddle_classic_body(3).replace(b"10000", b"90000")
    assert await post(client, "paddle", tampered, headers) == 401
    assert await post(client, "paddle", b"alert_name=x&alert_id=1", headers) == 401


# -- compatibility modes --------------------------------------------------------------------


async def test_dana_raw_mode_verifies_the_body_itself(make_settings: Any, make_client: Any) -> None:
    env = {"TENRUSL_DANA_PUBLIC_KEY": public_pem(rsa_key(0)), "TENRUSL_DANA_SIGNATURE_MODE": "raw"}
    client = await make_client(make_settings(**FAST_RATE, **env))
    body = json.dumps({"id": "dana-raw-1", "event": "payment", "data": {"id": "d1"}}).encode()
    signature = base64.b64encode(rsa_key(0).sign(body, padding.PKCS1v15(), hashes.SHA256())).decode()
    assert await post(client, "dana", body, {"Content-Type": JSON_TYPE, "X-SIGNATURE": signature}) == 202
    snap = CASES["dana"].deliver(0, time.time())  # a SNAP signature is not a raw one
    assert await post(client, "dana", snap.body, snap.headers) == 401


def _skrill_form(word: str, *, txid_field: str, sha2: bool = False) -> bytes:
    fields = {"merchant_id": "1", "transaction_id": "sim_1", "mb_transaction_id": "777"}
    fields |= {"mb_amount": "5.00", "mb_currency": "EUR", "status": "2"}
    base = fields["merchant_id"] + fields[txid_field] + hashlib.md5(word.encode()).hexdigest().upper()
    base += fields["mb_amount"] + fields["mb_currency"] + fields["status"]
    if sha2:
        return urlencode({**fields, "sha2sig": hashlib.sha256(base.encode()).hexdigest().upper()}).encode()
    return urlencode({**fields, "md5sig": hashlib.md5(base.encode()).hexdigest().upper()}).encode()


async def test_skrill_sha2sig_and_legacy_mode(make_settings: Any, make_client: Any) -> None:
    headers = {"Content-Type": FORM_TYPE}
    standard = await make_client(make_settings(**FAST_RATE, TENRUSL_SKRILL_MD5_SECRET="word"))
    assert (
        await post(standard, "skrill", _skrill_form("word", txid_field="transaction_id", sha2=True), headers)
        == 202
    )
    legacy_form = _skrill_form("word", txid_field="mb_transaction_id")
    assert await post(standard, "skrill", legacy_form, headers) == 401
    legacy = await make_client(
        make_settings(**FAST_RATE, TENRUSL_SKRILL_MD5_SECRET="word", TENRUSL_SKRILL_SIGNATURE_MODE="legacy")
    )
    assert await post(legacy, "skrill", legacy_form, headers) == 202


async def test_skrill_json_is_refused(make_settings: Any, make_client: Any) -> None:
    client = await make_client(make_settings(**FAST_RATE, TENRUSL_SKRILL_MD5_SECRET="word"))
    assert await post(client, "skrill", b"{}", {"Content-Type": JSON_TYPE}) == 415


def test_bad_mode_stops_start_up(make_settings: Any) -> None:
    with pytest.raises(SettingsError, match="TENRUSL_DANA_SIGNATURE_MODE"):
        load_providers(make_settings(TENRUSL_DANA_SIGNATURE_MODE="bogus"))


# -- header checks --------------------------------------------------------------------------


async def test_payoneer_merchant_header_is_required_when_configured(
    make_settings: Any, make_client: Any
) -> None:
    env = {"TENRUSL_PAYONEER_SHARED_SECRET": "s", "TENRUSL_PAYONEER_MERCHANT_ID": "merchant_123"}
    client = await make_client(make_settings(**FAST_RATE, **env))
    body = b'{"id":"pn-1","event":"payment.completed"}'
    signed = {"Content-Type": JSON_TYPE, "X-Payoneer-Signature": hmac_hex("s", body)}
    assert await post(client, "payoneer", body, signed) == 401  # missing header (design notes, defect 19)
    assert await post(client, "payoneer", body, {**signed, "X-Payoneer-Merchant-Id": "wrong"}) == 401
    assert await post(client, "payoneer", body, {**signed, "X-Payoneer-Merchant-Id": "merchant_123"}) == 202


async def test_oy_ip_allowlist_and_static_token(make_settings: Any, make_client: Any) -> None:
    body = b'{"trx_id":"t1","partner_trx_id":"p1","status":{"code":"000"}}'
    headers = {"Content-Type": JSON_TYPE, "X-OY-Callback-Auth": "tok"}
    allowed = await make_client(make_settings(**FAST_RATE, TENRUSL_OY_CALLBACK_SECRET="tok"))
    assert await post(allowed, "oy", body, headers) == 202
    elsewhere = await make_client(
        make_settings(**FAST_RATE, TENRUSL_OY_CALLBACK_SECRET="tok", TENRUSL_OY_IP_WHITELIST="203.0.113.7")
    )
    assert await post(elsewhere, "oy", body, headers) == 401


async def test_mock_wrong_bearer_does_not_hide_a_valid_hmac(settings: Any, make_client: Any) -> None:
    client = await make_client(settings.replace(rate_per_second=10000))
    body = b'{"id":"evt_b","type":"x"}'
    headers = {
        "Content-Type": JSON_TYPE,
        "Authorization": "Bearer wrong",
        "X-Mock-Signature": hmac_hex("test-mock-secret", body),
    }
    assert await post(client, "mock", body, headers) == 202


async def test_doku_client_id_is_enforced(receiver_for: ReceiverFactory) -> None:
    case = CASES["doku"]
    client = await receiver_for(case, [case.keys[0]], TENRUSL_DOKU_CLIENT_ID="BRN-OTHER")
    signed = case.deliver(case.keys[0], time.time())
    assert await post(client, "doku", signed.body, signed.headers) == 401


async def test_doku_request_target_is_read_from_the_legacy_name_too(receiver_for: ReceiverFactory) -> None:
    """README: legacy names are fallbacks; DOKU_REQUEST_TARGET is the original's name."""
    case = CASES["doku"]
    client = await receiver_for(case, [case.keys[0]], DOKU_REQUEST_TARGET="/notify/doku")
    signed = case.deliver(case.keys[0], time.time())  # signed for our own path
    assert await post(client, "doku", signed.body, signed.headers) == 401
    credentials = {"secret": case.keys[0], "client_id": "BRN-0001", "request_target": "/notify/doku"}
    proxied = provider_class("doku").sign(
        signed.body, credentials, now=time.time(), path=PATH.format(name="doku")
    )
    assert await post(client, "doku", proxied.body, proxied.headers) == 202


async def test_per_provider_leeway(receiver_for: ReceiverFactory) -> None:
    case = CASES["stripe"]
    signed = case.deliver(case.keys[0], time.time() - 60)
    default = await receiver_for(case, [case.keys[0]])
    assert await post(default, "stripe", signed.body, signed.headers) == 202
    tight = await receiver_for(case, [case.keys[0]], TENRUSL_STRIPE_LEEWAY_SECONDS="10")
    assert await post(tight, "stripe", signed.body, signed.headers) == 401


async def test_id_less_redelivery_deduplicates_despite_new_request_ids(
    receiver_for: ReceiverFactory, db: Any
) -> None:
    case = CASES["lemonsqueezy"]
    client = await receiver_for(case, [case.keys[0]])
    body = b'{"meta":{"event_name":"order_created"},"data":{"type":"orders","id":"1"}}'
    headers = {"Content-Type": JSON_TYPE, "X-Signature": hmac_hex(case.keys[0], body)}
    first = await client.post(
        PATH.format(name="lemonsqueezy"), data=body, headers={**headers, "X-Request-ID": "a"}
    )
    again = await client.post(
        PATH.format(name="lemonsqueezy"), data=body, headers={**headers, "X-Request-ID": "b"}
    )
    event = (await first.json())["data"]["event"]
    assert event["event_id"].startswith("gen_") and event["event_id_generated"] is True
    assert (await again.json())["data"]["result"]["duplicate"] is True


# -- third-party caches ---------------------------------------------------------------------


async def test_paypal_token_is_cached_and_renewed_after_401(
    receiver_for: ReceiverFactory, third_parties: ThirdParties
) -> None:
    case = CASES["paypal"]
    client = await receiver_for(case, [case.keys[0]])
    for _ in range(2):
        signed = case.deliver(case.keys[0], time.time())
        assert await post(client, "paypal", signed.body, signed.headers) == 202
    assert third_parties.paypal.token_requests == 1
    third_parties.paypal.fail_next_verify_with = 401  # PayPal revoked the token
    signed = case.deliver(case.keys[0], time.time())
    assert await post(client, "paypal", signed.body, signed.headers) == 202
    assert third_parties.paypal.token_requests == 2


async def test_paypal_unreachable_fails_closed(make_settings: Any, make_client: Any) -> None:
    case = CASES["paypal"]
    env = case.env([case.keys[0]], Context(paypal_url="http://127.0.0.1:9"))
    client = await make_client(make_settings(**FAST_RATE, **env))
    signed = case.deliver(case.keys[0], time.time())
    assert await post(client, "paypal", signed.body, signed.headers) == 401


async def test_jwks_is_cached_and_unknown_kids_cannot_force_fetches(
    receiver_for: ReceiverFactory, third_parties: ThirdParties
) -> None:
    case = CASES["amazon_bwp"]
    client = await receiver_for(case, [case.keys[0]])
    for _ in range(2):
        signed = case.deliver(case.keys[0], time.time())
        assert await post(client, "amazon_bwp", signed.body, signed.headers) == 202
    for n in range(3):
        signed = case.deliver((0, f"attacker-kid-{n}"), time.time())
        assert await post(client, "amazon_bwp", signed.body, signed.headers) == 401
    assert third_parties.jwks.fetches == 1


async def test_jwks_refetches_for_a_rotated_kid(
    receiver_for: ReceiverFactory, third_parties: ThirdParties
) -> None:
    case = CASES["amazon_bwp"]
    client = await receiver_for(case, [case.keys[0]], TENRUSL_AMZN_BWP_JWKS_REFETCH_SECONDS="0")
    signed = case.deliver(case.keys[0], time.time())
    assert await post(client, "amazon_bwp", signed.body, signed.headers) == 202
    case.env([case.keys[0], case.keys[1]], third_parties.ctx)  # Amazon publishes a new key
    signed = case.deliver(case.keys[1], time.time())
    assert await post(client, "amazon_bwp", signed.body, signed.headers) == 202
    assert third_parties.jwks.fetches == 2
