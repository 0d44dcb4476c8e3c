"""Bytes that are not well-formed HTTP, sent over a raw socket to a real server: aiohttp rejects
them before any middleware runs, and the answer is still our JSON envelope (receiver/server.py).
Also header bytes that are not UTF-8, which aiohttp hands over as lone surrogates."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import signal
import sys
from pathlib import Path

import pytest

from tenrusl.embedded import free_port
from tests.conftest import MOCK_SECRET
from tests.rawhttp import request, send_raw

TENRUSL = str(Path(sys.executable).with_name("tenrusl"))


MALFORMED = [
    (
        "duplicate_content_type",
        request(
            [
                b"POST /api/v1/payments HTTP/1.1",
                b"Content-Type: application/json",
                b"Content-Type: text/plain",
                b"Content-Length: 2",
            ],
            b"{}",
        ),
    ),
    (
        "duplicate_content_length",
        request(
            [
                b"POST /api/v1/payments HTTP/1.1",
                b"Content-Type: application/json",
                b"Content-Length: 2",
                b"Content-Length: 3",
            ],
            b"{}",
        ),
    ),
    (
        "content_length_with_transfer_encoding",
        request(
            [b"POST /api/v1/webhooks/mock HTTP/1.1", b"Content-Length: 5", b"Transfer-Encoding: chunked"],
            b"0\r\n\r\n",
        ),
    ),
    ("header_of_20_kb", request([b"GET /up HTTP/1.1", b"X-Big: " + b"a" * 20_000])),
    ("control_character_in_header", request([b"GET /up HTTP/1.1", b"X-Odd: a\x01b"])),
    ("nul_in_header", request([b"GET /up HTTP/1.1", b"X-Odd: a\x00b"])),
    ("raw_byte_in_path", request([b"GET /api/v1/payments/\xff HTTP/1.1"])),
    ("bad_request_line", b"HELLO\r\n\r\n"),
    ("bad_method", request([b"G@T /up HTTP/1.1"])),
    ("non_numeric_content_length", request([b"POST /api/v1/payments HTTP/1.1", b"Content-Length: abc"])),
    (
        "bad_chunk_size",
        request(
            [
                b"POST /api/v1/webhooks/mock HTTP/1.1",
                b"Content-Type: application/json",
                b"Transfer-Encoding: chunked",
            ],
            b"zz\r\nabc\r\n0\r\n\r\n",
        ),
    ),
]


@pytest.mark.parametrize("data", [m[1] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
async def test_malformed_http_gets_the_json_envelope(client, data):
    resp = await send_raw(client.port, data)
    assert resp is not None and resp.status == 400
    error = resp.json()["error"]
    assert error["code"] == "malformed_request" and error["message"]
    assert resp.headers["x-request-id"] and resp.headers["x-content-type-options"] == "nosniff"
    assert "aiohttp" not in resp.headers.get("server", "")
    assert (await client.get("/up")).status == 200


async def test_broken_chunked_body_after_the_handler_started_is_never_a_500(client):
    head = request(
        [
            b"POST /api/v1/webhooks/mock HTTP/1.1",
            b"Content-Type: application/json",
            b"Transfer-Encoding: chunked",
        ]
    )
    resp = await send_raw(client.port, head + b"5\r\nabcde\r\n", then=b"zz\r\n", pause=0.3)
    assert resp is None or (resp.status == 400 and resp.json()["error"]["code"] == "malformed_request"), resp
    metrics = await (await client.admin.get("/metrics")).text()
    assert 'status="500"' not in metrics
    assert (await client.get("/up")).status == 200


async def test_a_body_that_breaks_mid_read_is_a_400_and_no_error_log(client, caplog):
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    resp = await client.post("/api/v1/payments", data=b"not gzip", headers=headers)
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "malformed_request"
    await asyncio.sleep(0.1)  # aiohttp drains (and fails on) the rest after the answer
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


def mock_signature(body: bytes) -> bytes:
    return hmac.new(MOCK_SECRET.encode(), body, hashlib.sha256).hexdigest().encode()


async def test_header_bytes_that_are_not_utf8_are_stored_repaired(client, db):
    body = b'{"status":"pending"}'
    data = request(
        [
            b"POST /api/v1/webhooks/mock HTTP/1.1",
            b"Content-Type: application/json",
            b"X-Mock-Signature: " + mock_signature(body),
            b"User-Agent: agent-\xff\xfe",
            b"X-Event-Id: evt-\xed\xa0\x80",
            b"Content-Length: " + str(len(body)).encode(),
        ],
        body,
    )
    resp = await send_raw(client.port, data)
    assert resp is not None and resp.status == 202, resp
    event = resp.json()["data"]["event"]
    assert event["event_id"].startswith("h_") and event["event_id_source"] == "header:x-event-id:hashed"
    again = await send_raw(client.port, data)
    assert again is not None and again.json()["data"]["result"]["duplicate"] is True
    row = await (await db.execute("SELECT headers FROM webhook_events")).fetchone()
    assert row["headers"]["user-agent"] == "agent-\ufffd\ufffd"


async def test_idempotency_key_that_is_not_utf8_is_hashed(client):
    body = b'{"provider":"mock","amount":1000}'
    data = request(
        [
            b"POST /api/v1/payments HTTP/1.1",
            b"Content-Type: application/json",
            b"Idempotency-Key: key-\xff",
            b"Content-Length: " + str(len(body)).encode(),
        ],
        body,
    )
    first, second = await send_raw(client.port, data), await send_raw(client.port, data)
    assert first is not None and first.status == 201 and first.headers["idempotency-key"].startswith("h_")
    assert (
        second is not None and second.status == 201 and second.headers.get("idempotency-replayed") == "true"
    )


async def test_tenrusl_serve_answers_malformed_http_with_the_envelope(db_url):
    """The console script's server, not only the test server, has the JSON error hook."""
    port, admin_port = free_port(), free_port()
    env = {
        **os.environ,
        "TENRUSL_DATABASE_URL": db_url,
        "TENRUSL_PORT": str(port),
        "TENRUSL_ADMIN_PORT": str(admin_port),
        "TENRUSL_LOG_LEVEL": "WARNING",
    }
    proc = await asyncio.create_subprocess_exec(TENRUSL, "serve", env=env, stderr=asyncio.subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                resp = await send_raw(port, request([b"GET /up HTTP/1.1"]))
                break
            except OSError:
                await asyncio.sleep(0.05)
        assert resp is not None and resp.status == 200
        resp = await send_raw(port, request([b"GET /up HTTP/1.1", b"X-Big: " + b"a" * 20_000]))
        assert resp is not None and resp.status == 400 and resp.json()["error"]["code"] == "malformed_request"
        head = request(
            [
                b"POST /api/v1/webhooks/mock HTTP/1.1",
                b"Transfer-Encoding: chunked",
                b"Content-Type: application/json",
            ]
        )
        await send_raw(port, head + b"5\r\nabcde\r\n", then=b"zz\r\n", pause=0.3)
        metrics = await send_raw(admin_port, request([b"GET /metrics HTTP/1.1"]))
        assert metrics is not None and metrics.status == 200 and b'status="5' not in metrics.body
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
