"""The effective retry policy of a run: the four layers of :mod:`tenrusl.policy`, stacked.

Lowest to highest: built-in defaults and the seed's environment knobs (both folded into
:class:`tenrusl.settings.Settings`), the policy file the operator writes (``TENRUSL_POLICY_FILE``),
then command-line flags. The file format, defaults, bounds and validation live in
:mod:`tenrusl.policy`; this module only decides the order.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from tenrusl.policy import RetryPolicy, load_policy_file
from tenrusl.settings import Settings

log = logging.getLogger("tenrusl.retry.policy")


def resolve_policy(settings: Settings, flags: Mapping[str, Any] | None = None) -> RetryPolicy:
    """Defaults -> env knobs -> policy file -> flags; raises PolicyError naming the bad field."""
    policy = RetryPolicy.from_settings(settings)
    policy.validate()
    if settings.policy_file and not os.path.exists(settings.policy_file):
        # No policy, or it was deleted (its ConfigMap is garbage-collected with it, and the chart
        # mounts the ConfigMap as optional): the run goes on with the environment defaults.
        log.warning(
            "policy file %s does not exist; running on the environment's defaults",
            settings.policy_file,
            extra={"action": "policy", "policy_file": settings.policy_file},
        )
    elif settings.policy_file:
        policy = policy.with_overrides(load_policy_file(settings.policy_file))
    if flags:
        policy = policy.with_overrides(flags)
    return policy
