"""The receiver SIGKILLed under load: every event it acknowledged is in the database.

A 202 is sent only after the event's insert committed, so killing the process at any instant can
lose answers but never an acknowledged event. Events that were committed but whose answer was cut
off by the kill are stored without an acknowledgement; the provider redelivers those, and the
restarted receiver answers them as duplicates.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter

import pytest

from tests.chaos.conftest import Chaos, log_tails
from tests.chaos.load import SignedLoad, deliver, event_payload, session

pytestmark = pytest.mark.chaos

WARM_UP_ACKS = 300  # acknowledged before the kill, so the kill lands in steady load


async def test_sigkill_under_load_loses_no_acknowledged_event(chaos: Chaos) -> None:
    receiver = await chaos.start_receiver()
    load = SignedLoad(receiver.url, prefix="evt_kill", concurrency=24)
    async with load:
        await load.until(lambda: len(load.acknowledged) >= WARM_UP_ACKS, 30, "the warm-up")
        killed_at = time.monotonic()
        code = await asyncio.to_thread(receiver.kill)
        # In-flight deliveries are cut, later ones refused: every worker sees the receiver gone.
        await load.until(lambda: load.count(None) >= 2 * load.concurrency, 10, "failures after the kill")

    assert code == -signal.SIGKILL
    acknowledged, sent = load.acknowledged, load.sent
    stored_rows = await chaos.stored_event_ids()
    stored = set(stored_rows)
    missing = sorted(acknowledged - stored)
    unacknowledged_stored = sorted(stored - acknowledged)
    cut = [a for a in load.answers if a.sent_at < killed_at and a.status is None]
    report = (
        f"sent {len(sent)}, acknowledged {len(acknowledged)}, stored {len(stored)}, "
        f"stored without an acknowledgement {len(unacknowledged_stored)}, "
        f"in flight at the kill and cut {len(cut)}; {load.summary()}"
    )
    print(report)
    assert not missing, f"acknowledged but not stored: {missing}\n{report}\n{log_tails(chaos)()}"
    assert len(stored_rows) == len(stored)  # one row per event
    assert stored <= sent  # nothing stored that was not sent
    assert set(load.statuses()) <= {202, None}, report  # before the kill: 202; after: no answer
    assert cut, report  # the kill cut deliveries that were in flight: it struck under load

    # The provider redelivers every delivery it saw no 2xx for; the restarted receiver stores the
    # missing ones and recognises the ones committed just before the kill as duplicates.
    receiver = await chaos.start_receiver()
    redeliver = sorted(sent - acknowledged)
    async with session(24) as client:
        answers = await asyncio.gather(*(deliver(client, receiver.url, event_payload(e)) for e in redeliver))
    assert Counter(a.status for a in answers) == {202: len(redeliver)}
    assert {a.event_id for a in answers if a.duplicate} == set(unacknowledged_stored)
    after = await chaos.stored_event_ids()
    assert sorted(after) == sorted(sent)  # every sent event exactly once
