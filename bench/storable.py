"""What the hostile-input checks cost on the webhook hot path (tenrusl/storable.py).

For ordinary payloads of three sizes it compares plain ``json.loads`` (what the gate did before)
with ``load_signed_json`` (parse with the number hooks, the byte scans, the depth bound), and
times the store's text-parameter guard on an ingest-sized parameter set. Hostile payloads (the
careful parse and the repair walk) are timed for scale. Prints microseconds per call; run by hand:

    .venv/bin/python -P bench/storable.py
"""

from __future__ import annotations

import json
import statistics
import timeit
from collections.abc import Callable
from functools import partial

from tenrusl.storable import load_signed_json
from tenrusl.store.base import check_text_params

# The body bench/receiver_throughput.py sends (one mock event).
SMALL = (
    b'{"id":"evt_n_123456789_1","object":"event","type":"payment.succeeded","status":"succeeded",'
    b'"provider_ref":"sim_mock_missing","data":{"object":{"id":"pi_3Mtw","amount":150000,'
    b'"currency":"idr","metadata":{"order":"7"}}}}'
)
# A Stripe-like event with non-ASCII text escaped as a PHP encoder does, and floats.
MEDIUM = json.dumps(
    {
        "id": "evt_medium",
        "type": "invoice.paid",
        "data": {
            "object": {
                "lines": [
                    {"description": f"Barang \u00e9 {i}", "amount": 1000.5 + i, "qty": i, "tags": ["a"]}
                    for i in range(40)
                ]
            }
        },
    }
).encode()
# 50 KB: more brackets than the depth bound, so the exact depth walk runs too.
ITEMS = [{"sku": f"SKU-{i}", "price": i * 10} for i in range(1500)]
LARGE = json.dumps({"id": "evt_large", "items": ITEMS}).encode()
HOSTILE = b'{"id":"evt_\\u0000","note":"\\ud800","amounts":[NaN,1e400,1.5],"data":{"object":{"id":"x"}}}'

INGEST_PARAMS = {
    "id": "01jexample0000000000000000",
    "provider": "mock",
    "event_id": "evt_n_123456789_1",
    "event_id_source": "payload",
    "event_type": "payment.succeeded",
    "payment_status": "succeeded",
    "payment_ref": "sim_mock_missing",
    "payload_raw": SMALL,
    "payload": object(),
    "headers": object(),
    "source_ip": "127.0.0.1",
    "request_id": "01jexamplerequest000000000",
    "signature_hash": "ab" * 32,
    "retry_delay_ms": 0,
    "max_attempts": 22,
    "payload_issues": [],
}


def per_call_us(fn: Callable[[], object], number: int) -> float:
    """Median of 7 runs, in microseconds per call."""
    runs = timeit.repeat(fn, number=number, repeat=7)
    return statistics.median(runs) / number * 1e6


def main() -> None:
    print(f"{'payload':<10}{'bytes':>8}{'json.loads':>14}{'load_signed_json':>20}{'overhead':>12}")
    for name, body, number in (("small", SMALL, 20000), ("medium", MEDIUM, 3000), ("large", LARGE, 200)):
        base = per_call_us(partial(json.loads, body), number)
        ours = per_call_us(partial(load_signed_json, body), number)
        print(f"{name:<10}{len(body):>8}{base:>12.2f}us{ours:>18.2f}us{ours - base:>+10.2f}us")
    hostile = per_call_us(lambda: load_signed_json(HOSTILE), 5000)
    print(f"{'hostile':<10}{len(HOSTILE):>8}{'':>14}{hostile:>18.2f}us  (careful parse + repair walk)")
    guard = per_call_us(lambda: check_text_params("ingest_event", INGEST_PARAMS), 50000)
    count = len(INGEST_PARAMS)
    print(f"store text-parameter guard, ingest_event ({count} params): {guard:.2f}us per statement")


if __name__ == "__main__":
    main()
