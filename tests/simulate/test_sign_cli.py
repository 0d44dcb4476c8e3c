"""`tenrusl sign`: the printed headers (and, for in-body schemes, the --out body) verify with the receiver."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tenrusl.cli import main

BODIES = {
    "mock": {"id": "evt_sign_1", "type": "payment.succeeded", "status": "succeeded"},
    "stripe": {"id": "evt_sign_2", "type": "payment_intent.succeeded", "data": {"object": {"id": "pi_1"}}},
    "midtrans": {
        "transaction_id": "tx-sign-3",
        "transaction_status": "settlement",
        "order_id": "order-sign-3",
        "status_code": "200",
        "gross_amount": "10000.00",
    },
}


def use_env(monkeypatch: pytest.MonkeyPatch, settings: Any) -> None:
    for name, value in settings.environ.items():
        monkeypatch.setenv(name, value)


def parse_headers(text: str) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in text.strip().splitlines())


@pytest.mark.parametrize("provider", ["mock", "stripe"])
async def test_sign_prints_headers_the_receiver_accepts(
    provider: str,
    sim_settings: Any,
    make_client: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = sim_settings(TENRUSL_PROVIDERS_ALLOWLIST="mock,stripe,midtrans")
    use_env(monkeypatch, settings)
    body = json.dumps(BODIES[provider]).encode()
    (tmp_path / "body.json").write_bytes(body)
    assert main(["sign", provider, str(tmp_path / "body.json")]) == 0
    headers = parse_headers(capsys.readouterr().out)
    assert "Content-Type" in headers
    client = await make_client(settings)
    resp = await client.post(f"/api/v1/webhooks/{provider}", data=body, headers=headers)
    assert resp.status == 202, await resp.text()
    tampered = await client.post(f"/api/v1/webhooks/{provider}", data=body + b" ", headers=headers)
    assert tampered.status == 401


async def test_sign_reads_stdin(
    sim_settings: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    use_env(monkeypatch, sim_settings())
    monkeypatch.setattr("sys.stdin", type("S", (), {"buffer": __import__("io").BytesIO(b'{"id":"x"}')})())
    assert main(["sign", "mock", "-"]) == 0
    assert "X-Mock-Signature" in parse_headers(capsys.readouterr().out)


async def test_in_body_signature_needs_out_and_verifies(
    sim_settings: Any,
    make_client: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = sim_settings(TENRUSL_PROVIDERS_ALLOWLIST="mock,stripe,midtrans")
    use_env(monkeypatch, settings)
    source = tmp_path / "notification.json"
    source.write_bytes(json.dumps(BODIES["midtrans"]).encode())
    assert main(["sign", "midtrans", str(source)]) == 2
    assert "--out" in capsys.readouterr().err
    out = tmp_path / "signed.json"
    assert main(["sign", "midtrans", str(source), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert f"signed body written to {out}" in captured.err
    assert "signature_key" in json.loads(out.read_bytes())
    client = await make_client(settings)
    resp = await client.post(
        "/api/v1/webhooks/midtrans", data=out.read_bytes(), headers=parse_headers(captured.out)
    )
    assert resp.status == 202, await resp.text()


def test_sign_reports_missing_keys(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("TENRUSL_DANA_SIM_PRIVATE_KEY", raising=False)
    (tmp_path / "b.json").write_bytes(b"{}")
    assert main(["sign", "dana", str(tmp_path / "b.json")]) == 2
    assert "TENRUSL_DANA_SIM_PRIVATE_KEY" in capsys.readouterr().err
