"""The retry policy and its file format: the contract between the operator and the retry runner.

The operator renders a ``WebhookRetryPolicy`` into a JSON *policy file* in a ConfigMap that the
retry CronJob mounts (``TENRUSL_POLICY_FILE``). The runner layers, lowest to highest precedence:
built-in defaults, the environment knobs (:class:`tenrusl.settings.Settings`), the policy file,
then command-line flags. Every field of the file is optional; an absent field leaves the lower
layer's value in place.

Policy file, version 1 (JSON object)::

    {
      "version": 1,                      # required; the only version so far
      "paused": false,                   # true: the runner claims nothing and exits 0
      "limit": 200,                      # events claimed per batch, 1..2000
      "maxAttempts": 22,                 # attempts before an event is dead, 1..1000
      "leaseSeconds": 120,               # how long a claim holds an event, 5..86400
      "backoff": {
        "mode": "full",                  # full | equal | decorrelated
        "baseMs": 60000,                 # 0..604800000 (7 days)
        "capMs": 43200000,               # >= baseMs, <= 604800000
        "schedule": [5000, 300000]       # optional explicit delays (ms) per attempt; overrides mode
      },
      "providers": ["stripe"],           # only retry these providers; empty or absent: all
      "source": {                        # informational: where the policy came from
        "namespace": "payments", "name": "default", "generation": 3, "uid": "..."
      }
    }
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

from tenrusl.constants import PROVIDERS

if TYPE_CHECKING:
    from tenrusl.settings import Settings

POLICY_FILE_VERSION = 1
BACKOFF_MODES = ("full", "equal", "decorrelated")
MAX_DELAY_MS = 7 * 24 * 3600 * 1000  # no single wait is longer than a week


@dataclass(frozen=True)
class Knob:
    """One tunable of the retry policy: its default, its bounds, and where it can be set.

    The one table of retry defaults and bounds. Settings read their variables through it, the
    policy file and flags are validated by it, and tests hold the CRD's defaults and bounds, the
    kubectl plugin's help and docs/retry.md to it.
    """

    field: str  # the RetryPolicy attribute
    setting: str  # the Settings attribute
    env: str  # the variable (TENRUSL_*)
    file_key: str | None  # the dotted key in the policy file and the CRD spec; None: environment only
    default: Any
    minimum: int | None = None
    maximum: int | None = None
    choices: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()  # older variable names, still read after ``env``
    meaning: str = ""

    @property
    def bounds(self) -> str:
        """``"1..2000"`` or ``"full, equal, decorrelated"``: what the help texts print."""
        return ", ".join(self.choices) if self.choices else f"{self.minimum}..{self.maximum}"


KNOBS: tuple[Knob, ...] = (
    Knob("limit", "scheduler_limit", "TENRUSL_SCHEDULER_LIMIT", "limit", 200, 1, 2000,
         meaning="events claimed per batch"),
    Knob("max_attempts", "max_retry_attempts", "TENRUSL_MAX_RETRY_ATTEMPTS", "maxAttempts", 22, 1, 1000,
         meaning="attempts before an event is dead"),
    Knob("lease_seconds", "processing_lease_s", "TENRUSL_PROCESSING_LEASE_SECONDS", "leaseSeconds", 120,
         5, 86400, meaning="how long a claim holds an event (s)"),
    Knob("mode", "backoff_mode", "TENRUSL_SCHEDULER_BACKOFF_MODE", "backoff.mode", "full",
         choices=BACKOFF_MODES, meaning="backoff jitter mode"),
    Knob("base_ms", "retry_base_ms", "TENRUSL_RETRY_BASE_MS", "backoff.baseMs", 60_000, 0, MAX_DELAY_MS,
         meaning="backoff base delay (ms)"),
    Knob("cap_ms", "retry_cap_ms", "TENRUSL_RETRY_CAP_MS", "backoff.capMs", 43_200_000, 0, MAX_DELAY_MS,
         meaning="largest backoff delay (ms), at least the base"),
    Knob("min_delay_ms", "retry_min_delay_ms", "TENRUSL_RETRY_MIN_DELAY_MS", None, 250, 0, MAX_DELAY_MS,
         aliases=("TENRUSL_RETRY_MIN_LEASE_MS",), meaning="floor under every retry delay (ms)"),
)  # fmt: skip
KNOB = {knob.field: knob for knob in KNOBS}


class PolicyError(ValueError):
    """The policy (file or flags) is invalid; the message names the field.

    ``field`` is the RetryPolicy attribute at fault, so a caller can name its own source of it
    (the settings name the variable).
    """

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class RetryPolicy:
    """The effective policy of one retry run. Defaults come from :data:`KNOBS`."""

    paused: bool = False
    limit: int = KNOB["limit"].default
    max_attempts: int = KNOB["max_attempts"].default
    lease_seconds: int = KNOB["lease_seconds"].default
    mode: str = KNOB["mode"].default
    base_ms: int = KNOB["base_ms"].default
    cap_ms: int = KNOB["cap_ms"].default
    schedule_ms: tuple[int, ...] = ()
    providers: tuple[str, ...] = ()
    # Environment only (not in the policy file): every delay is at least this long, so full jitter
    # never schedules an event "now" and spins it (docs/design-notes.md, defect 20).
    min_delay_ms: int = KNOB["min_delay_ms"].default
    source: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        values = {knob.field: getattr(settings, knob.setting) for knob in KNOBS}
        provider = settings.scheduler_provider
        return cls(**values, providers=(provider,) if provider else ())

    def with_overrides(self, overrides: Mapping[str, Any]) -> RetryPolicy:
        """Apply a partial policy (parsed file or flags) on top of this one, then validate."""
        merged = replace(self, **{k: v for k, v in overrides.items() if v is not None})
        merged.validate()
        return merged

    def validate(self) -> None:
        for knob in KNOBS:
            name = knob.file_key or knob.env
            value = getattr(self, knob.field)
            if knob.choices:
                if value not in knob.choices:
                    raise PolicyError(f"{name}={value!r} is not one of {knob.bounds}", knob.field)
            else:
                _bounded(name, value, knob.minimum or 0, knob.maximum or 0, knob.field)
        if self.cap_ms < self.base_ms:
            raise PolicyError(
                f"backoff.capMs ({self.cap_ms}) must be >= backoff.baseMs ({self.base_ms})", "cap_ms"
            )
        for i, delay in enumerate(self.schedule_ms):
            _bounded(f"backoff.schedule[{i}]", delay, 0, MAX_DELAY_MS, "schedule_ms")
        unknown = sorted(set(self.providers) - set(PROVIDERS))
        if unknown:
            raise PolicyError(f"providers: unknown provider(s) {unknown}", "providers")

    def to_file(self) -> dict[str, Any]:
        """The policy file (version 1) that states this policy completely."""
        doc: dict[str, Any] = {
            "version": POLICY_FILE_VERSION,
            "paused": self.paused,
            "limit": self.limit,
            "maxAttempts": self.max_attempts,
            "leaseSeconds": self.lease_seconds,
            "backoff": {"mode": self.mode, "baseMs": self.base_ms, "capMs": self.cap_ms},
            "providers": list(self.providers),
        }
        if self.schedule_ms:
            doc["backoff"]["schedule"] = list(self.schedule_ms)
        if self.source:
            doc["source"] = dict(self.source)
        return doc

    def summary(self) -> dict[str, Any]:
        data = asdict(self)
        data["source"] = dict(self.source)
        return data


def _bounded(name: str, value: Any, low: int, high: int, field: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise PolicyError(f"{name} must be an integer, got {value!r}", field)
    if not low <= value <= high:
        raise PolicyError(f"{name}={value} is out of range {low}..{high}", field)


def _typed(doc: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    value = doc.get(key)
    if value is None:
        return None
    if isinstance(value, bool) and kind is not bool:
        raise PolicyError(f"{where}{key} must be {getattr(kind, '__name__', kind)}, got {value!r}")
    if not isinstance(value, kind):
        raise PolicyError(f"{where}{key} must be {getattr(kind, '__name__', kind)}, got {value!r}")
    return value


def parse_policy_document(doc: Any) -> dict[str, Any]:
    """Validate a policy file's JSON value; return the overrides it states (RetryPolicy fields)."""
    if not isinstance(doc, Mapping):
        raise PolicyError("the policy file must hold a JSON object")
    if doc.get("version") != POLICY_FILE_VERSION:
        raise PolicyError(f"version must be {POLICY_FILE_VERSION}, got {doc.get('version')!r}")
    known = {"version", "paused", "limit", "maxAttempts", "leaseSeconds", "backoff", "providers", "source"}
    extra = sorted(set(doc) - known)
    if extra:
        raise PolicyError(f"unknown field(s) {extra}")
    out: dict[str, Any] = {
        "paused": _typed(doc, "paused", bool, ""),
        "limit": _typed(doc, "limit", int, ""),
        "max_attempts": _typed(doc, "maxAttempts", int, ""),
        "lease_seconds": _typed(doc, "leaseSeconds", int, ""),
    }
    backoff = doc.get("backoff")
    if backoff is not None:
        if not isinstance(backoff, Mapping):
            raise PolicyError("backoff must be an object")
        extra = sorted(set(backoff) - {"mode", "baseMs", "capMs", "schedule"})
        if extra:
            raise PolicyError(f"backoff: unknown field(s) {extra}")
        mode = _typed(backoff, "mode", str, "backoff.")
        out["mode"] = mode.lower() if mode else None
        out["base_ms"] = _typed(backoff, "baseMs", int, "backoff.")
        out["cap_ms"] = _typed(backoff, "capMs", int, "backoff.")
        schedule = _typed(backoff, "schedule", list, "backoff.")
        if schedule is not None:
            out["schedule_ms"] = tuple(schedule)
    providers = _typed(doc, "providers", list, "")
    if providers is not None:
        if not all(isinstance(p, str) for p in providers):
            raise PolicyError("providers must be a list of provider names")
        out["providers"] = tuple(p.lower() for p in providers)
    source = _typed(doc, "source", Mapping, "")
    if source is not None:
        out["source"] = dict(source)
    return out


def load_policy_file(path: str) -> dict[str, Any]:
    """Read and validate a policy file; a missing or broken file is a PolicyError naming the path."""
    try:
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
    except FileNotFoundError:
        raise PolicyError(f"policy file {path} does not exist") from None
    except json.JSONDecodeError as exc:
        raise PolicyError(f"policy file {path} is not valid JSON: {exc.msg} (line {exc.lineno})") from None
    try:
        return parse_policy_document(doc)
    except PolicyError as exc:
        raise PolicyError(f"policy file {path}: {exc}") from None
