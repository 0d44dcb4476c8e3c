"""Request ids, the JSON error envelope, security headers and JSON logs."""

from __future__ import annotations

import io
import json
import logging

import pytest

from tenrusl.logs import configure_logging


async def test_request_id_is_echoed_sanitised_or_generated(client):
    resp = await client.get("/up", headers={"X-Request-ID": "abc-123"})
    assert resp.headers["X-Request-ID"] == "abc-123"
    resp = await client.get("/up", headers={"X-Correlation-ID": "corr<script>id"})
    assert resp.headers["X-Request-ID"] == "corrscriptid"
    resp = await client.get("/up", headers={"X-Request-ID": "x" * 300})
    assert resp.headers["X-Request-ID"] == "x" * 128
    trace = "0af7651916cd43dd8448eb211c80319c"
    resp = await client.get("/up", headers={"traceparent": f"00-{trace}-b7ad6b7169203331-01"})
    assert resp.headers["X-Request-ID"] == trace
    generated = (await client.get("/up")).headers["X-Request-ID"]
    assert len(generated) == 26 and generated == generated.lower()


@pytest.mark.parametrize(
    "method, path, status, code",
    [
        ("GET", "/nowhere", 404, "not_found"),
        ("GET", "/api/v1/webhooks/mock", 405, "method_not_allowed"),
        ("DELETE", "/api/v1/payments", 405, "method_not_allowed"),
    ],
)
async def test_errors_are_json_envelopes_with_request_id(client, method, path, status, code):
    resp = await client.request(method, path, headers={"X-Request-ID": "err-1"})
    assert resp.status == status
    assert resp.content_type == "application/json"
    assert (await resp.json())["error"]["code"] == code
    assert resp.headers["X-Request-ID"] == "err-1"


async def test_security_headers_on_every_response(client):
    for resp in (await client.get("/up"), await client.get("/nowhere")):
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert resp.headers["X-Frame-Options"] == "DENY"
        assert "Server" not in resp.headers


async def test_logs_are_json_lines_carrying_the_request_id(client):
    stream = io.StringIO()
    configure_logging("INFO", stream=stream)
    try:
        await client.get("/up", headers={"X-Request-ID": "log-me-1"})
    finally:
        configure_logging("INFO")
    lines = [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    access = [entry for entry in lines if entry.get("action") == "http"]
    assert access and access[-1]["request_id"] == "log-me-1" and access[-1]["status"] == 200
    assert all("request_id" in entry for entry in lines)


def test_json_formatter_keeps_extra_fields_and_exceptions():
    stream = io.StringIO()
    configure_logging("INFO", stream=stream)
    try:
        log = logging.getLogger("tenrusl.test")
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("failed", extra={"action": "x", "provider": "stripe"})
    finally:
        configure_logging("INFO")
    entry = json.loads(stream.getvalue().splitlines()[-1])
    assert (
        entry["provider"] == "stripe"
        and entry["level"] == "error"
        and "ValueError: boom" in entry["exception"]
    )


async def test_metrics_are_prometheus_text(client):
    await client.get("/up")
    text = await (await client.admin.get("/metrics")).text()
    assert 'tenrusl_http_requests_total{method="GET",route="/up",status="200"}' in text
    assert "tenrusl_retry_backlog 0.0" in text
    assert "tenrusl_db_up 1.0" in text
