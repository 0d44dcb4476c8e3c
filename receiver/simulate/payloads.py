"""The simulator's webhook bodies: each provider's own ``sample`` (receiver/providers/<name>.py)."""

from __future__ import annotations

import random

from receiver.providers import provider_class
from receiver.providers.samples import Context, Payload


def currency(provider: str) -> str:
    """The currency the provider typically settles in (the Indonesian ones in rupiah)."""
    return provider_class(provider).currency


def build(provider: str, rng: random.Random, ref: str, now: float, amount: int | None = None) -> Payload:
    amount = amount if amount is not None else rng.randrange(10_000, 5_000_000, 100)
    return provider_class(provider).sample(Context(rng, ref, amount, currency(provider), now))
