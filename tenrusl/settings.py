"""The one settings object, read from the environment.

Every knob has a ``TENRUSL_*`` name (the original implementation's name where it had one, with
its legacy fallbacks). A bad value stops start-up with a message that names the variable and the
values it accepts, instead of surfacing later as a confusing runtime error.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, TypeVar

from tenrusl.constants import PROVIDERS
from tenrusl.policy import KNOB, KNOBS, Knob, PolicyError, RetryPolicy

T = TypeVar("T")

ENVIRONMENTS = ("production", "development", "test")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
RATE_LIMIT_KEYS = ("provider", "ip", "ip_provider", "provider_ip")
# Production webhook limits per provider (and client IP): bursts up to 100/s, 50/s sustained over
# a minute. One receiver process stores about 600-1,600 webhooks/s on the project machine, so a
# provider at its limit takes at most a sixth of it (docs/configuration.md, "Webhook rate limits").
RATE_PER_SECOND = 100
RATE_PER_MINUTE = 3000
MAX_WORKERS = 64


class SettingsError(ValueError):
    """A configuration value is missing or malformed; the message names the variable."""


def _csv(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


@dataclass(frozen=True)
class _Reader:
    """Reads typed values from an environment mapping, naming the variable on failure."""

    env: Mapping[str, str]

    def raw(self, *names: str) -> tuple[str, str] | None:
        for name in names:
            value = self.env.get(name)
            if value is not None and value.strip() != "":
                return name, value.strip()
        return None

    def text(self, default: str, *names: str) -> str:
        found = self.raw(*names)
        return found[1] if found else default

    def choice(self, default: str, choices: tuple[str, ...], *names: str, upper: bool = False) -> str:
        found = self.raw(*names)
        if not found:
            return default
        name, value = found
        value = value.upper() if upper else value.lower()
        if value not in choices:
            raise SettingsError(f"{name}={found[1]!r} is not valid; accepted values: {', '.join(choices)}")
        return value

    def integer(
        self, default: int, *names: str, minimum: int | None = None, maximum: int | None = None
    ) -> int:
        found = self.raw(*names)
        if not found:
            return default
        name, value = found
        try:
            number = int(value)
        except ValueError:
            raise SettingsError(f"{name}={value!r} is not an integer") from None
        if minimum is not None and number < minimum:
            raise SettingsError(f"{name}={number} is too small; the minimum is {minimum}")
        if maximum is not None and number > maximum:
            raise SettingsError(f"{name}={number} is too large; the maximum is {maximum}")
        return number

    def number(self, default: float, *names: str, minimum: float = 0.0) -> float:
        found = self.raw(*names)
        if not found:
            return default
        name, value = found
        try:
            number = float(value)
        except ValueError:
            raise SettingsError(f"{name}={value!r} is not a number") from None
        if number < minimum:
            raise SettingsError(f"{name}={number} is too small; the minimum is {minimum}")
        return number

    def flag(self, default: bool, *names: str) -> bool:
        found = self.raw(*names)
        if not found:
            return default
        name, value = found
        lowered = value.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise SettingsError(f"{name}={value!r} is not a boolean; accepted values: true, false, 1, 0")

    def knob(self, knob: Knob) -> Any:
        """A retry policy variable, with the default and bounds of its entry in the policy table."""
        names = (knob.env, *knob.aliases)
        if knob.choices:
            return self.choice(knob.default, knob.choices, *names)
        return self.integer(knob.default, *names, minimum=knob.minimum, maximum=knob.maximum)

    def json_object(self, *names: str) -> dict[str, Any]:
        found = self.raw(*names)
        if not found:
            return {}
        name, value = found
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError as exc:
            raise SettingsError(f"{name} is not valid JSON: {exc.msg}") from None
        if not isinstance(parsed, dict):
            raise SettingsError(f"{name} must be a JSON object")
        return parsed


@dataclass(frozen=True)
class Settings:
    """Process configuration. Build it with :meth:`from_env`; tests use :meth:`replace`."""

    env: str = "development"
    database_url: str | None = None
    redis_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    # The second listener of `tenrusl serve`: /metrics and the admin API, never the webhooks
    # (docs/configuration.md, "Two ports"); 0 turns it off.
    admin_host: str = "127.0.0.1"
    admin_port: int = 9090
    # Receiver processes sharing the port (``tenrusl serve --workers``); 1 is a single process.
    workers: int = 1
    log_level: str = "INFO"
    db_pool_min: int = 2
    db_pool_max: int = 16
    db_connect_timeout_s: float = 3.0
    db_statement_timeout_ms: int = 5000
    # `tenrusl migrate`: DDL may take long on a big table, but must never queue behind a long
    # transaction holding up every query after it (docs/configuration.md, "Migrations").
    migrate_statement_timeout_ms: int = 0
    migrate_lock_timeout_ms: int = 3000
    migrate_lock_retries: int = 10
    # Group commit of webhook ingest (tenrusl/store/batch.py): deliveries per statement at most
    # (1 turns it off) and batches in flight at once.
    ingest_batch_max: int = 64
    ingest_batch_concurrency: int = 4
    providers_allowlist: tuple[str, ...] = PROVIDERS
    admin_key: str = ""
    admin_demo_key: str = ""
    admin_header: str = "X-Admin-Key"
    admin_accept_demo_in_prod: bool = False
    idempotency_ttl_s: int = 86400
    idempotency_lock_s: int = 30
    webhook_max_payload_bytes: int = 5 * 1024 * 1024
    signature_leeway_s: int = 300
    signature_strict: bool = False
    retry_after_s: int = 5
    # Retry knobs: their defaults and bounds are the policy table's (tenrusl/policy.py, KNOBS);
    # the operator's policy file and command-line flags layer on top of these.
    max_retry_attempts: int = KNOB["max_attempts"].default
    retry_base_ms: int = KNOB["base_ms"].default
    retry_cap_ms: int = KNOB["cap_ms"].default
    backoff_mode: str = KNOB["mode"].default
    scheduler_limit: int = KNOB["limit"].default
    scheduler_batch_size: int = KNOB["batch_size"].default
    scheduler_provider: str = ""
    processing_lease_s: int = KNOB["lease_seconds"].default
    retry_min_delay_ms: int = KNOB["min_delay_ms"].default
    resume_ramp_minutes: int = KNOB["ramp_minutes"].default
    resume_ramp_floor: int = KNOB["ramp_floor"].default
    policy_file: str | None = None
    # Webhook rate limits per provider (docs/providers-ops.md); the defaults follow from the
    # throughput one receiver process sustains (docs/configuration.md, "Webhook rate limits").
    rate_per_second: int = RATE_PER_SECOND
    rate_per_minute: int = RATE_PER_MINUTE
    rate_key_by: str = "ip_provider"
    rate_overrides: Mapping[str, Any] = field(default_factory=dict)
    trusted_proxies: tuple[str, ...] = ()
    allowed_event_types: Mapping[str, Any] = field(default_factory=dict)
    # Operator (tenrusl_operator): the namespace it watches ("" = its own), or every namespace.
    operator_namespace: str = ""
    operator_clusterwide: bool = False
    operator_liveness_port: int = 8081
    operator_metrics_port: int = 8080
    # The Helm release the operator serves ("" = every policy it watches): its handlers take only
    # policies labelled app.kubernetes.io/instance=<release>, so two releases share a namespace.
    operator_release: str = ""
    # The chart's policy (a WebhookRetryPolicy manifest), created at start-up when it does not exist.
    operator_policy: Mapping[str, Any] = field(default_factory=dict)
    # Raw environment snapshot: provider modules read their own secrets from it (see ``secrets``).
    environ: Mapping[str, str] = field(default_factory=dict, repr=False)

    @property
    def production(self) -> bool:
        return self.env == "production"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        source = dict(os.environ if environ is None else environ)
        r = _Reader(source)
        env = r.choice("development", ENVIRONMENTS, "TENRUSL_ENV", "APP_ENV")
        prod = env == "production"
        allow = r.raw("TENRUSL_PROVIDERS_ALLOWLIST")
        if allow:
            allowlist = tuple(p.lower() for p in _csv(allow[1]))
            unknown = sorted(set(allowlist) - set(PROVIDERS))
            if unknown:
                raise SettingsError(
                    f"TENRUSL_PROVIDERS_ALLOWLIST names unknown providers {unknown}; "
                    f"accepted values: {', '.join(PROVIDERS)}"
                )
        else:
            # Deny by default in production; the receiver refuses to start without a list
            # (receiver/providers/__init__.py, load_providers); other processes do not need one.
            allowlist = () if prod else PROVIDERS
        settings = cls(
            env=env,
            database_url=r.text("", "TENRUSL_DATABASE_URL", "DATABASE_URL") or None,
            redis_url=r.text("", "TENRUSL_REDIS_URL", "REDIS_URL") or None,
            host=r.text("127.0.0.1", "TENRUSL_HOST"),
            port=r.integer(8080, "TENRUSL_PORT", "PORT", minimum=1, maximum=65535),
            admin_host=r.text("", "TENRUSL_ADMIN_HOST") or r.text("127.0.0.1", "TENRUSL_HOST"),
            admin_port=r.integer(9090, "TENRUSL_ADMIN_PORT", minimum=0, maximum=65535),
            workers=r.integer(1, "TENRUSL_WORKERS", minimum=1, maximum=MAX_WORKERS),
            log_level=r.choice("INFO", LOG_LEVELS, "TENRUSL_LOG_LEVEL", "LOG_LEVEL", upper=True),
            db_pool_min=r.integer(2, "TENRUSL_DB_POOL_MIN", minimum=0, maximum=200),
            db_pool_max=r.integer(16, "TENRUSL_DB_POOL_MAX", minimum=1, maximum=200),
            db_connect_timeout_s=r.number(3.0, "TENRUSL_DB_CONNECT_TIMEOUT_SECONDS", minimum=0.1),
            db_statement_timeout_ms=r.integer(5000, "TENRUSL_DB_STATEMENT_TIMEOUT_MS", minimum=0),
            migrate_statement_timeout_ms=r.integer(0, "TENRUSL_MIGRATE_STATEMENT_TIMEOUT_MS", minimum=0),
            migrate_lock_timeout_ms=r.integer(3000, "TENRUSL_MIGRATE_LOCK_TIMEOUT_MS", minimum=0),
            migrate_lock_retries=r.integer(10, "TENRUSL_MIGRATE_LOCK_RETRIES", minimum=0, maximum=1000),
            ingest_batch_max=r.integer(64, "TENRUSL_INGEST_BATCH_MAX", minimum=1, maximum=1000),
            ingest_batch_concurrency=r.integer(4, "TENRUSL_INGEST_BATCH_CONCURRENCY", minimum=1, maximum=200),
            providers_allowlist=allowlist,
            admin_key=r.text("", "TENRUSL_ADMIN_KEY"),
            admin_demo_key=r.text("", "TENRUSL_ADMIN_DEMO_KEY", "ADMIN_DEMO_KEY"),
            admin_header=r.text("X-Admin-Key", "TENRUSL_ADMIN_HEADER", "ADMIN_HEADER"),
            admin_accept_demo_in_prod=r.flag(False, "TENRUSL_ADMIN_ACCEPT_DEMO_IN_PROD"),
            idempotency_ttl_s=r.integer(
                86400, "TENRUSL_IDEMPOTENCY_TTL_SECONDS", "IDEMPOTENCY_TTL_SECONDS", minimum=86400
            ),
            idempotency_lock_s=r.integer(
                30, "TENRUSL_IDEMPOTENCY_LOCK_SECONDS", "IDEMPOTENCY_LOCK_SECONDS", minimum=1
            ),
            webhook_max_payload_bytes=r.integer(
                5 * 1024 * 1024, "TENRUSL_WEBHOOK_MAX_PAYLOAD_BYTES", minimum=1024, maximum=64 * 1024 * 1024
            ),
            signature_leeway_s=r.integer(
                300, "TENRUSL_SIG_TS_LEEWAY_SECONDS", "TENRUSL_SIG_TS_LEEWAY", "SIG_TS_LEEWAY", minimum=1
            ),
            signature_strict=r.flag(prod, "TENRUSL_SIGNATURE_STRICT"),
            retry_after_s=r.integer(5, "TENRUSL_RETRY_AFTER_SECONDS", minimum=1, maximum=3600),
            **{knob.setting: r.knob(knob) for knob in KNOBS},
            scheduler_provider=r.text("", "TENRUSL_SCHEDULER_PROVIDER").lower(),
            policy_file=r.text("", "TENRUSL_POLICY_FILE") or None,
            rate_per_second=r.integer(RATE_PER_SECOND, "TENRUSL_RATE_WEBHOOKS_PER_SECOND", minimum=1),
            rate_per_minute=r.integer(
                RATE_PER_MINUTE,
                "TENRUSL_RATE_WEBHOOKS_PER_MINUTE",
                "TENRUSL_WEBHOOK_RATE_LIMIT_PER_MINUTE",
                minimum=1,
            ),
            rate_key_by=r.choice("ip_provider", RATE_LIMIT_KEYS, "TENRUSL_WEBHOOK_RATE_LIMIT_KEY_BY"),
            rate_overrides=MappingProxyType(r.json_object("TENRUSL_WEBHOOK_RATE_LIMIT_PROVIDERS_JSON")),
            trusted_proxies=_csv(r.text("", "TENRUSL_TRUSTED_PROXIES", "TRUSTED_PROXIES")),
            allowed_event_types=MappingProxyType(r.json_object("TENRUSL_WEBHOOK_ALLOWED_EVENT_TYPES_JSON")),
            operator_namespace=r.text("", "TENRUSL_OPERATOR_NAMESPACE"),
            operator_clusterwide=r.flag(False, "TENRUSL_OPERATOR_CLUSTERWIDE"),
            operator_liveness_port=r.integer(
                8081, "TENRUSL_OPERATOR_LIVENESS_PORT", minimum=0, maximum=65535
            ),
            operator_metrics_port=r.integer(8080, "TENRUSL_OPERATOR_METRICS_PORT", minimum=0, maximum=65535),
            operator_release=r.text("", "TENRUSL_OPERATOR_RELEASE"),
            operator_policy=MappingProxyType(r.json_object("TENRUSL_OPERATOR_POLICY")),
            environ=MappingProxyType(source),
        )
        if settings.retry_cap_ms < settings.retry_base_ms:
            raise SettingsError(
                f"TENRUSL_RETRY_CAP_MS={settings.retry_cap_ms} must be >= "
                f"TENRUSL_RETRY_BASE_MS={settings.retry_base_ms}"
            )
        if settings.db_pool_min > settings.db_pool_max:
            raise SettingsError("TENRUSL_DB_POOL_MIN must be <= TENRUSL_DB_POOL_MAX")
        if settings.admin_port and settings.admin_port == settings.port:
            raise SettingsError(
                f"TENRUSL_ADMIN_PORT={settings.admin_port} must differ from TENRUSL_PORT: the admin "
                "listener (/metrics, the admin API) is never the webhook listener; 0 turns it off"
            )
        _check_retry_policy(settings)
        return settings

    def replace(self, **changes: Any) -> Settings:
        from dataclasses import replace

        return replace(self, **changes)

    def value(self, *names: str, default: str = "") -> str:
        """The first non-empty raw value among ``names`` (a provider setting and its fallbacks)."""
        found = _Reader(self.environ).raw(*names)
        return found[1] if found else default

    def variable(self, *names: str) -> str | None:
        """Which of ``names`` is set (the first non-empty one), or None: where a value came from."""
        found = _Reader(self.environ).raw(*names)
        return found[0] if found else None

    def secrets(self, *names: str, default: str = "") -> tuple[str, ...]:
        """Every value of a secret setting: comma-separated values are accepted, for rotation."""
        return _csv(self.value(*names, default=default))

    def parsed(self, parse: Callable[[str], T], *names: str, default: T) -> T:
        """A provider setting run through ``parse``; a failure names the variable."""
        found = _Reader(self.environ).raw(*names)
        if not found:
            return default
        try:
            return parse(found[1])
        except (TypeError, ValueError) as exc:
            raise SettingsError(f"{found[0]} is not valid: {exc}") from None


def _check_retry_policy(settings: Settings) -> None:
    """The environment's retry policy must be one the runner accepts: checked now, not every run."""
    try:
        RetryPolicy.from_settings(settings).validate()
    except PolicyError as exc:
        variable = KNOB[exc.field].env if exc.field in KNOB else "TENRUSL_SCHEDULER_PROVIDER"
        raise SettingsError(f"{variable} is not valid: {exc}") from None
