"""Settings: defaults, legacy names, and start-up errors that name the variable."""

from __future__ import annotations

import pytest

from tenrusl.constants import PROVIDERS
from tenrusl.settings import Settings, SettingsError


def test_defaults_outside_production():
    s = Settings.from_env({})
    assert s.env == "development" and s.providers_allowlist == PROVIDERS
    assert s.idempotency_ttl_s >= 86400 and s.webhook_max_payload_bytes == 5 * 1024 * 1024
    assert s.signature_leeway_s == 300 and s.max_retry_attempts >= 1
    # docs/configuration.md, "Webhook rate limits": bursts to 100/s, 50/s sustained, per provider and IP
    assert (s.rate_per_second, s.rate_per_minute, s.rate_key_by) == (100, 3000, "ip_provider")
    assert Settings().rate_per_second == 100 and Settings().rate_per_minute == 3000


def test_legacy_names_are_read():
    s = Settings.from_env(
        {"TENRUSL_WEBHOOK_RATE_LIMIT_PER_MINUTE": "60", "SIG_TS_LEEWAY": "30", "APP_ENV": "test"}
    )
    assert s.rate_per_minute == 60 and s.signature_leeway_s == 30 and s.env == "test"


@pytest.mark.parametrize(
    "env, variable",
    [
        ({"TENRUSL_PORT": "eighty"}, "TENRUSL_PORT"),
        ({"TENRUSL_PORT": "70000"}, "TENRUSL_PORT"),
        ({"TENRUSL_SCHEDULER_BACKOFF_MODE": "linear"}, "TENRUSL_SCHEDULER_BACKOFF_MODE"),
        ({"TENRUSL_ENV": "prod"}, "TENRUSL_ENV"),
        ({"TENRUSL_PROVIDERS_ALLOWLIST": "mock,square"}, "TENRUSL_PROVIDERS_ALLOWLIST"),
        ({"TENRUSL_RETRY_BASE_MS": "5000", "TENRUSL_RETRY_CAP_MS": "100"}, "TENRUSL_RETRY_CAP_MS"),
        ({"TENRUSL_SIGNATURE_STRICT": "maybe"}, "TENRUSL_SIGNATURE_STRICT"),
        ({"TENRUSL_WEBHOOK_RATE_LIMIT_PROVIDERS_JSON": "{nope"}, "TENRUSL_WEBHOOK_RATE_LIMIT_PROVIDERS_JSON"),
        ({"TENRUSL_IDEMPOTENCY_TTL_SECONDS": "7200"}, "TENRUSL_IDEMPOTENCY_TTL_SECONDS"),
        # Retry knobs are checked against the policy's bounds now, not by every run later.
        ({"TENRUSL_PROCESSING_LEASE_SECONDS": "2"}, "TENRUSL_PROCESSING_LEASE_SECONDS"),
        ({"TENRUSL_RETRY_CAP_MS": "691200000"}, "TENRUSL_RETRY_CAP_MS"),
        ({"TENRUSL_SCHEDULER_PROVIDER": "square"}, "TENRUSL_SCHEDULER_PROVIDER"),
        ({"TENRUSL_RETRY_MIN_DELAY_MS": "-1"}, "TENRUSL_RETRY_MIN_DELAY_MS"),
        ({"TENRUSL_RETRY_MIN_LEASE_MS": "-1"}, "TENRUSL_RETRY_MIN_LEASE_MS"),
    ],
)
def test_bad_values_stop_start_up_naming_the_variable(env, variable):
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(env)
    assert variable in str(caught.value)


def test_the_min_delay_keeps_its_old_name_as_an_alias():
    assert Settings.from_env({"TENRUSL_RETRY_MIN_LEASE_MS": "500"}).retry_min_delay_ms == 500
    both = {"TENRUSL_RETRY_MIN_DELAY_MS": "700", "TENRUSL_RETRY_MIN_LEASE_MS": "500"}
    assert Settings.from_env(both).retry_min_delay_ms == 700  # the new name wins


def test_secrets_accept_several_values_for_rotation():
    s = Settings.from_env({"TENRUSL_MOCK_SECRET": "old, new"})
    assert s.secrets("TENRUSL_MOCK_SECRET") == ("old", "new")
    assert s.secrets("NOPE", default="changeme") == ("changeme",)


def test_cli_reports_a_configuration_error_without_a_traceback(capsys, monkeypatch):
    from tenrusl.cli import main

    monkeypatch.setenv("TENRUSL_PORT", "eighty")
    assert main(["migrate"]) == 2
    assert "TENRUSL_PORT" in capsys.readouterr().err


def test_production_receiver_requires_an_allowlist():
    from receiver.providers import load_providers

    settings = Settings.from_env({"TENRUSL_ENV": "production"})
    assert settings.providers_allowlist == ()
    with pytest.raises(SettingsError, match="TENRUSL_PROVIDERS_ALLOWLIST"):
        load_providers(settings)
