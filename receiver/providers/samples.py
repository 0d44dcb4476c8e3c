"""What a provider's ``sample`` builds with: the context of one notification and small helpers.

Each provider module (``receiver/providers/<name>.py``) has a ``sample`` shaped like the
provider's documented notification of a successful payment, beside its ``sign``: together they
play the provider for `tenrusl simulate`. A sample puts *our* payment reference where the core's
reading of that provider looks for it, so with ``--with-payments`` the event settles a real
payment. Every random part comes from the ``random.Random`` in the context: the same seed gives
the same events (and so, against the same database, duplicates). JSON is compact and ASCII so
that a re-serialisation of the decoded body (what PayPal's verify API receives) gives the same
bytes.
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True)
class Context:
    rng: random.Random
    ref: str  # our payment's provider_ref
    amount: int  # minor units
    currency: str
    now: float


@dataclass(frozen=True)
class Payload:
    body: bytes
    event_type: str | None
    # A field whose value the signature covers; a tamper test flips a byte there, because for
    # schemes that sign only some fields (Midtrans, Skrill) a byte elsewhere is not protected.
    signed_field: str | None = None


def dump(document: Any) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


def hex_id(rng: random.Random, length: int = 24) -> str:
    return f"{rng.getrandbits(length * 4):0{length}x}"


def digits(rng: random.Random, length: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(length))


def uuid_str(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def iso(now: float, millis: bool = False) -> str:
    moment = datetime.fromtimestamp(now, UTC)
    text = moment.isoformat(timespec="milliseconds" if millis else "seconds")
    return text.replace("+00:00", "Z")


def major(ctx: Context) -> str:
    """The amount in major units with two decimals, as most providers print it."""
    return f"{ctx.amount / 100:.2f}"
