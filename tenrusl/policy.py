"""The retry policy and its file format: the contract between the operator and the retry runner.

The operator renders a ``WebhookRetryPolicy`` into a JSON *policy file* in a ConfigMap that the
retry CronJob mounts (``TENRUSL_POLICY_FILE``). The runner layers, lowest to highest precedence:
built-in defaults, the environment knobs (:class:`tenrusl.settings.Settings`), the policy file,
then command-line flags. Every field of the file is optional; an absent field leaves the lower
layer's value in place.

Policy file, version 2 (JSON object)::

    {
      "version": 2,                      # required: 2, or 1 (read as described below)
      "paused": false,                   # true: the runner claims nothing and exits 0
      "limit": 2000,                     # events one run handles at most, 1..100000
      "batchSize": 200,                  # events claimed per statement, 1..2000
      "maxAttempts": 22,                 # attempts before an event is dead, 1..1000
      "leaseSeconds": 120,               # how long a claim holds an event, 5..86400
      "backoff": {
        "mode": "full",                  # full | equal | decorrelated
        "baseMs": 60000,                 # 0..604800000 (7 days)
        "capMs": 43200000,               # >= baseMs, <= 604800000
        "schedule": [5000, 300000]       # optional explicit delays (ms) per attempt; overrides mode
      },
      "resume": {                        # the gradual resume after a pause (effective_cap)
        "rampMinutes": 15,               # 0..1440; 0: full speed at once
        "floor": 100                     # the per-run cap right after the pause ends, 1..100000
      },
      "providers": ["stripe"],           # only retry these providers; empty or absent: all
      "pausedAt": "2026-01-01T10:00:00Z",   # state, written by the operator: when the pause began
      "resumedAt": "2026-01-01T11:00:00Z",  # state: when the last pause ended; the ramp starts here
      "source": {                        # informational: where the policy came from
        "namespace": "payments", "name": "default", "generation": 3, "uid": "..."
      }
    }

Version 1 (before the per-run limit existed) had no ``batchSize``, ``resume``, ``pausedAt`` or
``resumedAt``, and its ``limit`` was the claim size while a run drained everything due. A version 1
file is still read, with that meaning: its ``limit`` becomes ``batchSize``, and the per-run
``limit`` stays the lower layer's (environment or default), so an old ConfigMap keeps its old
behaviour until the operator rewrites it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from tenrusl.constants import PROVIDERS

if TYPE_CHECKING:
    from tenrusl.settings import Settings

POLICY_FILE_VERSION = 2
READABLE_VERSIONS = (1, 2)
BACKOFF_MODES = ("full", "equal", "decorrelated")
MAX_DELAY_MS = 7 * 24 * 3600 * 1000  # no single wait is longer than a week
MAX_RUN_LIMIT = 100_000  # events per run; a run's time budget (300 s) ends it sooner anyway


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

    @property
    def flag(self) -> str:
        """The command-line flag of ``tenrusl retry run`` and ``kubectl tenrusl tune``."""
        return "--" + self.field.replace("_", "-")


# Why these defaults (docs/retry.md, "Limit and batch size"): a run a minute handles at most
# 2000 events, in claims of 200. The runner settles a few thousand events a second on two cores
# (bench/claim.py), so a capped run ends within seconds, even on a small pod, and retries never
# take more than 2000 attempts a minute from the database; yet 2000 a minute is 120,000 attempts an
# hour, far above a healthy system's retries, so the cap bites only in a storm.
KNOBS: tuple[Knob, ...] = (
    Knob("limit", "scheduler_limit", "TENRUSL_SCHEDULER_LIMIT", "limit", 2000, 1, MAX_RUN_LIMIT,
         meaning="events one run handles at most"),
    Knob("batch_size", "scheduler_batch_size", "TENRUSL_SCHEDULER_BATCH_SIZE", "batchSize", 200, 1, 2000,
         meaning="events claimed per statement (at most limit)"),
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
    Knob("ramp_minutes", "resume_ramp_minutes", "TENRUSL_RESUME_RAMP_MINUTES", "resume.rampMinutes", 15,
         0, 1440, meaning="after a pause, minutes for the per-run cap to climb from the floor to limit"),
    Knob("ramp_floor", "resume_ramp_floor", "TENRUSL_RESUME_RAMP_FLOOR", "resume.floor", 100,
         1, MAX_RUN_LIMIT, meaning="the per-run cap right after a pause ends (at most limit)"),
    Knob("min_delay_ms", "retry_min_delay_ms", "TENRUSL_RETRY_MIN_DELAY_MS", None, 250, 0, MAX_DELAY_MS,
         aliases=("TENRUSL_RETRY_MIN_LEASE_MS",), meaning="floor under every retry delay (ms)"),
)  # fmt: skip
KNOB = {knob.field: knob for knob in KNOBS}
# The objects of the policy file and the CRD spec that group knobs, with their other members.
_GROUPS: dict[str, tuple[str, ...]] = {"backoff": ("schedule",), "resume": ()}
_TOP_LEVEL = ("version", "paused", "providers", "pausedAt", "resumedAt", "source")


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
    batch_size: int = KNOB["batch_size"].default
    max_attempts: int = KNOB["max_attempts"].default
    lease_seconds: int = KNOB["lease_seconds"].default
    mode: str = KNOB["mode"].default
    base_ms: int = KNOB["base_ms"].default
    cap_ms: int = KNOB["cap_ms"].default
    schedule_ms: tuple[int, ...] = ()
    ramp_minutes: int = KNOB["ramp_minutes"].default
    ramp_floor: int = KNOB["ramp_floor"].default
    providers: tuple[str, ...] = ()
    # State, not tuning: when the current pause began and when the last one ended. The operator
    # records both (status.pausedAt, status.resumedAt) and writes them into the policy file.
    paused_at: datetime | None = None
    resumed_at: datetime | None = None
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
        """The policy file (the current version) that states this policy completely."""
        doc: dict[str, Any] = {"version": POLICY_FILE_VERSION, "paused": self.paused}
        for knob in KNOBS:
            if knob.file_key:
                *groups, leaf = knob.file_key.split(".")
                node = doc
                for group in groups:
                    node = node.setdefault(group, {})
                node[leaf] = getattr(self, knob.field)
        if self.schedule_ms:
            doc["backoff"]["schedule"] = list(self.schedule_ms)
        doc["providers"] = list(self.providers)
        if self.paused_at is not None:
            doc["pausedAt"] = format_time(self.paused_at)
        if self.resumed_at is not None:
            doc["resumedAt"] = format_time(self.resumed_at)
        if self.source:
            doc["source"] = dict(self.source)
        return doc


def effective_cap(policy: RetryPolicy, now: datetime) -> int:
    """How many events a run starting at ``now`` may handle: the gradual resume, as a number.

    0 while paused. After a pause ended (``resumed_at``), the cap climbs in a straight line from
    ``ramp_floor`` (never above ``limit``) to ``limit`` over ``ramp_minutes``; before the ramp and
    after it (or with ``ramp_minutes`` 0, or never paused) it is ``limit``. A clock that reads
    earlier than ``resumed_at`` (skew between nodes) gets the floor.
    """
    if policy.paused:
        return 0
    if policy.resumed_at is None or policy.ramp_minutes <= 0:
        return policy.limit
    floor = min(policy.ramp_floor, policy.limit)
    ramp_s = policy.ramp_minutes * 60
    elapsed = (now - policy.resumed_at).total_seconds()
    if elapsed >= ramp_s:
        return policy.limit
    if elapsed <= 0:
        return floor
    return floor + int((policy.limit - floor) * elapsed / ramp_s)


def ramp_ends_at(policy: RetryPolicy) -> datetime | None:
    """When the gradual resume reaches ``limit``; None when there is no ramp."""
    if policy.paused or policy.resumed_at is None or policy.ramp_minutes <= 0:
        return None
    return policy.resumed_at + timedelta(minutes=policy.ramp_minutes)


def format_time(when: datetime) -> str:
    """``2026-01-01T10:00:00Z``: how the policy file and the CRD's status write a time."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: Any, name: str) -> datetime:
    """An RFC 3339 time (``Z`` or an offset) as an aware datetime; PolicyError naming ``name``."""
    if not isinstance(value, str):
        raise PolicyError(f"{name} must be an RFC 3339 time string, got {value!r}")
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise PolicyError(f"{name}={value!r} is not an RFC 3339 time") from None
    if when.tzinfo is None:
        raise PolicyError(f"{name}={value!r} has no time zone (write Z for UTC)")
    return when.astimezone(UTC)


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


def _group(doc: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    """A nested object of the file (``backoff``, ``resume``), its members checked; {} if absent."""
    node = doc.get(name)
    if node is None:
        return {}
    if not isinstance(node, Mapping):
        raise PolicyError(f"{name} must be an object")
    members = {k.file_key.split(".")[1] for k in KNOBS if k.file_key and k.file_key.startswith(name + ".")}
    extra = sorted(set(node) - members - set(_GROUPS[name]))
    if extra:
        raise PolicyError(f"{name}: unknown field(s) {extra}")
    return node


def parse_policy_document(doc: Any) -> dict[str, Any]:
    """Validate a policy file's JSON value; return the overrides it states (RetryPolicy fields).

    Only the fields the file states are returned (an absent field is no override). A version 1
    file's ``limit`` is returned as ``batch_size`` (see the module's docstring).
    """
    if not isinstance(doc, Mapping):
        raise PolicyError("the policy file must hold a JSON object")
    version = doc.get("version")
    if isinstance(version, bool) or version not in READABLE_VERSIONS:
        raise PolicyError(f"version must be {POLICY_FILE_VERSION} (or 1, still read), got {version!r}")
    knobs = [k for k in KNOBS if k.file_key]
    if version == 1:  # before batchSize, resume and the pause times existed
        knobs = [k for k in knobs if k.field not in ("batch_size", "ramp_minutes", "ramp_floor")]
    known = {str(k.file_key).split(".")[0] for k in knobs} | set(_TOP_LEVEL)
    if version == 1:
        known -= {"pausedAt", "resumedAt"}
    extra = sorted(set(doc) - known)
    if extra:
        raise PolicyError(f"unknown field(s) {extra}" + (" in a version 1 file" if version == 1 else ""))
    out: dict[str, Any] = {}
    paused = _typed(doc, "paused", bool, "")
    if paused is not None:
        out["paused"] = paused
    for knob in knobs:
        *groups, leaf = str(knob.file_key).split(".")
        node = _group(doc, groups[0]) if groups else doc
        where = f"{groups[0]}." if groups else ""
        value = _typed(node, leaf, str if knob.choices else int, where)
        if value is not None:
            out[knob.field] = value.lower() if knob.choices else value
    schedule = _typed(_group(doc, "backoff"), "schedule", list, "backoff.")
    if schedule is not None:
        out["schedule_ms"] = tuple(schedule)
    providers = _typed(doc, "providers", list, "")
    if providers is not None:
        if not all(isinstance(p, str) for p in providers):
            raise PolicyError("providers must be a list of provider names")
        out["providers"] = tuple(p.lower() for p in providers)
    for key, attr in (("pausedAt", "paused_at"), ("resumedAt", "resumed_at")):
        if doc.get(key) is not None:
            out[attr] = parse_time(doc[key], key)
    source = _typed(doc, "source", Mapping, "")
    if source is not None:
        out["source"] = dict(source)
    if version == 1 and "limit" in out:
        out["batch_size"] = out.pop("limit")
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
