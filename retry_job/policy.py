"""The effective retry policy of a run: the four layers of :mod:`tenrusl.policy`, stacked.

Lowest to highest: built-in defaults and the seed's environment knobs (both folded into
:class:`tenrusl.settings.Settings`), the policy file the operator writes (``TENRUSL_POLICY_FILE``),
then command-line flags. The file format, defaults, bounds and validation live in
:mod:`tenrusl.policy`; this module only decides the order, and can say which layer gave each
field (``tenrusl status``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tenrusl.policy import KNOB, KNOBS, RetryPolicy, load_policy_file
from tenrusl.settings import Settings

log = logging.getLogger("tenrusl.retry.policy")

DEFAULT, FILE = "default", "policy file"
# Fields that are not knobs, by their name in the policy file.
_OTHER_FIELDS = {"paused": "paused", "providers": "providers", "schedule_ms": "backoff.schedule",
                 "paused_at": "pausedAt", "resumed_at": "resumedAt"}  # fmt: skip


@dataclass(frozen=True)
class ResolvedPolicy:
    """A policy and where each of its fields came from.

    ``sources`` maps each field's policy-file name (``limit``, ``backoff.mode``; an environment-only
    knob by its variable) to ``default``, ``env NAME``, ``policy file`` or ``flag --name``.
    ``file_state`` is ``unset`` (no ``TENRUSL_POLICY_FILE``), ``missing`` or ``read``.
    """

    policy: RetryPolicy
    sources: dict[str, str] = field(default_factory=dict)
    file: str | None = None
    file_state: str = "unset"


def resolve_policy(settings: Settings, flags: Mapping[str, Any] | None = None) -> RetryPolicy:
    """Defaults -> env knobs -> policy file -> flags; raises PolicyError naming the bad field."""
    return explain_policy(settings, flags).policy


def explain_policy(settings: Settings, flags: Mapping[str, Any] | None = None) -> ResolvedPolicy:
    """:func:`resolve_policy`, with the layer each field came from."""
    policy = RetryPolicy.from_settings(settings)
    policy.validate()
    sources = {name: DEFAULT for name in _OTHER_FIELDS.values()}
    for knob in KNOBS:
        variable = settings.variable(knob.env, *knob.aliases)
        sources[_name(knob.field)] = f"env {variable}" if variable else DEFAULT
    if settings.scheduler_provider:
        sources["providers"] = "env TENRUSL_SCHEDULER_PROVIDER"
    state = "unset"
    if settings.policy_file and not os.path.exists(settings.policy_file):
        # No policy, or it was deleted (its ConfigMap is garbage-collected with it, and the chart
        # mounts the ConfigMap as optional): the run goes on with the environment defaults.
        state = "missing"
        log.warning(
            "policy file %s does not exist; running on the environment's defaults",
            settings.policy_file,
            extra={"action": "policy", "policy_file": settings.policy_file},
        )
    elif settings.policy_file:
        state = "read"
        overrides = load_policy_file(settings.policy_file)
        policy = policy.with_overrides(overrides)
        sources.update({_name(k): FILE for k, v in overrides.items() if v is not None and k != "source"})
    if flags:
        policy = policy.with_overrides(flags)
        sources.update({_name(k): f"flag {_flag(k)}" for k, v in flags.items() if v is not None})
    return ResolvedPolicy(policy, sources, settings.policy_file, state)


def _name(attr: str) -> str:
    """A RetryPolicy attribute's name in the policy file (an environment-only knob: its variable)."""
    if attr in KNOB:
        return KNOB[attr].file_key or KNOB[attr].env
    return _OTHER_FIELDS[attr]


def _flag(attr: str) -> str:
    return KNOB[attr].flag if attr in KNOB else "--provider"
